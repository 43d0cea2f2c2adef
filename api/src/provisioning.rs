//! The provisioning endpoint's engine: every Domain's phones compiled in memory, their files
//! rendered once and served from memory until a change event says the Domain changed, and the
//! authentication of each fetch.
//!
//! - **Cache.** A Domain is compiled on its first fetch (one compile at a time per Domain: a
//!   boot storm waits for one load, not a thousand) and dropped by the event bus's observer the
//!   moment any change of the Domain is published, before the API has answered its client, so a
//!   phone told to `check_sync` never fetches the old file. A compile that raced a change is
//!   not kept (a generation counter per Domain).
//! - **Authentication.** HTTP digest (MD5, `qop=auth`, stateless nonces signed with a random
//!   key of this process and valid for five minutes) always; basic only over TLS (a trusted
//!   proxy's `X-Forwarded-Proto: https`) unless `provisioning.allow_basic_without_tls`. The
//!   credential is the Device's own (its SIP user name and provisioning password) or, for a
//!   first boot, its Domain's first-boot credential from one of the Domain's allowed networks.
//!   No crate implements the server side of digest; it is a page of hashing written here.
//! - **Refusals.** An unknown MAC, a wrong credential and a Device of another Domain are the
//!   same 401 (with a fresh challenge): a caller cannot tell which. Failures count per client
//!   address; past `max_failures` within `failure_window_secs` the address is answered 429
//!   with `Retry-After`, even with a right credential. An attempt counts before it is checked
//!   and is given back when it succeeds, so a parallel burst cannot get more than the limit of
//!   guesses evaluated.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use md5::{Digest as _, Md5};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use switchboard_domain::events::{ChangeEvent, Observer};
use switchboard_domain::provisioning::files::{Requested, file_name, spec_for};
use switchboard_domain::provisioning::phones::{Phone, Platform};
use switchboard_domain::provisioning::render::main_template;
use switchboard_domain::services::provisioning::{self as service, CompiledPhones};
use switchboard_domain::telephony::secrets::SecretCipher;
use uuid::Uuid;

use crate::config::Config;

/// The digest realm phones authenticate in.
pub const REALM: &str = "switchboard provisioning";
/// How long a nonce is good for.
const NONCE_TTL_SECS: u64 = 300;
/// How often a Device's last fetch is written to the database at most.
const RECORD_EVERY: Duration = Duration::from_secs(60);

/// One Domain, compiled, with the files rendered so far.
struct Compiled {
    phones: CompiledPhones,
    files: Mutex<HashMap<String, Arc<Bytes>>>,
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The Device's own credential.
    Device,
    /// The Domain's first-boot credential.
    FirstBoot,
}

/// What the endpoint answers.
#[derive(Debug)]
pub enum Outcome {
    /// The file.
    File {
        /// Its bytes.
        body: Arc<Bytes>,
        /// Its MIME type.
        content_type: &'static str,
        /// The Device.
        device_id: Uuid,
        /// How it authenticated.
        credential: Credential,
    },
    /// 401 with a challenge (`stale`: the nonce expired, the credential may be right).
    Unauthorized {
        /// The nonce was too old.
        stale: bool,
    },
    /// 404: authenticated, but the phone's vendor asks for no such file.
    NotFound,
    /// 429: too many failures from this address.
    Throttled {
        /// Seconds until the window passes.
        retry_after: u64,
    },
    /// 503: the database cannot be read and the Domain is not compiled.
    Unavailable,
    /// 503: the template does not render for this phone (logged; never a broken file).
    Broken,
}

/// The request as the engine needs it.
#[derive(Debug)]
pub struct Fetch<'a> {
    /// The file asked for.
    pub requested: Requested,
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The request's method and URI (for digest).
    pub method: &'a str,
    /// The request URI as sent (path and query).
    pub uri: &'a str,
    /// The client's address.
    pub client: Option<IpAddr>,
    /// Whether the request came over TLS.
    pub tls: bool,
}

struct Window {
    started: Instant,
    count: u32,
}

/// The provisioning engine (see the module).
pub struct Provisioner {
    db: DatabaseConnection,
    cipher: Arc<SecretCipher>,
    platform: Platform,
    allow_basic_without_tls: bool,
    max_failures: u32,
    window: Duration,
    nonce_key: [u8; 32],
    domains: RwLock<HashMap<Uuid, Arc<Compiled>>>,
    macs: RwLock<HashMap<String, Uuid>>,
    generations: Mutex<HashMap<Uuid, u64>>,
    compiling: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    failures: Mutex<HashMap<IpAddr, Window>>,
    recorded: Mutex<HashMap<Uuid, Instant>>,
    epoch: AtomicU64,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner").finish_non_exhaustive()
    }
}

