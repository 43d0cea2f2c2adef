//! Property tests ("fuzzing") of the mod_xml_curl path without a database: whatever body
//! FreeSWITCH — or anyone on an allowed address — posts, parsing never panics and the answer is
//! always a well-formed FreeSWITCH document. Seeds are the real captured request bodies
//! (`tests/fixtures/freeswitch/xmlcurl/*.body`), mutated byte by byte; failures found are kept
//! by proptest under `proptest-regressions/` and replayed first on every run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::Utc;
use proptest::prelude::*;
use switchboard_domain::bindings::snapshot::SessionOrigin;
use switchboard_domain::bindings::testkit::{Kit, SIP_DOMAIN};
use switchboard_domain::services::directory::DirectorySource;
use switchboard_domain::telephony::policy::RingStrategy;
use switchboard_esl_bridge::directory::{AnswerKind, DirectorySettings, View};
use switchboard_esl_bridge::xml::directory::{CompileSettings, CompiledDomain};
use switchboard_esl_bridge::xml::escape;
use switchboard_esl_bridge::xml::request::XmlCurlRequest;

/// A Domain with every kind of binding: fixed, hot-desk in and out, a sequential Location,
/// direct registration, a call group, a forward.
fn view() -> View {
    let mut k = Kit::new();
    let alice = k.ext("201", "Alice <Anders> & \"Co\"");
    k.ext_mut(alice).sip_registration_enabled = true;
    k.ext_mut(alice).call_group = Some("sales".into());
    let bob = k.ext("202", "Bob");
    Kit::forward(&mut k.ext_mut(bob).forward_always, "+4930123");
    let fixed = k.fixed("Desk", "d7f3a", alice);
    let desk = k.hotdesk("Hot desk", "d91c0");
    k.hotdesk("Idle", "d5b2e");
    k.login(
        desk,
        bob,
        "2025-03-28T09:00:00Z",
        SessionOrigin::FeatureCode,
    );
    let office = k.location("Office", RingStrategy::Sequential);
    k.place(fixed, office, 0, Some(15));
    k.sign_in(alice, office, "2025-03-28T08:00:00Z");
    let mut a1_hashes = HashMap::new();
    for (id, _) in k.b.devices.iter() {
        a1_hashes.insert(*id, "0123456789abcdef0123456789abcdef".to_owned());
    }
    a1_hashes.insert(alice, "fedcba9876543210fedcba9876543210".to_owned());
    let src = DirectorySource {
        bindings: k.b,
        name: "Acme".into(),
        enabled: true,
        a1_hashes,
        routing: Default::default(),
    };
    View::of([CompiledDomain::compile(
        &src,
        &CompileSettings {
            cacheable_ms: 60_000,
        },
        Utc::now(),
    )])
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/freeswitch/xmlcurl"
    );
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "body"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    assert!(out.len() >= 15, "the captured bodies are there");
    out
}

/// The answer is XML with the root FreeSWITCH reads.
fn well_formed(body: &str) {
    let doc = roxmltree::Document::parse(body)
        .unwrap_or_else(|e| panic!("not well-formed ({e}): {body}"));
    assert_eq!(doc.root_element().tag_name().name(), "document");
    assert_eq!(doc.root_element().attribute("type"), Some("freeswitch/xml"));
}

#[test]
fn every_captured_request_is_answered_with_a_document() {
    let view = view();
    for seed in seeds() {
        let answer = view.answer(&XmlCurlRequest::parse(&seed), &DirectorySettings::default());
        well_formed(&answer.body);
    }
}

