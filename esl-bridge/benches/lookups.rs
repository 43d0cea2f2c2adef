//! The mod_xml_curl hot path without HTTP: decoding a captured request body and answering it
//! from a compiled Domain (`cargo bench -p switchboard-esl-bridge --bench lookups`). The HTTP
//! figures (wrk against the real server, next to nginx) are in bench/directory/.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use chrono::Utc;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use switchboard_domain::bindings::snapshot::SessionOrigin;
use switchboard_domain::bindings::testkit::Kit;
use switchboard_domain::services::directory::DirectorySource;
use switchboard_domain::telephony::policy::RingStrategy;
use switchboard_esl_bridge::directory::{DirectorySettings, View};
use switchboard_esl_bridge::xml::directory::{CompileSettings, CompiledDomain};
use switchboard_esl_bridge::xml::request::XmlCurlRequest;

fn source() -> DirectorySource {
    let mut k = Kit::new();
    let mut a1_hashes = HashMap::new();
    for i in 0..100 {
        let ext = k.ext(&format!("{}", 200 + i), &format!("Person {i}"));
        k.ext_mut(ext).sip_registration_enabled = true;
        a1_hashes.insert(ext, "fbae1eb149366d7f4af1f7251480454f".to_owned());
        let sip = if i == 1 {
            "d-7f3a".to_owned()
        } else {
            format!("d{i:05}")
        };
        let dev = k.fixed(&format!("Desk {i}"), &sip, ext);
        a1_hashes.insert(dev, "244f77a49923efae3943ee66abc650bb".to_owned());
    }
    let desk = k.hotdesk("Hot desk", "d91c0");
    let alice = *k.b.extensions.keys().next().unwrap();
    k.login(desk, alice, "2025-03-28T09:00:00Z", SessionOrigin::Api);
    let office = k.location("Office", RingStrategy::Sequential);
    k.place(desk, office, 0, Some(15));
    a1_hashes.insert(desk, "11ee8b9048b7cab1b08dc7ba6c3edc07".to_owned());
    DirectorySource {
        bindings: k.b,
        name: "Acme".into(),
        enabled: true,
        a1_hashes,
        routing: Default::default(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/freeswitch/xmlcurl/{name}.body",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn lookups(c: &mut Criterion) {
    let src = source();
    let settings = CompileSettings {
        cacheable_ms: 300_000,
    };
    c.bench_function("compile a Domain of 100 Extensions + 101 Devices", |b| {
        b.iter(|| CompiledDomain::compile(black_box(&src), &settings, Utc::now()))
    });
    let view = View::of([CompiledDomain::compile(&src, &settings, Utc::now())]);
    let answering = DirectorySettings::default();
    for name in [
        "directory-sip_auth-register",
        "directory-user_call",
        "dialplan-star11-from-d-7f3a",
    ] {
        let body = fixture(name);
        c.bench_function(&format!("parse {name}"), |b| {
            b.iter(|| XmlCurlRequest::parse(black_box(&body)))
        });
        let request = XmlCurlRequest::parse(&body);
        c.bench_function(&format!("answer {name}"), |b| {
            b.iter(|| view.answer(black_box(&request), &answering))
        });
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
