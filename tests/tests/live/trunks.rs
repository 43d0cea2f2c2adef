//! Calls that leave and enter the platform (issue 14): sipp as the phones and as the carriers
//! (at 127.0.0.2 and 127.0.0.3, so FreeSWITCH tells them from the phones at 127.0.0.1). Gateways
//! are created through the API and reach FreeSWITCH at run time (the directory's
//! `purpose=gateways`, `sofia profile rescan`, `reloadacl`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Live, Phone, free_port, received};
use crate::sipp_calls::{
    Callee, Ringing, carrier_dial, dial, extension_with_phone, final_answer, hot_desk_logged_in,
    register, requests,
};

/// A gateway of `domain` to a carrier at `ip:port`, once FreeSWITCH has loaded it and lets the
/// carrier's address in.
pub(crate) async fn gateway(
    live: &Live,
    domain: &str,
    name: &str,
    ip: &str,
    port: u16,
    extra: Value,
) -> Value {
    let mut body = json!({"name": name, "proxy": format!("{ip}:{port}")});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let g = live.create(domain, "gateways", body).await;
    let fs_name = g["freeswitch_name"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let status = live
            .fs
            .api(&format!("sofia status gateway {fs_name}"))
            .await;
        let acl = live.fs.api(&format!("acl {ip} switchboard-carriers")).await;
        if !status.contains("Invalid Gateway") && acl.trim() == "true" {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "FreeSWITCH did not load the gateway {fs_name} within 10 s:\n{}",
        live.fs.api("sofia status").await
    );
}

/// The first INVITE a carrier received: its request line and its From header.
fn invite(outcome: &crate::harness::Outcome) -> (String, String) {
    let messages = received(&outcome.messages);
    let invite = messages
        .iter()
        .find(|m| m.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("the carrier got no INVITE:\n{}", outcome.messages));
    let line = invite.lines().next().unwrap_or_default().to_owned();
    let from = invite
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("from:"))
        .unwrap_or_default()
        .to_owned();
    (line, from)
}