#[test]
fn the_kit_domain_answers_its_users_and_feature_codes() {
    let view = view();
    let ask = |body: String| {
        view.answer(
            &XmlCurlRequest::parse(body.as_bytes()),
            &DirectorySettings::default(),
        )
    };
    let user = |u: &str| {
        format!(
            "section=directory&tag_name=domain&key_name=name&key_value={SIP_DOMAIN}&action=sip_auth&key=id&user={u}&domain={SIP_DOMAIN}"
        )
    };
    for u in ["201", "202", "d7f3a", "D91C0", "d5b2e"] {
        let a = ask(user(u));
        assert_eq!(a.kind, AnswerKind::User, "{u}");
        well_formed(&a.body);
    }
    assert_eq!(ask(user("203")).kind, AnswerKind::NotFound);
    let a = ask(format!(
        "section=dialplan&Caller-Context={SIP_DOMAIN}&Caller-Destination-Number=*11201&variable_domain_name={SIP_DOMAIN}"
    ));
    assert_eq!(a.kind, AnswerKind::FeatureCode);
    well_formed(&a.body);
    // The Domain's own context: Extensions ring or divert, other numbers are unallocated, and
    // outcome lookups carrying hostile variables still answer well-formed documents.
    let dial = |number: &str, extra: &str| {
        ask(format!(
            "section=dialplan&Caller-Context={SIP_DOMAIN}&Caller-Destination-Number={number}&variable_domain_name={SIP_DOMAIN}{extra}"
        ))
    };
    for number in ["201", "202"] {
        let a = dial(number, "");
        assert!(
            matches!(a.kind, AnswerKind::Extension | AnswerKind::Outcome),
            "{number}: {:?}",
            a.kind
        );
        well_formed(&a.body);
    }
    let a = dial("299", "");
    assert_eq!(a.kind, AnswerKind::Unallocated);
    well_formed(&a.body);
    for extra in [
        "&variable_switchboard_called_extension=201&variable_switchboard_forward_hops=%22%3C%3E",
        "&variable_switchboard_called_extension=%3C%2Fx%3E&variable_switchboard_forward_hops=99999999999",
    ] {
        let a = dial("switchboard-outcome-%3Cb%3E%26", extra);
        well_formed(&a.body);
    }
}

fn mutate(seed: &[u8], edits: &[(usize, u8, u8)], cut: usize) -> Vec<u8> {
    let mut body = seed.to_vec();
    for (at, op, byte) in edits {
        if body.is_empty() {
            body.push(*byte);
            continue;
        }
        let i = at % body.len();
        match op % 3 {
            0 => body[i] = *byte,
            1 => body.insert(i, *byte),
            _ => {
                body.remove(i);
            }
        }
    }
    let keep = body.len().saturating_sub(cut % (body.len() / 4 + 1));
    body.truncate(keep);
    body
}

/// Field values worth trying: the real ones, and ones that hurt XML, regexes and dial strings.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(SIP_DOMAIN.to_owned()),
        Just("201".to_owned()),
        Just("d7f3a".to_owned()),
        Just("*11".to_owned()),
        Just("*11201".to_owned()),
        Just("switchboard-logged-out".to_owned()),
        Just("switchboard-voicemail".to_owned()),
        Just("201@acme.example.net".to_owned()),
        Just("112".to_owned()),
        Just("sales".to_owned()),
        Just("gateways".to_owned()),
        Just("group_call".to_owned()),
        Just("</user><user id=\"x\" type=\"pointer\">".to_owned()),
        Just("^.*$|${system(rm)}".to_owned()),
        "\\PC{0,40}",
        any::<String>(),
    ]
}

const FIELDS: &[&str] = &[
    "section",
    "tag_name",
    "key_value",
    "purpose",
    "action",
    "user",
    "domain",
    "group_name",
    "Caller-Context",
    "Caller-Destination-Number",
    "variable_switchboard_domain",
    "variable_domain_name",
    "variable_emergency_caller_id_name",
    "variable_emergency_caller_id_number",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_captured_bodies_never_break_the_answer(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..24),
        cut in any::<usize>(),
    ) {
        let seeds = seeds();
        let seed = &seeds[pick.index(seeds.len())];
        let body = mutate(seed, &edits, cut);
        let answer = view().answer(&XmlCurlRequest::parse(&body), &DirectorySettings::default());
        well_formed(&answer.body);
    }

    #[test]
    fn arbitrary_fields_never_break_the_answer(
        values in prop::collection::vec((0..FIELDS.len(), nasty()), 0..10),
        section in prop_oneof![Just("directory"), Just("dialplan"), Just("configuration")],
    ) {
        let mut body = format!("section={section}");
        for (field, value) in &values {
            body.push('&');
            body.push_str(FIELDS[*field]);
            body.push('=');
            body.push_str(&percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string());
        }
        let answer = view().answer(&XmlCurlRequest::parse(body.as_bytes()), &DirectorySettings::default());
        well_formed(&answer.body);
    }

    #[test]
    fn escaped_text_reads_back_as_the_original(text in any::<String>()) {
        let doc = format!("<a v=\"{}\">{}</a>", escape(&text), escape(&text));
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let visible: String = text.chars().filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r')).collect();
        prop_assert_eq!(parsed.root_element().attribute("v"), Some(visible.as_str()));
        prop_assert_eq!(parsed.root_element().text().unwrap_or_default(), visible.as_str());
    }
}