/// The platform side of every phone's file, from the configuration.
pub fn platform(config: &Config) -> Platform {
    let p = &config.provisioning;
    Platform {
        sip_proxy: p.sip_proxy.clone().unwrap_or_default(),
        sip_port: p.sip_port,
        sip_transport: p.sip_transport.clone(),
        register_expires: p.register_expires,
        base_url: config.provisioning_url(),
        resync_secs: p.resync_secs,
        ntp_server: p.ntp_server.clone(),
        codecs: p.codecs.clone(),
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The parameters of a `Digest` authorization header.
fn digest_params(header: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            value = v;
            rest = quoted.get(end..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.insert(key, value);
    }
    out
}

enum Presented {
    Basic { user: String, password: String },
    Digest(HashMap<String, String>),
}

fn presented(authorization: &str) -> Option<Presented> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Presented::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    if scheme.eq_ignore_ascii_case("digest") {
        return Some(Presented::Digest(digest_params(rest)));
    }
    None
}

fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Provisioner {
    /// A new engine; register [`Provisioner::observer`] on the event bus.
    pub fn new(db: DatabaseConnection, cipher: Arc<SecretCipher>, config: &Config) -> Self {
        let mut nonce_key = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce_key);
        Self {
            db,
            cipher,
            platform: platform(config),
            allow_basic_without_tls: config.provisioning.allow_basic_without_tls,
            max_failures: config.provisioning.max_failures,
            window: Duration::from_secs(config.provisioning.failure_window_secs),
            nonce_key,
            domains: RwLock::default(),
            macs: RwLock::default(),
            generations: Mutex::default(),
            compiling: Mutex::default(),
            failures: Mutex::default(),
            recorded: Mutex::default(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The platform side of the files (also for previews).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Whether basic authentication is accepted on a request.
    pub fn basic_allowed(&self, tls: bool) -> bool {
        tls || self.allow_basic_without_tls
    }

    /// The observer to register on the event bus: forgets the changed Domain at once.
    pub fn observer(self: &Arc<Self>) -> Observer {
        let me = Arc::downgrade(self);
        Arc::new(move |event: &ChangeEvent| {
            if let Some(me) = me.upgrade() {
                me.forget(event.domain_id);
            }
        })
    }

    fn forget(&self, domain_id: Uuid) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut g) = self.generations.lock() {
            *g.entry(domain_id).or_default() += 1;
        }
        if let Ok(mut d) = self.domains.write() {
            if domain_id.is_nil() {
                d.clear();
            } else {
                d.remove(&domain_id);
            }
        }
    }

    fn generation(&self, domain_id: Uuid) -> u64 {
        self.generations
            .lock()
            .map(|g| g.get(&domain_id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// A fresh digest nonce: the time and a keyed hash of it.
    pub fn nonce(&self) -> String {
        let now = Utc::now().timestamp().max(0) as u64;
        self.sign_nonce(now)
    }

    fn sign_nonce(&self, at: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.nonce_key);
        h.update(at.to_be_bytes());
        let mac = h.finalize();
        format!("{at:x}.{}", hex::encode(&mac[..16]))
    }

    /// `Ok(true)` for a good, current nonce; `Ok(false)` for a good, expired one.
    fn check_nonce(&self, nonce: &str) -> Result<bool, ()> {
        let (at, _) = nonce.split_once('.').ok_or(())?;
        let at = u64::from_str_radix(at, 16).map_err(|_| ())?;
        if !eq(&self.sign_nonce(at), nonce) {
            return Err(());
        }
        let now = Utc::now().timestamp().max(0) as u64;
        Ok(now.saturating_sub(at) <= NONCE_TTL_SECS && at <= now + 5)
    }

    /// The `WWW-Authenticate` values of a 401.
    pub fn challenges(&self, stale: bool, tls: bool) -> Vec<String> {
        let mut out = vec![format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\"{}",
            self.nonce(),
            if stale { ", stale=true" } else { "" }
        )];
        if self.basic_allowed(tls) {
            out.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        out
    }

    /// Counts an attempt from `client` before it is checked; `Err(seconds)` when the address
    /// is over its limit.
    fn reserve(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let Some(ip) = client else { return Ok(()) };
        let Ok(mut f) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let w = f.entry(ip).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.duration_since(w.started) >= self.window {
            w.started = now;
            w.count = 0;
        }
        if w.count >= self.max_failures {
            let left = self.window.saturating_sub(now.duration_since(w.started));
            return Err(left.as_secs().max(1));
        }
        w.count += 1;
        if f.len() > 100_000 {
            let window = self.window;
            f.retain(|_, w| now.duration_since(w.started) < window);
        }
        Ok(())
    }

    /// Gives back an attempt that did not fail.
    fn release(&self, client: Option<IpAddr>) {
        if let (Some(ip), Ok(mut f)) = (client, self.failures.lock())
            && let Some(w) = f.get_mut(&ip)
        {
            w.count = w.count.saturating_sub(1);
        }
    }

    async fn domain(&self, domain_id: Uuid) -> Result<Option<Arc<Compiled>>, ()> {
        if let Some(c) = self
            .domains
            .read()
            .ok()
            .and_then(|d| d.get(&domain_id).cloned())
        {
            return Ok(Some(c));
        }
        let gate = self
            .compiling
            .lock()
            .map(|mut m| m.entry(domain_id).or_default().clone())
            .map_err(|_| ())?;
        let _turn = gate.lock().await;
        if let Some(c) = self
            .domains
            .read()
            .ok()
            .and_then(|d| d.get(&domain_id).cloned())
        {
            return Ok(Some(c));
        }
        let generation = self.generation(domain_id);
        let compiled = service::compile(
            &self.db,
            &self.cipher,
            &self.platform,
            domain_id,
            Utc::now(),
        )
        .await
        .map_err(
            |e| tracing::warn!(domain = %domain_id, error = %e, "provisioning: cannot compile"),
        )?;
        let Some(phones) = compiled else {
            return Ok(None);
        };
        if let Ok(mut macs) = self.macs.write() {
            for mac in phones.phones.keys() {
                macs.insert(mac.clone(), domain_id);
            }
        }
        let compiled = Arc::new(Compiled {
            phones,
            files: Mutex::default(),
        });
        if self.generation(domain_id) == generation
            && let Ok(mut d) = self.domains.write()
        {
            d.insert(domain_id, compiled.clone());
        }
        Ok(Some(compiled))
    }

    /// The compiled Domain holding a MAC, if any.
    async fn find(&self, mac: &str) -> Result<Option<Arc<Compiled>>, ()> {
        let known = self.macs.read().ok().and_then(|m| m.get(mac).copied());
        if let Some(domain_id) = known
            && let Some(c) = self.domain(domain_id).await?
            && c.phones.phones.contains_key(mac)
        {
            return Ok(Some(c));
        }
        // Unknown here, or moved: ask the database.
        let domain_id = service::domain_of_mac(&self.db, mac)
            .await
            .map_err(|_| ())?;
        match domain_id {
            Some(id) if Some(id) != known => self.domain(id).await,
            Some(_) => Ok(None),
            None => {
                if let Ok(mut m) = self.macs.write() {
                    m.remove(mac);
                }
                Ok(None)
            }
        }
    }

    fn verify(
        &self,
        phone: &Phone,
        compiled: &CompiledPhones,
        fetch: &Fetch<'_>,
    ) -> Result<Credential, bool> {
        let Some(presented) = fetch.authorization.and_then(presented) else {
            return Err(false);
        };
        let first_boot = compiled.first_boot.as_ref().filter(|f| {
            fetch
                .client
                .is_some_and(|ip| f.networks.iter().any(|n| n.contains(&ip)))
        });
        match presented {
            Presented::Basic { user, password } => {
                if !self.basic_allowed(fetch.tls) {
                    return Err(false);
                }
                if let Some(p) = &phone.password
                    && eq(&user, &phone.sip_user)
                    && eq(&password, p.expose_secret())
                {
                    return Ok(Credential::Device);
                }
                if let Some(f) = first_boot
                    && eq(&user, &f.username)
                    && eq(&password, f.password.expose_secret())
                {
                    return Ok(Credential::FirstBoot);
                }
                Err(false)
            }
            Presented::Digest(params) => {
                let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
                if get("realm") != REALM
                    || !get("algorithm").is_empty() && !get("algorithm").eq_ignore_ascii_case("md5")
                    || get("uri") != fetch.uri
                {
                    return Err(false);
                }
                let fresh = self.check_nonce(get("nonce")).map_err(|_| false)?;
                let user = get("username");
                let candidates = [
                    phone
                        .password
                        .as_ref()
                        .map(|p| (phone.sip_user.as_str(), p, Credential::Device)),
                    first_boot.map(|f| (f.username.as_str(), &f.password, Credential::FirstBoot)),
                ];
                for (name, password, kind) in candidates.into_iter().flatten() {
                    if !eq(user, name) {
                        continue;
                    }
                    let ha1 = md5_hex(&[
                        name.as_bytes(),
                        REALM.as_bytes(),
                        password.expose_secret().as_bytes(),
                    ]);
                    let ha2 = md5_hex(&[fetch.method.as_bytes(), fetch.uri.as_bytes()]);
                    let expected = match get("qop") {
                        "" => md5_hex(&[ha1.as_bytes(), get("nonce").as_bytes(), ha2.as_bytes()]),
                        qop => md5_hex(&[
                            ha1.as_bytes(),
                            get("nonce").as_bytes(),
                            get("nc").as_bytes(),
                            get("cnonce").as_bytes(),
                            qop.as_bytes(),
                            ha2.as_bytes(),
                        ]),
                    };
                    if eq(&expected, &get("response").to_ascii_lowercase()) {
                        // A right answer to an old nonce: ask again with a fresh one.
                        return if fresh { Ok(kind) } else { Err(true) };
                    }
                }
                Err(false)
            }
        }
    }

    /// Answers one fetch.
    pub async fn fetch(&self, fetch: &Fetch<'_>) -> Outcome {
        if let Err(retry_after) = self.reserve(fetch.client) {
            return Outcome::Throttled { retry_after };
        }
        // A phone's first request carries no credential: that is the handshake, not a failure.
        if fetch.authorization.is_none() {
            self.release(fetch.client);
            return Outcome::Unauthorized { stale: false };
        }
        let mac = &fetch.requested.mac;
        let compiled = match self.find(mac).await {
            Ok(Some(c)) => c,
            Ok(None) => return Outcome::Unauthorized { stale: false },
            Err(()) => {
                self.release(fetch.client);
                return Outcome::Unavailable;
            }
        };
        let Some(phone) = compiled.phones.phones.get(mac) else {
            return Outcome::Unauthorized { stale: false };
        };
        let credential = match self.verify(phone, &compiled.phones, fetch) {
            Ok(c) => c,
            Err(stale) => {
                if stale {
                    self.release(fetch.client);
                }
                return Outcome::Unauthorized { stale };
            }
        };
        self.release(fetch.client);
        let Some(spec) = spec_for(phone.model.vendor, fetch.requested.shape) else {
            return Outcome::NotFound;
        };
        let name = file_name(spec, mac);
        let cached = compiled
            .files
            .lock()
            .ok()
            .and_then(|f| f.get(&name).cloned());
        let body = match cached {
            Some(b) => b,
            None => {
                let ctx = phone.context_with_secrets();
                let main = spec.template == main_template(phone.model.vendor);
                match service::render_file(phone, spec.template, main, &ctx) {
                    Ok(text) => {
                        let body = Arc::new(Bytes::from(text));
                        if let Ok(mut f) = compiled.files.lock() {
                            f.insert(name, body.clone());
                        }
                        body
                    }
                    Err(e) => {
                        tracing::error!(
                            device = %phone.device_id,
                            template = spec.template,
                            error = %e,
                            "provisioning: the template does not render"
                        );
                        return Outcome::Broken;
                    }
                }
            }
        };
        Outcome::File {
            body,
            content_type: spec.content_type,
            device_id: phone.device_id,
            credential,
        }
    }

    /// Writes a Device's last fetch to the database, at most once a minute per Device.
    pub fn record(&self, device_id: Uuid, from: String, agent: String) {
        let now = Instant::now();
        let due = self.recorded.lock().is_ok_and(|mut r| {
            let due = r
                .get(&device_id)
                .is_none_or(|at| now.duration_since(*at) >= RECORD_EVERY);
            if due {
                r.insert(device_id, now);
            }
            due
        });
        if !due {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            if let Err(e) = service::record_fetch(&db, device_id, Utc::now(), &from, &agent).await {
                tracing::warn!(device = %device_id, error = %e, "provisioning: cannot record the fetch");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parameters_are_parsed_with_quotes_and_commas() {
        let p = digest_params(
            r#"username="d-7f3a", realm="switchboard provisioning", nonce="1a.ff", uri="/provision/001565aabbcc.cfg", response="abc", qop=auth, nc=00000001, cnonce="x,y""#,
        );
        assert_eq!(p["username"], "d-7f3a");
        assert_eq!(p["realm"], REALM);
        assert_eq!(p["uri"], "/provision/001565aabbcc.cfg");
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["nc"], "00000001");
        assert_eq!(p["cnonce"], "x,y");
    }

    #[test]
    fn md5_of_the_rfc_2617_example() {
        // RFC 2617 §3.5: Mufasa / "Circle Of Life" in testrealm@host.com.
        let ha1 = md5_hex(&[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"]);
        let ha2 = md5_hex(&[b"GET", b"/dir/index.html"]);
        let response = md5_hex(&[
            ha1.as_bytes(),
            b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            b"00000001",
            b"0a4f113b",
            b"auth",
            ha2.as_bytes(),
        ]);
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("d-1:s3cret:with:colons")
        );
        match presented(&header) {
            Some(Presented::Basic { user, password }) => {
                assert_eq!(user, "d-1");
                assert_eq!(password, "s3cret:with:colons");
            }
            _ => panic!("not basic"),
        }
        assert!(presented("Bearer x").is_none());
    }
}
