//! A phone fetching its provisioning files (`GET /provision/<file>`) the way real ones do:
//! digest authentication after a first unauthenticated request, or basic; and reading what it
//! got. Shared by the API tests and the live suite.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use reqwest::Method;

use crate::TestApp;

pub fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

pub fn param(header: &str, name: &str) -> Option<String> {
    let start = header.find(&format!("{name}=\""))? + name.len() + 2;
    let end = header[start..].find('"')? + start;
    Some(header[start..end].to_owned())
}

/// GETs `/provision/<file>` the way a phone does: without credentials first, then with a
/// digest answer to the challenge. Returns the final status, headers and body.
pub async fn fetch_digest(app: &TestApp, file: &str, user: &str, password: &str) -> (u16, String) {
    let uri = format!("/provision/{file}");
    let first = app.get(&uri).await;
    assert_eq!(first.status().as_u16(), 401, "a phone is challenged first");
    let challenge = first
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("Digest"))
        .expect("a digest challenge")
        .to_owned();
    let realm = param(&challenge, "realm").unwrap();
    let nonce = param(&challenge, "nonce").unwrap();
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("GET:{uri}"));
    let cnonce = "0a4f113b";
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
    let header = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         qop=auth, nc=00000001, cnonce=\"{cnonce}\", response=\"{response}\", algorithm=MD5"
    );
    let r = app
        .request(Method::GET, &uri)
        .header("authorization", header)
        .header(
            "user-agent",
            "Yealink SIP-T54W 96.86.0.100 00:15:65:aa:bb:cc",
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

pub async fn fetch_basic(
    app: &TestApp,
    file: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    app.request(Method::GET, &format!("/provision/{file}"))
        .header("authorization", format!("Basic {token}"))
        .send()
        .await
        .unwrap()
}

/// The `linekey.N.*` values of a Yealink file, by N.
pub fn yealink_keys(file: &str) -> std::collections::BTreeMap<u32, (String, String, String)> {
    let mut keys: std::collections::BTreeMap<u32, (String, String, String)> = Default::default();
    for line in file.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim().to_owned());
        let Some(rest) = k.strip_prefix("linekey.") else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        let e = keys.entry(n).or_default();
        match field {
            "type" => e.0 = v,
            "value" => e.1 = v,
            "label" => e.2 = v,
            _ => {}
        }
    }
    keys
}

pub fn value_of(file: &str, key: &str) -> Option<String> {
    file.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}
