//! The mod_xml_curl hot path without HTTP: decoding a captured request body and answering it
//! from a compiled Domain (`cargo bench -p switchboard-esl-bridge --bench lookups`). The HTTP
//! figures (wrk against the real server, next to nginx) are in bench/directory/ and, for call
//! flows, bench/flows/.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use chrono::Utc;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use switchboard_domain::bindings::snapshot::SessionOrigin;
use switchboard_domain::bindings::testkit::{Kit, SIP_DOMAIN};
use switchboard_domain::routing::destination::{Destination, HangUpWith};
use switchboard_domain::routing::flows::{
    FlowConfig, FlowKind, Greeting, GroupMember, GroupStrategy, IvrConfig, IvrOption,
    RingGroupConfig, TimeConditionConfig, WeeklyHours,
};
use switchboard_domain::services::directory::DirectorySource;
use switchboard_domain::store::call_flows;
use switchboard_domain::telephony::policy::RingStrategy;
use switchboard_esl_bridge::directory::{DirectorySettings, View};
use switchboard_esl_bridge::xml::directory::{CompileSettings, CompiledDomain};
use switchboard_esl_bridge::xml::request::XmlCurlRequest;
use uuid::Uuid;

/// A Domain of `people` Extensions, each with a fixed Device, plus a hot-desk phone in a
/// Location.
fn source(people: usize) -> DirectorySource {
    let mut k = Kit::new();
    let mut a1_hashes = HashMap::new();
    for i in 0..people {
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

/// Call flows of the bench Domain, as bench/flows/run.sh creates them per Domain.
const RING_GROUPS: usize = 200;
const IVRS: usize = 50;
const TIME_CONDITIONS: usize = 50;

/// The flows' ids: ring group `g`, IVR `i`, time condition `t`.
fn group_id(g: usize) -> Uuid {
    Uuid::from_u128(1_000_000 + g as u128)
}
fn ivr_id(i: usize) -> Uuid {
    Uuid::from_u128(2_000_000 + i as u128)
}
fn condition_id(t: usize) -> Uuid {
    Uuid::from_u128(3_000_000 + t as u128)
}

fn flow_row(
    id: Uuid,
    domain_id: Uuid,
    name: String,
    number: Option<String>,
    config: &FlowConfig,
) -> call_flows::Model {
    let now = Utc::now();
    call_flows::Model {
        id,
        domain_id,
        kind: config.kind().as_str().into(),
        name,
        number,
        config: config.to_json().to_string(),
        override_mode: "auto".into(),
        last_member: -1,
        created_at: now,
        updated_at: now,
    }
}

/// One Domain of 100 Extensions (1000…1099), each owning a fixed Device (`d00000`…), and,
/// with `flows`, 200 ring groups (numbers 2000…2199, 5 Extensions each, the four strategies in
/// turn), 50 IVR menus (5 keys to ring groups, direct dialling) and 50 time conditions
/// (Mon–Fri 09–17 → an IVR, closed → a ring group). Returns the source and the first Device.
fn flow_source(flows: bool) -> (DirectorySource, Uuid) {
    let mut k = Kit::new();
    let mut a1_hashes = HashMap::new();
    let mut exts = Vec::new();
    let mut first_device = None;
    for i in 0..100 {
        let ext = k.ext(&format!("{}", 1000 + i), &format!("Person {i}"));
        k.ext_mut(ext).sip_registration_enabled = true;
        a1_hashes.insert(ext, "fbae1eb149366d7f4af1f7251480454f".to_owned());
        let dev = k.fixed(&format!("Desk {i}"), &format!("d{i:05}"), ext);
        a1_hashes.insert(dev, "244f77a49923efae3943ee66abc650bb".to_owned());
        first_device.get_or_insert(dev);
        exts.push(ext);
    }
    let domain_id = k.b.domain.id;
    let mut routing = switchboard_domain::routing::facts::RoutingRows::default();
    if flows {
        let strategies = [
            GroupStrategy::Simultaneous,
            GroupStrategy::Sequential,
            GroupStrategy::RoundRobin,
            GroupStrategy::LongestIdle,
        ];
        for g in 0..RING_GROUPS {
            let config = FlowConfig::RingGroup(RingGroupConfig {
                strategy: strategies[g % strategies.len()],
                ring_secs: 60,
                members: (0..5)
                    .map(|j| GroupMember {
                        extension_id: Some(exts[(g * 5 + j) % exts.len()]),
                        number: None,
                        ring_secs: 20,
                    })
                    .collect(),
                skip_busy: true,
                caller_id_prefix: String::new(),
                when_unanswered: Destination::HangUp {
                    cause: HangUpWith::Busy,
                },
            });
            routing.flows.push(flow_row(
                group_id(g),
                domain_id,
                format!("Group {g}"),
                Some(format!("{}", 2000 + g)),
                &config,
            ));
        }
        for i in 0..IVRS {
            let config = FlowConfig::Ivr(IvrConfig {
                greeting: Greeting::Builtin {
                    prompt: "beep".into(),
                },
                options: (0..5)
                    .map(|o| IvrOption {
                        digits: format!("{}", o + 1),
                        destination: FlowKind::RingGroup
                            .destination(group_id((i * 4 + o) % RING_GROUPS)),
                    })
                    .collect(),
                direct_dial: true,
                timeout_secs: 5,
                max_tries: 3,
                when_no_choice: Destination::HangUp {
                    cause: HangUpWith::Normal,
                },
            });
            routing.flows.push(flow_row(
                ivr_id(i),
                domain_id,
                format!("Menu {i}"),
                None,
                &config,
            ));
        }
        for t in 0..TIME_CONDITIONS {
            let config = FlowConfig::TimeCondition(TimeConditionConfig {
                time_zone: None,
                weekly: vec![WeeklyHours {
                    days: ["mon", "tue", "wed", "thu", "fri"]
                        .map(String::from)
                        .to_vec(),
                    from: "09:00".into(),
                    to: "17:00".into(),
                }],
                special_days: Vec::new(),
                override_code: None,
                when_open: FlowKind::Ivr.destination(ivr_id(t % IVRS)),
                when_closed: FlowKind::RingGroup.destination(group_id(t * 4 % RING_GROUPS)),
            });
            routing.flows.push(flow_row(
                condition_id(t),
                domain_id,
                format!("Hours {t}"),
                None,
                &config,
            ));
        }
    }
    let src = DirectorySource {
        bindings: k.b,
        name: "Acme".into(),
        enabled: true,
        a1_hashes,
        routing,
    };
    (src, first_device.unwrap())
}

/// The captured dialplan request of phone d-7f3a, as phone `device` of the Domain dialling
/// `destination` in the Domain's context.
fn dialplan_request(destination: &str, device: Uuid) -> Vec<u8> {
    let body = String::from_utf8(fixture("dialplan-not-found-202")).unwrap();
    assert!(body.contains(&format!("Caller-Context={SIP_DOMAIN}")));
    let encoded = destination.replace('+', "%2B").replace('@', "%40");
    let body = body
        .replace(
            "Caller-Destination-Number=202&",
            &format!("Caller-Destination-Number={encoded}&"),
        )
        .replace(
            "Hunt-Destination-Number=202&",
            &format!("Hunt-Destination-Number={encoded}&"),
        );
    format!(
        "{}&variable_switchboard_device_id={device}",
        body.trim_end()
    )
    .into_bytes()
}

fn flow_lookups(c: &mut Criterion) {
    let settings = CompileSettings {
        cacheable_ms: 300_000,
    };
    let (bare, _) = flow_source(false);
    c.bench_function(
        "compile a Domain of 100 Extensions + 100 Devices, no call flows",
        |b| b.iter(|| CompiledDomain::compile(black_box(&bare), &settings, Utc::now())),
    );
    let (src, device) = flow_source(true);
    c.bench_function(
        "compile a Domain of 100 Extensions + 100 Devices + 200 ring groups + 50 IVRs + 50 time conditions",
        |b| b.iter(|| CompiledDomain::compile(black_box(&src), &settings, Utc::now())),
    );
    let view = View::of([CompiledDomain::compile(&src, &settings, Utc::now())]);
    let answering = DirectorySettings::default();
    let cases = [
        (
            "answer a ring group's number (simultaneous, 5 members)",
            "2000".to_owned(),
            "application=\"bridge\"",
        ),
        (
            "answer a ring group's number (round robin, 5 members)",
            "2002".to_owned(),
            "application=\"bridge\"",
        ),
        (
            "answer an IVR key lookup (switchboard-flow-<ivr>-key-1)",
            format!("switchboard-flow-{}-key-1", ivr_id(7)),
            "application=\"transfer\"",
        ),
        (
            "answer entering an IVR (switchboard-flow-<ivr>)",
            format!("switchboard-flow-{}", ivr_id(7)),
            "application=\"play_and_get_digits\"",
        ),
        (
            "answer entering a time condition (switchboard-flow-<tc>)",
            format!("switchboard-flow-{}", condition_id(7)),
            "application=\"transfer\"",
        ),
    ];
    for (name, destination, want) in cases {
        let body = dialplan_request(&destination, device);
        let request = XmlCurlRequest::parse(&body);
        let answer = view.answer(&request, &answering);
        assert!(answer.body.contains(want), "{name}: {}", answer.body);
        c.bench_function(name, |b| {
            b.iter(|| view.answer(black_box(&request), &answering))
        });
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
    let settings = CompileSettings {
        cacheable_ms: 300_000,
    };
    // A change recompiles its Domain: what that costs grows with the Domain, and must grow
    // no faster than its size.
    let large = source(5000);
    c.bench_function("compile a Domain of 5000 Extensions + 5001 Devices", |b| {
        b.iter(|| CompiledDomain::compile(black_box(&large), &settings, Utc::now()))
    });
    drop(large);
    let src = source(100);
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

criterion_group!(benches, lookups, flow_lookups);
criterion_main!(benches);