async fn numbering(live: &Live, domain: &str, default: &str) {
    let (status, n) = live
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": default, "domain_id": domain})),
        )
        .await;
    assert_eq!(status, 201, "{n}");
    let (status, s) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/calling-settings"),
            Some(json!({"country_code": "49", "outbound_caller_id_number": default})),
        )
        .await;
    assert_eq!(status, 200, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_reaches_the_carrier_normalised_and_fails_over_on_503() {
    let live = Live::start().await;
    let domain = live.domain("out.trunks.live.test").await;
    numbering(&live, &domain, "+4930100000").await;
    let (port_a, port_b) = (free_port(), free_port());
    let down = Ringing::start_at(&live.fs, "127.0.0.2", port_a, "unavailable.xml", 60).await;
    let up = Ringing::start_at(&live.fs, "127.0.0.3", port_b, "answer.xml", 60).await;
    let a = gateway(&live, &domain, "first", "127.0.0.2", port_a, json!({})).await;
    let b = gateway(&live, &domain, "second", "127.0.0.3", port_b, json!({})).await;
    live.create(
        &domain,
        "outbound-routes",
        json!({"name": "National", "patterns": ["0Z."], "toll_class": "national",
               "gateway_ids": [a["id"], b["id"]]}),
    )
    .await;
    live.create(
        &domain,
        "outbound-routes",
        json!({"name": "International", "patterns": ["00Z."], "toll_class": "international",
               "gateway_ids": [b["id"]]}),
    )
    .await;
    let (_, alice) =
        extension_with_phone(&live, &domain, "201", json!({"toll_allow": ["domestic"]})).await;
    let phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &phone, &alice).await;

    let caller = dial(&live.fs, &phone, &alice, "030999888").await;
    assert_eq!(final_answer(&caller), Some(200), "{}", caller.messages);
    let refused = down.finish().await;
    let answered = up.finish().await;
    let (line_a, _) = invite(&refused);
    let (line_b, from_b) = invite(&answered);
    assert!(
        line_a.starts_with("INVITE sip:+4930999888@127.0.0.2"),
        "{line_a}"
    );
    assert!(
        line_b.starts_with("INVITE sip:+4930999888@127.0.0.3"),
        "{line_b}"
    );
    assert!(
        from_b.contains("+4930100000"),
        "the Domain's default caller ID: {from_b}"
    );
    assert!(
        requests(&received(&answered.messages)).contains(&"BYE"),
        "{}",
        answered.messages
    );

    // International is not in Alice's toll classes: refused before any carrier hears of it.
    let caller = dial(&live.fs, &phone, &alice, "0044201234").await;
    assert_eq!(final_answer(&caller), Some(403), "{}", caller.messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_desked_person_calls_out_as_themselves_and_busy_and_no_answer_forward_out() {
    let live = Live::start().await;
    let domain = live.domain("desk.trunks.live.test").await;
    numbering(&live, &domain, "+4930300000").await;
    let (status, n) = live
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": "+4930300201", "domain_id": domain})),
        )
        .await;
    assert_eq!(status, 201, "{n}");
    let carrier_port = free_port();
    let g = gateway(
        &live,
        &domain,
        "carrier",
        "127.0.0.2",
        carrier_port,
        json!({}),
    )
    .await;
    live.create(
        &domain,
        "outbound-routes",
        json!({"name": "National", "patterns": ["0Z."], "toll_class": "national",
               "gateway_ids": [g["id"]]}),
    )
    .await;
    // Alice presents her own Number; she sits at a hot desk today.
    let (_, _) = extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"hotdesk_allowed": true, "pin": "4711", "toll_allow": ["domestic"],
               "outbound_caller_id_number": "+4930300201"}),
    )
    .await;
    let hot_creds = hot_desk_logged_in(&live, &domain, "201").await;
    let hot_phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &hot_phone, &hot_creds).await;

    let carrier = Ringing::start_at(&live.fs, "127.0.0.2", carrier_port, "answer.xml", 60).await;
    let caller = dial(&live.fs, &hot_phone, &hot_creds, "030999888").await;
    assert_eq!(final_answer(&caller), Some(200), "{}", caller.messages);
    let (line, from) = invite(&carrier.finish().await);
    assert!(
        line.starts_with("INVITE sip:+4930999888@127.0.0.2"),
        "{line}"
    );
    assert!(
        from.contains("+4930300201"),
        "the person's own caller ID, not the Domain's: {from}"
    );

    // 202 is busy and forwards busy calls to a mobile; 203 rings out to a national number.
    let (_, busy) = extension_with_phone(
        &live,
        &domain,
        "202",
        json!({"voicemail_enabled": false, "toll_allow": ["domestic"],
               "forwarding": {"busy": {"enabled": true, "destination": "0170555202"}}}),
    )
    .await;
    let (_, absent) = extension_with_phone(
        &live,
        &domain,
        "203",
        json!({"voicemail_enabled": false, "toll_allow": ["domestic"], "ring_timeout_secs": 5,
               "forwarding": {"no_answer": {"enabled": true, "destination": "030555203"}}}),
    )
    .await;
    let busy_phone = Phone::new(&live.fs, "Busy/202");
    let absent_phone = Phone::new(&live.fs, "Absent/203");
    register(&live, &busy_phone, &busy).await;
    register(&live, &absent_phone, &absent).await;

    let busy_here = Ringing::start(&live.fs, &busy_phone, Callee::Busy, 30).await;
    let carrier = Ringing::start_at(&live.fs, "127.0.0.2", carrier_port, "answer.xml", 60).await;
    let caller = dial(&live.fs, &hot_phone, &hot_creds, "202").await;
    assert_eq!(final_answer(&caller), Some(200), "{}", caller.messages);
    busy_here.finish().await;
    let (line, from) = invite(&carrier.finish().await);
    assert!(
        line.starts_with("INVITE sip:+49170555202@127.0.0.2"),
        "{line}"
    );
    assert!(
        from.contains("+4930300000"),
        "a forward leaves as the forwarding Extension (the Domain's default here): {from}"
    );

    let rings = Ringing::start(&live.fs, &absent_phone, Callee::Rings, 30).await;
    let carrier = Ringing::start_at(&live.fs, "127.0.0.2", carrier_port, "answer.xml", 60).await;
    let caller = dial(&live.fs, &hot_phone, &hot_creds, "203").await;
    assert_eq!(final_answer(&caller), Some(200), "{}", caller.messages);
    let rang = rings.finish().await;
    assert!(
        requests(&received(&rang.messages)).contains(&"CANCEL"),
        "203 rang out: {}",
        rang.messages
    );
    let (line, _) = invite(&carrier.finish().await);
    assert!(
        line.starts_with("INVITE sip:+4930555203@127.0.0.2"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_call_from_a_logged_out_phone_leaves_as_the_place() {
    let live = Live::start().await;
    let domain = live.domain("sos.trunks.live.test").await;
    numbering(&live, &domain, "+4930200000").await;
    let port = free_port();
    let psap = Ringing::start_at(&live.fs, "127.0.0.2", port, "answer.xml", 60).await;
    let g = gateway(&live, &domain, "emergency", "127.0.0.2", port, json!({})).await;
    live.create(
        &domain,
        "outbound-routes",
        json!({"name": "Emergency", "patterns": ["112"], "toll_class": "emergency",
               "gateway_ids": [g["id"]]}),
    )
    .await;
    let room = live
        .create(
            &domain,
            "locations",
            json!({"name": "Room 4.12", "emergency_caller_id_number": "+4930412412",
                   "emergency_address": "Main St 1, 4th floor"}),
        )
        .await;
    let hot = live
        .create(
            &domain,
            "devices",
            json!({"label": "Hot desk", "mode": "hotdesk", "location_id": room["id"]}),
        )
        .await;
    let creds = live.credentials(&domain, hot["id"].as_str().unwrap()).await;
    let phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &phone, &creds).await;

    let caller = dial(&live.fs, &phone, &creds, "112").await;
    assert_eq!(final_answer(&caller), Some(200), "{}", caller.messages);
    let got = psap.finish().await;
    let (line, from) = invite(&got);
    assert!(line.starts_with("INVITE sip:112@127.0.0.2"), "{line}");
    assert!(
        from.contains("+4930412412"),
        "the place's emergency caller ID: {from}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_call_to_a_number_rings_the_extension_and_a_stranger_is_refused() {
    let live = Live::start().await;
    let domain = live.domain("in.trunks.live.test").await;
    let (alice_ext, alice) = extension_with_phone(&live, &domain, "201", json!({})).await;
    let (status, n) = live
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": "+4930555100", "domain_id": domain,
                        "destination": {"type": "extension", "extension_id": alice_ext["id"]}})),
        )
        .await;
    assert_eq!(status, 201, "{n}");
    let g = gateway(
        &live,
        &domain,
        "carrier",
        "127.0.0.2",
        free_port(),
        json!({}),
    )
    .await;
    let phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &phone, &alice).await;
    let desk = Ringing::start(&live.fs, &phone, crate::sipp_calls::Callee::Answers, 60).await;

    let carrier = carrier_dial(&live.fs, "127.0.0.2", "+4917012345", "+4930555100").await;
    assert_eq!(final_answer(&carrier), Some(200), "{}", carrier.messages);
    let rang = desk.finish().await;
    assert!(
        requests(&received(&rang.messages)).contains(&"INVITE"),
        "{}",
        rang.messages
    );

    // The same INVITE from an address that is no gateway is challenged, never routed.
    let stranger = carrier_dial(&live.fs, "127.0.0.9", "+4917012345", "+4930555100").await;
    let answer = final_answer(&stranger);
    assert!(
        matches!(answer, Some(401 | 403 | 407)),
        "{answer:?}: {}",
        stranger.messages
    );

    // Once the carrier's pool is listed with the gateway, the same address is let in.
    let (status, changed) = live
        .call(
            Method::PATCH,
            &format!(
                "/api/v1/domains/{domain}/gateways/{}",
                g["id"].as_str().unwrap()
            ),
            Some(json!({"inbound_addresses": ["127.0.0.8/30"]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    for _ in 0..100 {
        if live
            .fs
            .api("acl 127.0.0.9 switchboard-carriers")
            .await
            .trim()
            == "true"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let desk = Ringing::start(&live.fs, &phone, crate::sipp_calls::Callee::Answers, 60).await;
    let pooled = carrier_dial(&live.fs, "127.0.0.9", "+4917012345", "+4930555100").await;
    assert_eq!(final_answer(&pooled), Some(200), "{}", pooled.messages);
    let rang = desk.finish().await;
    assert!(
        requests(&received(&rang.messages)).contains(&"INVITE"),
        "{}",
        rang.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registering_gateway_shows_its_state_in_the_api() {
    let live = Live::start().await;
    let domain = live.domain("reg.trunks.live.test").await;
    let port = free_port();
    let registrar = Ringing::start_at(&live.fs, "127.0.0.2", port, "registrar.xml", 60).await;
    let g = gateway(
        &live,
        &domain,
        "registering",
        "127.0.0.2",
        port,
        json!({"register": true, "username": "acme", "password": "carrier-secret"}),
    )
    .await;
    let id = g["id"].as_str().unwrap();
    let mut last = Value::Null;
    for _ in 0..100 {
        last = live
            .get(&format!("/api/v1/domains/{domain}/gateways/{id}"))
            .await;
        if last["state"][0]["state"] == "REGED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"][0]["state"], "REGED", "{last}");
    assert_eq!(last["state"][0]["node"], "fs1", "{last}");
    let got = registrar.finish().await;
    assert!(
        requests(&received(&got.messages)).contains(&"REGISTER"),
        "{}",
        got.messages
    );
}
