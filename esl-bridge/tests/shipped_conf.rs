//! The FreeSWITCH configuration we ship (`esl-bridge/conf/`) is well-formed and says what the
//! multi-tenant setup needs (`shared/FREESWITCH.md` §4), so a typo cannot reach an operator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn read(path: &str) -> String {
    let full = format!("{}/conf/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn params(doc: &roxmltree::Document<'_>) -> Vec<(String, String)> {
    doc.descendants()
        .filter(|n| n.has_tag_name("param"))
        .map(|n| {
            (
                n.attribute("name").unwrap_or_default().to_owned(),
                n.attribute("value").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn xml_curl_binds_directory_and_dialplan_with_credentials_and_a_timeout() {
    let text = read("autoload_configs/xml_curl.conf.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let url = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("gateway-url"))
        .unwrap();
    assert_eq!(url.attribute("bindings"), Some("directory|dialplan"));
    assert!(url.attribute("value").unwrap().ends_with("/freeswitch/xml"));
    let p = params(&doc);
    assert!(
        value(&p, "gateway-credentials")
            .unwrap()
            .starts_with("freeswitch:")
    );
    assert_eq!(value(&p, "auth-scheme"), Some("basic"));
    assert!(value(&p, "timeout").unwrap().parse::<u32>().unwrap() > 0);
}

#[test]
fn the_sip_profile_serves_every_domain_without_forcing_one() {
    let text = read("sip_profiles/internal.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let all = doc
        .descendants()
        .find(|n| n.has_tag_name("domain"))
        .unwrap();
    assert_eq!(all.attribute("name"), Some("all"));
    assert_eq!(all.attribute("alias"), Some("true"));
    assert_eq!(all.attribute("parse"), Some("false"));
    let p = params(&doc);
    assert_eq!(value(&p, "challenge-realm"), Some("auto_from"));
    assert_eq!(value(&p, "auth-calls"), Some("true"));
    assert_eq!(value(&p, "manage-presence"), Some("true"));
    for forced in [
        "force-register-domain",
        "force-register-db-domain",
        "force-subscription-domain",
    ] {
        assert_eq!(
            value(&p, forced),
            None,
            "{forced} would collapse the tenants"
        );
    }
}

#[test]
fn the_event_socket_listens_on_loopback_and_the_static_directory_is_empty() {
    let text = read("autoload_configs/event_socket.conf.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let p = params(&doc);
    assert_eq!(value(&p, "listen-ip"), Some("127.0.0.1"));
    assert_ne!(value(&p, "password"), Some("ClueCon"), "never the default");
    let text = read("directory/switchboard.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert!(!doc.descendants().any(|n| n.has_tag_name("user")));
}
