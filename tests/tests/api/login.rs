//! The harness's own promise: the bootstrapped administrator can log in.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases, json_body};

both_databases!(
    the_bootstrapped_administrator_can_log_in_and_see_themselves,
    a_wrong_password_is_a_401_problem,
);

async fn the_bootstrapped_administrator_can_log_in_and_see_themselves(app: TestApp) {
    let token = app.admin_token().await;
    let response = app.send_as(&token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(response.status(), 200);
    let me = json_body(response).await;
    assert_eq!(me["user"]["email"], app.admin_email, "{me}");
}

async fn a_wrong_password_is_a_401_problem(app: TestApp) {
    let body = json!({ "email": app.admin_email, "password": "Not-The-Right-Password-1" });
    assert_problem(
        app.post_json("/api/v1/auth/login", &body).await,
        401,
        "unauthenticated",
    )
    .await;
}

both_databases!(
    a_refresh_token_rotates_and_works_once,
    reusing_a_refresh_token_revokes_the_whole_session,
    browsers_get_the_refresh_token_as_a_strict_http_only_cookie,
    logging_out_ends_the_session_and_clears_the_cookie,
    my_sessions_are_listed_and_one_can_be_revoked,
    changing_my_password_needs_the_current_one_and_ends_my_other_sessions,
    repeated_failed_logins_are_throttled_with_429_even_for_the_right_password
        with |c| c.auth.login_max_failures = 3,
);

const USER: &str = "ada@login.example";
const PASSWORD: &str = crate::users::PASSWORD;

/// A Domain with one member, Ada, who can log in.
async fn ada(app: &TestApp) {
    let (domain, admin) = crate::devices::domain_with_admin(app, "login.example").await;
    crate::users::create_user(app, &admin, &domain, USER, &["member"]).await;
}

async fn refresh_with(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.send_as(token, Method::GET, "/api/v1/me", None)
        .await
        .status()
        .as_u16()
}

async fn a_refresh_token_rotates_and_works_once(app: TestApp) {
    ada(&app).await;
    let first = app.login(USER, PASSWORD).await;
    let response = refresh_with(&app, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = json_body(response).await;
    assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
    assert_eq!(second["session_id"], first["session_id"], "same session");
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(
        me_status(&app, second["access_token"].as_str().unwrap()).await,
        200
    );
    // The new one works in turn.
    let third =
        json_body(refresh_with(&app, second["refresh_token"].as_str().unwrap()).await).await;
    assert!(third["refresh_token"].as_str().unwrap().starts_with("rt_"));
    // Garbage is a 401.
    assert_problem(refresh_with(&app, "rt_nope").await, 401, "unauthenticated").await;
}

async fn reusing_a_refresh_token_revokes_the_whole_session(app: TestApp) {
    ada(&app).await;
    let first = app.login(USER, PASSWORD).await;
    let stolen = first["refresh_token"].as_str().unwrap();
    let legit = json_body(refresh_with(&app, stolen).await).await;
    let access = legit["access_token"].as_str().unwrap();
    assert_eq!(me_status(&app, access).await, 200);

    // Someone presents the used token again: refused, and the session is over for everyone.
    assert_problem(refresh_with(&app, stolen).await, 401, "unauthenticated").await;
    assert_problem(
        refresh_with(&app, legit["refresh_token"].as_str().unwrap()).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(me_status(&app, access).await, 401);
    // Logging in again works: only that session ended.
    let again = app.login(USER, PASSWORD).await;
    assert_eq!(
        me_status(&app, again["access_token"].as_str().unwrap()).await,
        200
    );
}

/// The `switchboard_refresh` cookie set by `response`, as its raw `Set-Cookie` line.
fn refresh_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("switchboard_refresh="))
        .expect("a refresh cookie")
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap()
}

async fn browsers_get_the_refresh_token_as_a_strict_http_only_cookie(app: TestApp) {
    ada(&app).await;
    let response = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": USER, "password": PASSWORD, "refresh_in_cookie": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cookie = refresh_cookie(&response);
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth/refresh",
    ] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let body = json_body(response).await;
    assert!(
        body.get("refresh_token").is_none(),
        "not in the body: {body}"
    );
    let value = cookie_value(&cookie);
    assert!(value.starts_with("rt_"));

    // A refresh without a body uses the cookie and answers with a new cookie.
    let response = app
        .request(Method::POST, "/api/v1/auth/refresh")
        .header("cookie", format!("switchboard_refresh={value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated = cookie_value(&refresh_cookie(&response));
    assert_ne!(rotated, value);
    let body = json_body(response).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(
        me_status(&app, body["access_token"].as_str().unwrap()).await,
        200
    );

    // The old cookie value is now a reuse: the session ends.
    let response = app
        .request(Method::POST, "/api/v1/auth/refresh")
        .header("cookie", format!("switchboard_refresh={value}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "unauthenticated").await;
    // No cookie and no body: told what to send.
    let response = app
        .request(Method::POST, "/api/v1/auth/refresh")
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, "validation_failed").await;
}

async fn logging_out_ends_the_session_and_clears_the_cookie(app: TestApp) {
    ada(&app).await;
    let tokens = app.login(USER, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let other = app.login(USER, PASSWORD).await;
    let response = app
        .send_as(access, Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(response.status(), 204);
    let cleared = refresh_cookie(&response);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_eq!(me_status(&app, access).await, 401);
    assert_problem(
        refresh_with(&app, tokens["refresh_token"].as_str().unwrap()).await,
        401,
        "unauthenticated",
    )
    .await;
    // My other session is untouched.
    assert_eq!(
        me_status(&app, other["access_token"].as_str().unwrap()).await,
        200
    );
    // Logging out needs a session.
    assert_eq!(
        app.post_json("/api/v1/auth/logout", &json!({}))
            .await
            .status(),
        401
    );
}

async fn my_sessions_are_listed_and_one_can_be_revoked(app: TestApp) {
    ada(&app).await;
    let laptop = app.login(USER, PASSWORD).await;
    let phone = app.login(USER, PASSWORD).await;
    let laptop_token = laptop["access_token"].as_str().unwrap();
    let response = app
        .send_as(laptop_token, Method::GET, "/api/v1/me/sessions", None)
        .await;
    assert_eq!(response.status(), 200);
    let list = json_body(response).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop["session_id"]);
    assert_eq!(current[0]["ip_address"], "127.0.0.1");

    // Someone else's session is not mine to see or end.
    let admin = app.admin_token().await;
    let admin_sessions = json_body(
        app.send_as(&admin, Method::GET, "/api/v1/me/sessions", None)
            .await,
    )
    .await;
    let admin_session = admin_sessions[0]["id"].as_str().unwrap().to_owned();
    let response = app
        .send_as(
            laptop_token,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{admin_session}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(me_status(&app, &admin).await, 200);

    // Ending my phone's session.
    let phone_session = phone["session_id"].as_str().unwrap();
    let response = app
        .send_as(
            laptop_token,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{phone_session}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        me_status(&app, phone["access_token"].as_str().unwrap()).await,
        401
    );
    assert_problem(
        refresh_with(&app, phone["refresh_token"].as_str().unwrap()).await,
        401,
        "unauthenticated",
    )
    .await;
    let list = json_body(
        app.send_as(laptop_token, Method::GET, "/api/v1/me/sessions", None)
            .await,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Again: it is gone.
    let response = app
        .send_as(
            laptop_token,
            Method::DELETE,
            &format!("/api/v1/me/sessions/{phone_session}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
}

async fn changing_my_password_needs_the_current_one_and_ends_my_other_sessions(app: TestApp) {
    ada(&app).await;
    let here = app.login(USER, PASSWORD).await;
    let elsewhere = app.login(USER, PASSWORD).await;
    let token = here["access_token"].as_str().unwrap();
    let app = &app;
    let change = |current: &str, new: &str| {
        let body = json!({"current_password": current, "new_password": new});
        async move {
            app.send_as(token, Method::POST, "/api/v1/me/password", Some(&body))
                .await
        }
    };
    let new_password = "An-Entirely-New-Passphrase-77";

    let problem = assert_problem(
        change("Not-My-Current-Password-1", new_password).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["field"], "current_password",
        "{problem}"
    );
    let problem = assert_problem(change(PASSWORD, "short").await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "new_password", "{problem}");
    // Nothing changed so far.
    assert_eq!(
        me_status(app, elsewhere["access_token"].as_str().unwrap()).await,
        200
    );

    assert_eq!(change(PASSWORD, new_password).await.status(), 204);
    assert_eq!(me_status(app, token).await, 200, "this session lives on");
    assert_eq!(
        me_status(app, elsewhere["access_token"].as_str().unwrap()).await,
        401,
        "the other session ended"
    );
    crate::users::assert_login_refused(app, USER, PASSWORD).await;
    app.login(USER, new_password).await;
}

async fn repeated_failed_logins_are_throttled_with_429_even_for_the_right_password(app: TestApp) {
    ada(&app).await;
    let app = &app;
    let attempt = |password: &'static str| {
        let body = json!({"email": USER, "password": password});
        async move { app.post_json("/api/v1/auth/login", &body).await }
    };
    for _ in 0..3 {
        assert_problem(
            attempt("Wrong-Password-But-Long-1").await,
            401,
            "unauthenticated",
        )
        .await;
    }
    let response = attempt(PASSWORD).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429, "rate_limited").await;
    // Another account from the same address is throttled too (3 failures from here).
    let response = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": app.admin_email, "password": app.admin_password}),
        )
        .await;
    assert_eq!(response.status(), 429);
}
