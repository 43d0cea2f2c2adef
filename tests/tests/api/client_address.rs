//! Behind a reverse proxy (`http.trusted_proxies`): per-address limits and the session's
//! address follow the forwarded client, but only when the proxy is trusted.

use reqwest::Method;
use serde_json::json;
use switchboard_tests::{TestApp, both_databases, json_body};

both_databases!(
    behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own
        with |c| {
            c.http.trusted_proxies = vec!["127.0.0.1/32".to_owned()];
            c.auth.login_max_failures = 2;
        },
    without_trusted_proxies_forwarding_headers_are_ignored
        with |c| c.auth.login_max_failures = 2,
);

async fn login_via(app: &TestApp, header: (&str, &str), email: &str, password: &str) -> u16 {
    app.request(Method::POST, "/api/v1/auth/login")
        .header(header.0, header.1)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Two failed logins (for made-up accounts, so only the address counts) from `from`.
async fn fail_twice(app: &TestApp, from: (&str, &str)) {
    for n in 0..2 {
        let email = format!(
            "nobody{n}@{}.example",
            from.1.replace([',', ' ', '.', '='], "-")
        );
        assert_eq!(
            login_via(app, from, &email, "Wrong-Password-But-Long-1").await,
            401
        );
    }
}

async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_on_its_own(app: TestApp) {
    let (email, password) = (app.admin_email.clone(), app.admin_password.clone());
    let mallory = ("x-forwarded-for", "198.51.100.1");
    fail_twice(&app, mallory).await;
    assert_eq!(login_via(&app, mallory, &email, &password).await, 429);

    // Another client behind the same proxy is not affected ...
    let alice = ("x-forwarded-for", "203.0.113.2");
    assert_eq!(login_via(&app, alice, &email, &password).await, 200);
    // ... and Mallory cannot pass for someone else by writing the header herself: the proxy
    // appends her real address, the rightmost untrusted hop.
    let forged = ("x-forwarded-for", "203.0.113.2, 198.51.100.1");
    assert_eq!(login_via(&app, forged, &email, &password).await, 429);

    // The session records the forwarded client (RFC 7239 `Forwarded` too).
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .header("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token = json_body(response).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions = json_body(
        app.send_as(&token, Method::GET, "/api/v1/me/sessions", None)
            .await,
    )
    .await;
    let addresses: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ip_address"].as_str().unwrap())
        .collect();
    assert!(addresses.contains(&"203.0.113.2"), "{addresses:?}");
    assert!(addresses.contains(&"2001:db8::7"), "{addresses:?}");
}

async fn without_trusted_proxies_forwarding_headers_are_ignored(app: TestApp) {
    let (email, password) = (app.admin_email.clone(), app.admin_password.clone());
    fail_twice(&app, ("x-forwarded-for", "198.51.100.1")).await;
    // The direct peer failed twice, whatever it claims to forward for.
    let claimed = ("x-forwarded-for", "203.0.113.2");
    assert_eq!(login_via(&app, claimed, &email, &password).await, 429);
    let claimed = ("forwarded", "for=192.0.2.9");
    assert_eq!(login_via(&app, claimed, &email, &password).await, 429);
}
