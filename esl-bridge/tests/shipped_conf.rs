//! The FreeSWITCH configuration we ship (`freeswitch/conf/`) is well-formed and says what the
//! multi-tenant setup needs (`shared/FREESWITCH.md` §4), so a typo cannot reach an operator.
//! (That FreeSWITCH starts it without a warning is checked by the live suite, `tests/tests/live`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../freeswitch/conf");

fn read_raw(path: &str) -> String {
    let full = format!("{CONF}/{path}");
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The `set` variables of vars.xml, in order.
fn vars() -> Vec<(String, String)> {
    let text = read_raw("vars.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("X-PRE-PROCESS") && n.attribute("cmd") == Some("set"))
        .map(|n| {
            let (name, value) = n.attribute("data").unwrap().split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// A file with every `$${name}` replaced by its value in vars.xml, as FreeSWITCH's preprocessor
/// does; a variable vars.xml does not set fails the test.
fn read(path: &str) -> String {
    let mut text = read_raw(path);
    let vars = vars();
    while let Some(start) = text.find("$${") {
        let end = start + text[start..].find('}').unwrap();
        let name = &text[start + 3..end];
        let value = vars
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{path} uses $${{{name}}}, which vars.xml does not set"))
            .1
            .clone();
        text.replace_range(start..=end, &value);
    }
    text
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
    // parse: sofia loads the gateways switchboard lists in the directory.
    assert_eq!(all.attribute("parse"), Some("true"));
    let p = params(&doc);
    assert_eq!(value(&p, "challenge-realm"), Some("auto_from"));
    // Carriers are let in by address (the ACL switchboard's directory builds), into `public`.
    assert_eq!(value(&p, "apply-inbound-acl"), Some("switchboard-carriers"));
    assert_eq!(value(&p, "context"), Some("public"));
    let acl = read("autoload_configs/acl.conf.xml");
    assert!(
        acl.contains(r#"<list name="switchboard-carriers" default="deny">"#)
            && acl.contains(r#"domain="carriers.switchboard.invalid""#),
        "{acl}"
    );
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
    assert!(
        value(&p, "password").unwrap().starts_with("CHANGE-ME"),
        "the shipped password says it must be changed"
    );
    let text = read("directory/switchboard.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert!(!doc.descendants().any(|n| n.has_tag_name("user")));
}

#[test]
fn the_profile_has_no_deprecated_parameter_and_nothing_is_looked_up_off_the_box() {
    let text = read("sip_profiles/internal.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let p = params(&doc);
    for deprecated in ["rtp-timeout-sec", "rtp-hold-timeout-sec"] {
        assert_eq!(
            value(&p, deprecated),
            None,
            "{deprecated} is deprecated in 1.10"
        );
    }
    for (name, value) in &p {
        assert!(
            !value.contains("stun:") && !value.contains("auto-nat") && !value.contains("host:"),
            "{name}={value} looks an address up"
        );
    }
    for (name, value) in vars() {
        assert!(
            !value.contains("stun:"),
            "{name}={value} looks an address up"
        );
    }
}

#[test]
fn the_only_modules_loaded_are_ours_with_xml_curl_before_sofia() {
    let text = read("autoload_configs/modules.conf.xml");
    let doc = roxmltree::Document::parse(&text).unwrap();
    let modules: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("load"))
        .map(|n| n.attribute("module").unwrap())
        .collect();
    let position = |m: &str| modules.iter().position(|x| *x == m).unwrap();
    assert!(position("mod_xml_curl") < position("mod_sofia"));
    for needed in [
        "mod_event_socket",
        "mod_loopback",
        "mod_hash",
        "mod_dptools",
        "mod_voicemail",
    ] {
        position(needed);
    }
}
