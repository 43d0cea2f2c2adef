//! Two switchboard processes on one PostgreSQL and one real FreeSWITCH: node A drives the
//! switch's Event Socket, node B answers its mod_xml_curl and stands by. A phone registers
//! while A drives; A is killed (SIGKILL) and a second phone registers while nobody drives the
//! switch; B takes the link over within seconds, and each registration is listed exactly once.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::cluster::Node;
use switchboard_tests::{Backend, FreshDatabase};

use crate::harness::{
    Credentials, ESL_PASSWORD, FreeSwitch, FreeSwitchPorts, Phone, XML_CURL_PASSWORD, require_sipp,
};

const SIP: &str = "cluster.live.test";

/// The configuration both nodes share: the switch's Event Socket and the xml_curl password.
fn shared(esl: u16) -> String {
    format!(
        r#"
[freeswitch.xml_curl]
password = "{XML_CURL_PASSWORD}"

[[freeswitch.nodes]]
name = "fs1"
host = "127.0.0.1"
port = {esl}
password = "{ESL_PASSWORD}"
profile = "internal"
"#
    )
}

async fn nodes_of(b: &Node, token: &str) -> Value {
    let (status, nodes) = b
        .call(token, Method::GET, "/api/v1/freeswitch/nodes", None)
        .await;
    assert_eq!(status, 200, "{nodes}");
    nodes
}

async fn phone_of(b: &Node, token: &str, domain: &str, number: &str) -> Credentials {
    let extension = b
        .create(
            token,
            &format!("/api/v1/domains/{domain}/extensions"),
            json!({"number": number, "display_name": format!("Ext {number}")}),
        )
        .await;
    let device = b
        .create(
            token,
            &format!("/api/v1/domains/{domain}/devices"),
            json!({"label": format!("Desk {number}"), "mode": "fixed",
                   "owner_extension_id": extension["id"]}),
        )
        .await;
    let id = device["id"].as_str().expect("an id").to_owned();
    let (status, secret) = b
        .call(
            token,
            Method::GET,
            &format!("/api/v1/domains/{domain}/devices/{id}/sip-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{secret}");
    Credentials {
        device_id: id,
        user: secret["sip_username"].as_str().expect("a user").to_owned(),
        password: secret["sip_secret"].as_str().expect("a secret").to_owned(),
        realm: secret["realm"].as_str().expect("a realm").to_owned(),
    }
}

/// The Domain's registrations of `user`, as node `b` lists them.
async fn listed(b: &Node, token: &str, domain: &str, user: &str) -> usize {
    let (status, list) = b
        .call(
            token,
            Method::GET,
            &format!("/api/v1/domains/{domain}/registrations"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["sip_user"] == user)
        .count()
}

async fn until_listed(b: &Node, token: &str, domain: &str, user: &str) {
    let started = Instant::now();
    while listed(b, token, domain, user).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{user} never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registering_while_its_links_driver_is_killed_is_listed_once() {
    require_sipp();
    let db = FreshDatabase::create(Backend::Postgres).await;
    let url = db.url();
    let ports = FreeSwitchPorts::pick();
    let mut a = Node::start("a", &url, &shared(ports.esl)).await;
    let b = Node::start("b", &url, &shared(ports.esl)).await;
    // FreeSWITCH asks B for its directory: B outlives A.
    let fs = FreeSwitch::start_in(
        FreeSwitch::new_run_dir(),
        &ports,
        &format!("{}/freeswitch/xml", b.address),
        None,
    )
    .await;
    let token = b.token().await;
    let started = Instant::now();
    loop {
        let nodes = nodes_of(&b, &token).await;
        if nodes["items"][0]["state"] == "connected" {
            assert_eq!(nodes["items"][0]["owner"], "a", "{nodes}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "A never drove the switch: {nodes}\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let domain = b
        .create(
            &token,
            "/api/v1/domains",
            json!({"name": SIP, "sip_domain": SIP, "timezone": "Europe/Berlin"}),
        )
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let first = phone_of(&b, &token, &domain, "201").await;
    let second = phone_of(&b, &token, &domain, "202").await;

    // While A drives: the first phone registers and A ingests it.
    let phone = Phone::new(&fs, "cluster-phone-1");
    let outcome = phone.register(&first, "cluster-1@127.0.0.1", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    until_listed(&b, &token, &domain, &first.user).await;

    // A dies; the second phone registers while nobody drives the switch (its REGISTER event
    // reaches no one), and the first refreshes.
    a.kill();
    let killed = Instant::now();
    let other = Phone::new(&fs, "cluster-phone-2");
    let outcome = other.register(&second, "cluster-2@127.0.0.1", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let outcome = phone.register(&first, "cluster-1@127.0.0.1", 2).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);

    // B takes the link over and reloads what the profile holds.
    loop {
        let nodes = nodes_of(&b, &token).await;
        if nodes["items"][0]["owner"] == "b" && nodes["items"][0]["state"] == "connected" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "B never took over: {nodes}\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "B drives the switch {:?} after A was killed",
        killed.elapsed()
    );
    until_listed(&b, &token, &domain, &second.user).await;
    // Settled: each phone exactly once, after the reload and a further refresh.
    let outcome = other.register(&second, "cluster-2@127.0.0.1", 2).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(listed(&b, &token, &domain, &first.user).await, 1);
    assert_eq!(listed(&b, &token, &domain, &second.user).await, 1);
    drop((a, b, fs));
    drop(db);
}
