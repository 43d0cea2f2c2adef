//! `switchboard copy-data`: an SQLite installation copied to PostgreSQL serves the same Domains,
//! Extensions, Devices, SIP secrets and logins; a target that holds rows is refused and left as
//! it was. (One server per SQLite file, including against `copy-data`: see `cli`.)

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_domain::store::{devices, domains, extensions, users};
use switchboard_domain::telephony::secrets::a1_hash;
use switchboard_tests::{Backend, FreshDatabase, TestApp, spawn_app, spawn_app_on};

use crate::cli::{Run, TempDir, switchboard};
use crate::devices::{create, domain_with_admin, extension, id_of};
use crate::users::{call, create_user, token_of};
use crate::xmlcurl::fixture;

/// The SIP domain of the FreeSWITCH request fixtures.
const SIP_DOMAIN: &str = "acme.example.net";

/// Runs `switchboard copy-data --from <from> --to <to>`, off the async runtime.
async fn copy_data(from: &str, to: &str) -> Run {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || {
        let dir = TempDir::new();
        switchboard(
            &dir.0,
            &["copy-data", "--from", &from, "--to", &to],
            &[],
            None,
        )
    })
    .await
    .unwrap()
}

/// `GET path` as `token`, asserting 200.
async fn read(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The FreeSWITCH directory's answer when the phone `user` registers.
async fn directory(app: &TestApp, user: &str) -> String {
    let body = fixture(
        "directory-sip_auth-register",
        &[
            ("user", user),
            ("sip_auth_username", user),
            ("sip_from_user", user),
            ("sip_to_user", user),
            ("sip_contact_user", user),
        ],
    );
    let response = app
        .request(Method::POST, "/freeswitch/xml")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// `value` with every RFC 3339 timestamp cut to the microsecond: what PostgreSQL keeps (the
/// server's own writes there are cut the same way).
fn to_the_microsecond(value: &Value) -> Value {
    use chrono::SubsecRound;
    match value {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => json!(t.with_timezone(&chrono::Utc).trunc_subsecs(6)),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(to_the_microsecond).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_the_microsecond(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The stored rows the test made, straight from the database.
async fn stored(
    db: &DatabaseConnection,
) -> (
    Vec<domains::Model>,
    Vec<users::Model>,
    Vec<extensions::Model>,
    Vec<devices::Model>,
) {
    use chrono::SubsecRound;
    let mut d = domains::Entity::find().all(db).await.unwrap();
    let mut u = users::Entity::find().all(db).await.unwrap();
    let mut e = extensions::Entity::find().all(db).await.unwrap();
    let mut p = devices::Entity::find().all(db).await.unwrap();
    d.sort_by_key(|r| r.id);
    u.sort_by_key(|r| r.id);
    e.sort_by_key(|r| r.id);
    p.sort_by_key(|r| r.id);
    for r in &mut d {
        (r.created_at, r.updated_at) =
            (r.created_at.trunc_subsecs(6), r.updated_at.trunc_subsecs(6));
    }
    for r in &mut u {
        (r.created_at, r.updated_at) =
            (r.created_at.trunc_subsecs(6), r.updated_at.trunc_subsecs(6));
        r.last_login_at = r.last_login_at.map(|t| t.trunc_subsecs(6));
        r.password_changed_at = r.password_changed_at.map(|t| t.trunc_subsecs(6));
    }
    for r in &mut e {
        (r.created_at, r.updated_at) =
            (r.created_at.trunc_subsecs(6), r.updated_at.trunc_subsecs(6));
    }
    for r in &mut p {
        (r.created_at, r.updated_at) =
            (r.created_at.trunc_subsecs(6), r.updated_at.trunc_subsecs(6));
        r.last_provisioned_at = r.last_provisioned_at.map(|t| t.trunc_subsecs(6));
    }
    (d, u, e, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_installation_copied_to_postgresql_serves_the_same_data() {
    let old = spawn_app(Backend::Sqlite).await;
    let (domain, admin) = domain_with_admin(&old, SIP_DOMAIN).await;
    create_user(&old, &admin, &domain, "dana@move.test", &["domain_admin"]).await;
    let owner = extension(&old, &admin, &domain, "201", false).await;
    let device = create(
        &old,
        &admin,
        &domain,
        "devices",
        json!({"label": "Dana's desk", "mode": "fixed", "owner_extension_id": owner,
               "mac_address": "00:15:65:12:34:56", "vendor": "Yealink", "model": "T54W"}),
    )
    .await;
    let device = id_of(&device);
    let paths = [
        format!("/api/v1/domains/{domain}"),
        format!("/api/v1/domains/{domain}/extensions/{owner}"),
        format!("/api/v1/domains/{domain}/devices/{device}"),
        format!("/api/v1/domains/{domain}/devices/{device}/sip-secret"),
    ];
    let mut before = Vec::new();
    for path in &paths {
        before.push(read(&old, &admin, path).await);
    }
    let secret = before[3]["sip_secret"].as_str().unwrap().to_owned();
    let sip_user = before[3]["sip_username"].as_str().unwrap().to_owned();
    let rows_before = stored(&old.db).await;
    old.stop().await;

    let target = FreshDatabase::create(Backend::Postgres).await;
    let run = copy_data(&old.database_url, &target.url()).await;
    assert!(run.status.success(), "{run}");
    for (table, rows) in [
        ("domains", 1),
        ("users", 2),
        ("extensions", 1),
        ("devices", 1),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [table, &rows.to_string()]),
            "{table}: {rows} in the summary\n{run}"
        );
    }

    // The same secrets key: the server starts (it checks the key against the copied rows).
    let new = spawn_app_on(target, |_| {}).await;
    assert_eq!(
        stored(&new.db).await,
        rows_before,
        "the rows, column by column"
    );
    // Keys the database generates go on after the copied ones.
    for (table, column) in switchboard_api::copy_data::serial_keys() {
        let row = new
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) AS next, \
                     COALESCE(MAX(\"{column}\"), 0) AS max FROM \"{table}\""
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        let (next, max): (i64, i64) = (
            row.try_get("", "next").unwrap(),
            row.try_get("", "max").unwrap(),
        );
        assert!(
            next > max,
            "{table}.{column}: the sequence gives {next}, the copy holds {max}"
        );
    }
    let admin = new.admin_token().await;
    for (path, was) in paths.iter().zip(&before) {
        let now = read(&new, &admin, path).await;
        assert_eq!(
            to_the_microsecond(&now),
            to_the_microsecond(was),
            "GET {path} after the copy"
        );
    }
    // Dana logs in with her own password: the hash came along.
    token_of(&new, "dana@move.test").await;
    // FreeSWITCH gets the same credentials for the phone.
    let expected = a1_hash(&sip_user, SIP_DOMAIN, &SecretString::from(secret));
    let doc = directory(&new, &sip_user).await;
    assert!(doc.contains(&expected), "no a1-hash {expected} in {doc}");
    // And it goes on from there.
    extension(&new, &admin, &domain, "202", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_a_database_that_holds_rows_is_refused_and_changes_nothing() {
    let source = spawn_app(Backend::Sqlite).await;
    domain_with_admin(&source, SIP_DOMAIN).await;
    source.stop().await;
    let target = spawn_app(Backend::Postgres).await;
    let (kept, admin) = domain_with_admin(&target, "kept.pbx.test").await;
    let before = read(&target, &admin, "/api/v1/domains").await;

    let run = copy_data(&source.database_url, &target.database_url).await;
    assert_eq!(run.status.code(), Some(1), "{run}");
    assert!(
        run.stderr.contains(
            "error: the target (--to) is not empty: the table server_settings holds rows"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("never merges"), "{run}");
    assert_eq!(read(&target, &admin, "/api/v1/domains").await, before);
    let (status, _) = call(
        &target,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{kept}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        domains::Entity::find().all(&target.db).await.unwrap().len(),
        1,
        "only the target's own Domain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_from_something_that_is_not_a_switchboard_database_is_refused() {
    let dir = TempDir::new();
    let missing = format!("sqlite://{}", dir.0.join("missing.db").display());
    let target = FreshDatabase::create(Backend::Postgres).await;
    let run = copy_data(&missing, &target.url()).await;
    assert_eq!(run.status.code(), Some(1), "{run}");
    assert!(
        run.stderr.contains("there is no SQLite database at"),
        "{run}"
    );

    let run = copy_data(&target.url(), &target.url()).await;
    assert_eq!(run.status.code(), Some(1), "{run}");
    assert!(run.stderr.contains("the same database"), "{run}");
}
