//! The in-memory, precompiled directory that answers mod_xml_curl, kept current by the change
//! events.
//!
//! Every Domain is compiled once into its finished answers ([`CompiledDomain`]); a lookup is a
//! hash-map hit, a binary search and the unpacking of one packed user. The view changes only when a change event says a
//! Domain changed:
//! - the bus calls [`Directory::observer`] synchronously inside `publish`, which marks the
//!   Domain stale before the API has even answered its client;
//! - a background task recompiles stale Domains at once, and a lookup that finds its Domain
//!   stale first recompiles it itself (a lookup of another Domain does not wait; lookups that
//!   span Domains — gateways, dialplan — wait for every pending recompile). So a lookup never
//!   answers from a view older than a change that was already confirmed to anyone (FreeSWITCH
//!   asks again right after the bridge flushes its cache).
//! - When the database cannot be read, the last good view keeps answering (phones keep
//!   registering) and the reload is retried after [`RETRY_AFTER_FAILURE`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt as _;
use sea_orm::DatabaseConnection;
use switchboard_domain::events::{ChangeEvent, ChangeKind, Observer};
use switchboard_domain::services::directory as source;
use switchboard_domain::telephony::secrets::SecretCipher;
use switchboard_domain::{DomainError, DomainResult};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::xml::NOT_FOUND;
use crate::xml::carriers::{CARRIERS_ACL, CARRIERS_DOMAIN, Carrier, Carriers, proxy_host};
use crate::xml::dialplan::{
    FORWARDED_BY_VARIABLE, INBOUND_NUMBER_VARIABLE, Inbound, LOGGED_OUT_CONTEXT, OUTCOME_PREFIX,
    PUBLIC_CONTEXT, RecordingPlace, barred_document, emergency_document, end_document,
    feature_document, inbound_document, outbound_document, park_document, parse_feature_code,
    parse_park_code, public_refused_document, refused_document, ring_document, step_document,
    unallocated_document, voicemail_document,
};
use crate::xml::directory::{
    CompileSettings, CompiledDomain, VOICEMAIL_CONTEXT, gateways_document,
};
use crate::xml::request::XmlCurlRequest;
use switchboard_domain::routing::callers::CallerRef;
use switchboard_domain::routing::destination::Destination;
use switchboard_domain::routing::dialplan::{Decision, Step, Target};
use switchboard_domain::routing::flows::{BUILTIN_PROMPTS, CompiledFlow, FlowConfig, Greeting};

use crate::flows::{
    FlowLive, caller_gone, condition_branch, extension_lengths, menu_choice, plan_group,
};
use crate::xml::flows::{self as flows_xml, FlowLookup, MenuPlay};
use switchboard_domain::routing::dialplan::{EmergencyCall, HangupCause};
use switchboard_domain::routing::facts::NumberFacts;

/// How long a failed reload waits before lookups try again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// How the directory answers.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// `cacheable` on users, in milliseconds (0: none).
    pub cacheable_ms: u64,
    /// `host:port` of the outbound socket feature codes are handed to.
    pub outbound_socket: String,
    /// Where FreeSWITCH writes recordings (each Domain in its own directory below); may name
    /// FreeSWITCH variables (`${recordings_dir}`).
    pub recordings_dir: String,
    /// The live state call flows read (line state, round-robin turns).
    pub live: Arc<FlowLive>,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        Self {
            cacheable_ms: 300_000,
            outbound_socket: "127.0.0.1:8084".to_owned(),
            recordings_dir: DEFAULT_RECORDINGS_DIR.to_owned(),
            live: Arc::default(),
        }
    }
}

/// FreeSWITCH's own recordings directory.
pub const DEFAULT_RECORDINGS_DIR: &str = "${recordings_dir}";

/// What kind of answer a request got (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// One complete user.
    User,
    /// A call group.
    Group,
    /// Every Domain (`purpose=gateways`).
    Gateways,
    /// A bare Domain.
    Domain,
    /// A feature code handed to the outbound socket.
    FeatureCode,
    /// An emergency call from a logged-out phone.
    Emergency,
    /// A call refused on a logged-out phone.
    Barred,
    /// A voicemail box.
    Voicemail,
    /// A call leaving through a gateway.
    Outbound,
    /// A call refused before it left (toll class, no gateway, unknown caller).
    Refused,
    /// A carrier's call to a Number.
    Inbound,
    /// The carriers' addresses (`purpose=network-list`).
    NetworkList,
    /// A call to an Extension that rings (a bridge to its ring plan).
    Extension,
    /// An Extension's outcome: forward, voicemail, hang-up (straight away or after a ring).
    Outcome,
    /// A number nothing in the Domain's context answers to.
    Unallocated,
    /// A ring group, IVR menu or time condition (or its next step).
    CallFlow,
    /// Not ours: FreeSWITCH tries its next source.
    NotFound,
}

impl AnswerKind {
    /// A label for metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Gateways => "gateways",
            Self::Domain => "domain",
            Self::FeatureCode => "feature_code",
            Self::Emergency => "emergency",
            Self::Barred => "barred",
            Self::Voicemail => "voicemail",
            Self::Outbound => "outbound",
            Self::Refused => "refused",
            Self::Inbound => "inbound",
            Self::NetworkList => "network_list",
            Self::Extension => "extension",
            Self::Outcome => "outcome",
            Self::Unallocated => "unallocated",
            Self::CallFlow => "call_flow",
            Self::NotFound => "not_found",
        }
    }
}

/// An answer: the XML document and what it is.
#[derive(Debug, Clone)]
pub struct Answer {
    /// What kind of answer.
    pub kind: AnswerKind,
    /// The document.
    pub body: String,
    /// An emergency call to report on the Domain's live stream: (Domain id, SIP domain, call).
    pub emergency: Option<(Uuid, String, EmergencyCall)>,
}

impl Answer {
    fn not_found() -> Self {
        Self {
            kind: AnswerKind::NotFound,
            body: NOT_FOUND.to_owned(),
            emergency: None,
        }
    }

    pub(crate) fn of(kind: AnswerKind, body: String) -> Self {
        Self {
            kind,
            body,
            emergency: None,
        }
    }
}

/// Every compiled Domain: what one lookup reads. Pure: it answers without a database.
#[derive(Debug, Default)]
pub struct View {
    by_name: HashMap<String, Arc<CompiledDomain>>,
    name_of: HashMap<Uuid, String>,
    /// Every Domain's Numbers (E.164) → the Domain: a carrier's call finds its Domain in one
    /// lookup, not by asking every Domain.
    number_owner: HashMap<String, Uuid>,
    carriers: Arc<Carriers>,
}

impl View {
    /// A view of these Domains.
    pub fn of(domains: impl IntoIterator<Item = CompiledDomain>) -> Self {
        let mut view = Self::default();
        for d in domains {
            view.put(d);
        }
        view
    }

    fn put(&mut self, domain: CompiledDomain) {
        self.remove(domain.id);
        for number in domain.dialplan.inbound_numbers() {
            // Unique platform-wide; while a Number moves, the Domain compiled last has it.
            self.number_owner.insert(number.to_owned(), domain.id);
        }
        self.name_of.insert(domain.id, domain.sip_domain.clone());
        self.by_name
            .insert(domain.sip_domain.clone(), Arc::new(domain));
    }

    /// Gives back what the maps reserved while they grew (the cold start).
    fn shrink_to_fit(&mut self) {
        self.by_name.shrink_to_fit();
        self.name_of.shrink_to_fit();
        self.number_owner.shrink_to_fit();
    }

    fn by_id(&self, id: Uuid) -> Option<&Arc<CompiledDomain>> {
        self.name_of
            .get(&id)
            .and_then(|name| self.by_name.get(name))
    }

    fn remove(&mut self, id: Uuid) {
        if let Some(name) = self.name_of.remove(&id)
            && let Some(old) = self.by_name.get(&name).filter(|d| d.id == id)
        {
            for number in old.dialplan.inbound_numbers() {
                if self.number_owner.get(number) == Some(&id) {
                    self.number_owner.remove(number);
                }
            }
            self.by_name.remove(&name);
        }
    }

    /// The enabled Domain a carrier's call to `called` is for, and its Number: by the
    /// platform-wide index when the carrier sent E.164 (with or without the `+`); otherwise
    /// read with the numbering of each Domain that may receive calls from `owner`'s gateway
    /// (only its Domain for a Domain's own gateway).
    fn inbound_number(
        &self,
        called: &str,
        owner: Option<Uuid>,
    ) -> Option<(&Arc<CompiledDomain>, &NumberFacts)> {
        let called = called.trim();
        let plus = (!called.starts_with('+')).then(|| format!("+{called}"));
        let indexed = [Some(called), plus.as_deref()]
            .into_iter()
            .flatten()
            .find_map(|n| self.number_owner.get(n));
        fn of<'v>(
            d: &'v Arc<CompiledDomain>,
            called: &str,
        ) -> Option<(&'v Arc<CompiledDomain>, &'v NumberFacts)> {
            Some((d, d.dialplan.inbound(called)?))
        }
        let found = match (indexed, owner) {
            (Some(id), _) => self.by_id(*id).and_then(|d| of(d, called)),
            (None, Some(id)) => self.by_id(id).and_then(|d| of(d, called)),
            (None, None) => self
                .by_name
                .values()
                .filter(|d| d.enabled)
                .find_map(|d| of(d, called)),
        };
        found.filter(|(d, _)| d.enabled)
    }
}

/// The directory's Prometheus metrics (registered into the application's registry).
#[derive(Debug, Clone)]
pub struct DirectoryMetrics {
    /// Answers by kind (`user`, `not_found`, `feature_code`, …).
    pub answers: prometheus::IntCounterVec,
    /// Requests refused before an answer, by reason (`address`, `credentials`, `too_large`,
    /// `unreadable`): the endpoint is outside the API's HTTP metrics, so they count here.
    pub refusals: prometheus::IntCounterVec,
    /// Users in the compiled view.
    pub users: prometheus::IntGauge,
    /// Domains in the compiled view.
    pub domains: prometheus::IntGauge,
    /// Domains recompiled after a change.
    pub recompiles: prometheus::IntCounter,
    /// Recompiles that failed (the last good view kept answering).
    pub recompile_failures: prometheus::IntCounter,
    /// Recompiles that applied a change to some Devices in place (reading those Devices and
    /// what they touch, not the Domain): counted in `recompiles` too.
    pub applied_in_place: prometheus::IntCounter,
}

impl DirectoryMetrics {
    fn new() -> prometheus::Result<Self> {
        let opts =
            |name: &str, help: &str| prometheus::Opts::new(name, help).namespace("switchboard");
        Ok(Self {
            answers: prometheus::IntCounterVec::new(
                opts("xml_curl_answers_total", "mod_xml_curl answers by kind"),
                &["kind"],
            )?,
            refusals: prometheus::IntCounterVec::new(
                opts(
                    "xml_curl_refusals_total",
                    "mod_xml_curl requests refused (401/403/413/400) by reason",
                ),
                &["reason"],
            )?,
            users: prometheus::IntGauge::with_opts(opts(
                "directory_users",
                "SIP users in the compiled FreeSWITCH directory",
            ))?,
            domains: prometheus::IntGauge::with_opts(opts(
                "directory_domains",
                "Domains in the compiled FreeSWITCH directory",
            ))?,
            recompiles: prometheus::IntCounter::with_opts(opts(
                "directory_recompiles_total",
                "Domains recompiled after a change event",
            ))?,
            recompile_failures: prometheus::IntCounter::with_opts(opts(
                "directory_recompile_failures_total",
                "Recompiles that failed (the last good view kept answering)",
            ))?,
            applied_in_place: prometheus::IntCounter::with_opts(opts(
                "directory_applied_in_place_total",
                "Recompiles that applied a change to some Devices in place (of directory_recompiles_total)",
            ))?,
        })
    }

    /// Registers every metric (already registered ones are left as they are).
    pub fn register(&self, registry: &prometheus::Registry) {
        let _ = registry.register(Box::new(self.answers.clone()));
        let _ = registry.register(Box::new(self.refusals.clone()));
        let _ = registry.register(Box::new(self.users.clone()));
        let _ = registry.register(Box::new(self.domains.clone()));
        let _ = registry.register(Box::new(self.recompiles.clone()));
        let _ = registry.register(Box::new(self.recompile_failures.clone()));
        let _ = registry.register(Box::new(self.applied_in_place.clone()));
    }

    fn observe_view(&self, view: &View) {
        self.domains
            .set(i64::try_from(view.by_name.len()).unwrap_or(i64::MAX));
        let users: usize = view.by_name.values().map(|d| d.user_count()).sum();
        self.users.set(i64::try_from(users).unwrap_or(i64::MAX));
    }
}

/// The directory: compiled Domains plus the machinery that keeps them current.
pub struct Directory {
    db: DatabaseConnection,
    cipher: Arc<SecretCipher>,
    settings: DirectorySettings,
    view: RwLock<View>,
    /// The Domains changed since they were last compiled, each with what its recompile must
    /// read again.
    stale: Mutex<HashMap<Uuid, Pending>>,
    /// Bumped after a Domain is marked stale.
    marked: AtomicU64,
    /// The `marked` value every stale Domain up to which has been recompiled.
    applied: AtomicU64,
    /// Held by a refresh of every stale Domain (one at a time) and by the cold start.
    reload: tokio::sync::Mutex<()>,
    /// Read by each recompile of one Domain, written by the cold start: a Domain recompiled
    /// while the whole view is being replaced could be replaced by an older read.
    whole: tokio::sync::RwLock<()>,
    /// One lock per Domain being recompiled: two recompiles of one Domain never overlap (the
    /// later read must be the one that stays), recompiles of different Domains run at once.
    recompiling: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    retry_at: Mutex<Option<Instant>>,
    wake: Notify,
    metrics: Option<DirectoryMetrics>,
    /// Set when a gateway changed: the carriers are reloaded with the next refresh.
    carriers_stale: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("settings", &self.settings)
            .field("marked", &self.marked.load(Ordering::Relaxed))
            .field("applied", &self.applied.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Statistics of a (re)load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadStats {
    /// Domains compiled.
    pub domains: usize,
    /// Users compiled.
    pub users: usize,
    /// Time spent reading the Domains; at the cold start, the whole load, decrypting and
    /// compiling included.
    pub load: Duration,
    /// Time spent decrypting their secrets and compiling them (at the cold start, summed over
    /// Domains: it overlaps with the load).
    pub compile: Duration,
}

impl Directory {
    /// An empty directory; call [`load_all`](Self::load_all) before serving.
    pub fn new(
        db: DatabaseConnection,
        cipher: Arc<SecretCipher>,
        settings: DirectorySettings,
    ) -> Self {
        settings.live.set_db(db.clone());
        Self {
            db,
            cipher,
            settings,
            view: RwLock::default(),
            stale: Mutex::default(),
            marked: AtomicU64::new(0),
            applied: AtomicU64::new(0),
            reload: tokio::sync::Mutex::new(()),
            whole: tokio::sync::RwLock::new(()),
            recompiling: Mutex::default(),
            retry_at: Mutex::new(None),
            wake: Notify::new(),
            metrics: DirectoryMetrics::new()
                .map_err(|e| tracing::error!(error = %e, "directory metrics unavailable"))
                .ok(),
            carriers_stale: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The live state call flows read: give it the line state with
    /// [`FlowLive::set_lines`].
    pub fn flow_live(&self) -> &FlowLive {
        &self.settings.live
    }

    /// Its metrics, to register with the application's registry.
    pub fn metrics(&self) -> Option<&DirectoryMetrics> {
        self.metrics.as_ref()
    }

    /// Counts a request refused before it was answered (`address`, `credentials`,
    /// `too_large`, `unreadable`).
    pub fn refused(&self, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.refusals.with_label_values(&[reason]).inc();
        }
    }

    fn compile_settings(&self) -> CompileSettings {
        CompileSettings {
            cacheable_ms: self.settings.cacheable_ms,
        }
    }

    /// Compiles every Domain from the database (the cold start), replacing the view.
    pub async fn load_all(&self) -> DomainResult<LoadStats> {
        self.load_all_from(&self.db).await
    }

    /// [`load_all`](Self::load_all), reading through `db` (the cold start gives it a pool of
    /// its own on SQLite, closed after it: see `api::startup`).
    ///
    /// Domain by Domain, a few at a time: each is read (and its secrets decrypted), compiled on
    /// the blocking pool and its rows dropped before the next ones are read, so the peak is a
    /// few Domains' rows rather than every row of the platform at once (and what the allocator
    /// keeps of that peak stays small). Each compiled Domain is then copied into fresh
    /// allocations on this task's thread ([`CompiledDomain::compacted`]), so what the view
    /// keeps is not scattered among the pages the compile's garbage held. The load is timed as
    /// a whole, the compile summed over Domains (it overlaps with the load).
    pub async fn load_all_from(&self, db: &DatabaseConnection) -> DomainResult<LoadStats> {
        let _guard = self.reload.lock().await;
        let _whole = self.whole.write().await;
        let started = Instant::now();
        let ids = domain_ids(db).await?;
        let carriers = self.load_carriers().await?;
        self.carriers_stale.store(false, Ordering::SeqCst);
        let settings = self.compile_settings();
        let now = Utc::now();
        let mut compiled = futures_util::stream::iter(ids)
            .map(|id| async move {
                let Some(rows) = source::load_domain_rows(db, id).await? else {
                    return Ok(None);
                };
                compile_off_thread(rows, self.cipher.clone(), settings, now, None)
                    .await
                    .map(Some)
            })
            .buffer_unordered(LOAD_CONCURRENCY);
        let mut stats = LoadStats::default();
        let mut view = View {
            carriers: Arc::new(carriers),
            ..View::default()
        };
        while let Some(next) = compiled.next().await {
            let Some((domain, took)) = next? else {
                continue;
            };
            stats.domains += 1;
            stats.users += domain.user_count();
            stats.compile += took;
            // Copied here, on a thread that stays, once the compiling thread dropped its
            // garbage: 18 MiB less resident for 200 000 users (bench/README.md).
            view.put(domain.compacted());
        }
        view.shrink_to_fit();
        if let Some(m) = &self.metrics {
            m.observe_view(&view);
        }
        if let Ok(stale) = self.stale.lock() {
            // Changes published while loading may be missing from what was read.
            for id in stale.keys() {
                if let Some(domain) = view.by_id(*id) {
                    domain.mark_stale();
                }
            }
            if let Ok(mut current) = self.view.write() {
                *current = view;
            }
        }
        stats.load = started.elapsed();
        Ok(stats)
    }

    /// The observer to register on the event bus: marks the changed Domain stale.
    pub fn observer(self: &Arc<Self>) -> Observer {
        let directory = Arc::downgrade(self);
        Arc::new(move |event: &ChangeEvent| {
            if let Some(directory) = directory.upgrade() {
                directory.mark_stale(event);
            }
        })
    }

    fn mark_stale(&self, event: &ChangeEvent) {
        // Call-state presence changes do not touch the directory; a DND change names the
        // Extension in `sip_users`.
        if event.kind == ChangeKind::PresenceChanged && event.sip_users.is_empty() {
            return;
        }
        if event.kind == ChangeKind::CallEmergency {
            return;
        }
        if matches!(
            event.kind,
            ChangeKind::GatewayCreated | ChangeKind::GatewayUpdated | ChangeKind::GatewayDeleted
        ) {
            self.carriers_stale.store(true, Ordering::SeqCst);
            if event.domain_id.is_nil() {
                self.marked.fetch_add(1, Ordering::SeqCst);
                self.wake.notify_one();
                return;
            }
        }
        // Insert first, count second: whoever reads the count and then drains the set is sure
        // to reload every Domain counted. The compiled Domain's own flag is set under the same
        // lock that `replace` holds while it swaps Domains in, so no mark can fall between a
        // reload and the swap.
        if let Ok(mut stale) = self.stale.lock() {
            let pending = Pending::of(event);
            match stale.entry(event.domain_id) {
                std::collections::hash_map::Entry::Occupied(mut marked) => {
                    let before = std::mem::replace(marked.get_mut(), Pending::Everything);
                    *marked.get_mut() = before.merge(pending);
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(pending);
                }
            }
            if let Ok(view) = self.view.read()
                && let Some(domain) = view.by_id(event.domain_id)
            {
                domain.mark_stale();
            }
        }
        self.marked.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Recompiles stale Domains as soon as they are marked, for as long as the process runs.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let directory = self.clone();
        tokio::spawn(async move {
            loop {
                let woken = directory.wake.notified();
                directory.refresh().await;
                if directory.is_stale() {
                    // A failed reload: try again after the back-off.
                    tokio::time::sleep(RETRY_AFTER_FAILURE).await;
                    continue;
                }
                woken.await;
            }
        })
    }

    fn is_stale(&self) -> bool {
        self.applied.load(Ordering::SeqCst) < self.marked.load(Ordering::SeqCst)
    }

    /// Recompiles the stale Domains, unless a reload failed moments ago. Returns when every
    /// Domain marked stale before the call has been recompiled (waiting for a reload already
    /// under way, so no lookup slips past it with the old view).
    pub async fn refresh(&self) {
        if !self.is_stale() {
            return;
        }
        if self.waiting_to_retry() {
            return;
        }
        let _guard = self.reload.lock().await;
        let target = self.marked.load(Ordering::SeqCst);
        if self.applied.load(Ordering::SeqCst) >= target {
            // Done by whoever held the lock before us.
            return;
        }
        if self.carriers_stale.swap(false, Ordering::SeqCst) {
            match self.load_carriers().await {
                Ok(carriers) => {
                    if let Ok(mut view) = self.view.write() {
                        view.carriers = Arc::new(carriers);
                    }
                }
                Err(e) => {
                    self.carriers_stale.store(true, Ordering::SeqCst);
                    tracing::warn!(error = %e, "reloading the gateways failed; serving the last good list");
                    if let Ok(mut retry_at) = self.retry_at.lock() {
                        *retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
                    }
                    return;
                }
            }
        }
        // Every Domain marked before `target` was read is in the set, or is being recompiled
        // by a lookup that removed it after the mark (so reads after it). Each is taken out of
        // the set by its own recompile, under its Domain's lock, just before it is read: a mark
        // that comes while it is read puts it back and keeps the new answer stale.
        let ids: Vec<Uuid> = match self.stale.lock() {
            Ok(stale) => stale.keys().copied().collect(),
            Err(_) => return,
        };
        let settings = self.compile_settings();
        let failed = futures_util::stream::iter(ids)
            .map(|id| self.recompile(id, settings))
            .buffer_unordered(RECOMPILE_CONCURRENCY)
            .filter(|ok| std::future::ready(!ok))
            .count()
            .await;
        if failed > 0 {
            return;
        }
        self.applied.fetch_max(target, Ordering::SeqCst);
        if let Ok(mut retry_at) = self.retry_at.lock() {
            *retry_at = None;
        }
    }

    /// Recompiles one Domain if it is stale (or not compiled yet): reads it, compiles it on
    /// the blocking pool and swaps it in. Other Domains' recompiles run meanwhile; another
    /// recompile of this one waits, then finds it current. False when the read failed (the
    /// Domain stays stale and the failure is counted).
    async fn recompile(&self, id: Uuid, settings: CompileSettings) -> bool {
        let _whole = self.whole.read().await;
        let lock = match self.recompiling.lock() {
            Ok(mut locks) => locks.entry(id).or_default().clone(),
            Err(_) => return false,
        };
        let ok = {
            let _held = lock.lock().await;
            self.recompile_locked(id, settings).await
        };
        // Forget the lock once nobody else holds or waits for it (a clone is only ever taken
        // under the map's lock, so the count cannot grow meanwhile).
        if let Ok(mut locks) = self.recompiling.lock()
            && Arc::strong_count(&lock) == 2
        {
            locks.remove(&id);
        }
        ok
    }

    async fn recompile_locked(&self, id: Uuid, settings: CompileSettings) -> bool {
        // Under the set's lock, as `mark_stale` marks: a Domain in the set is flagged stale
        // (or not compiled yet), so one that is not flagged was recompiled by whoever held its
        // lock before, after its last mark.
        let (pending, compiled) = {
            let Ok(mut set) = self.stale.lock() else {
                return false;
            };
            let Ok(view) = self.view.read() else {
                return false;
            };
            let compiled = view.by_id(id);
            if compiled.is_some_and(|d| !d.is_stale()) {
                return true;
            }
            (
                set.remove(&id).unwrap_or(Pending::Everything),
                compiled.cloned(),
            )
        };
        // Only some Devices changed since it was compiled: read those and what they touch, and
        // apply them to the compiled Domain, unless the change reaches further.
        if let (Pending::Phones(devices), Some(before)) = (&pending, &compiled) {
            match self.apply_phones(before, devices, settings).await {
                Ok(Some(domain)) => {
                    if let Some(m) = &self.metrics {
                        m.applied_in_place.inc();
                    }
                    self.replace(id, Some(domain));
                    return true;
                }
                Ok(None) => {}
                Err(e) => {
                    self.recompile_failed(id, &e);
                    return false;
                }
            }
        }
        // Only people, phones and their bindings changed since it was compiled: its routing
        // (Outbound Routes, gateways, Numbers, flows) is still what it compiled.
        let keep_routing_of = compiled.filter(|_| pending != Pending::Everything);
        let read = match &keep_routing_of {
            Some(_) => source::load_domain_bindings_at_once(&self.db, id).await,
            None => source::load_domain_rows_at_once(&self.db, id).await,
        };
        let found = match read {
            Ok(found) => found,
            Err(e) => {
                self.recompile_failed(id, &e);
                return false;
            }
        };
        let compiled = match found {
            None => None,
            Some(rows) => {
                let compiled = compile_off_thread(
                    rows,
                    self.cipher.clone(),
                    settings,
                    Utc::now(),
                    keep_routing_of,
                )
                .await;
                match compiled {
                    Ok((domain, _)) => Some(domain),
                    Err(e) => {
                        self.recompile_failed(id, &e);
                        return false;
                    }
                }
            }
        };
        self.replace(id, compiled);
        true
    }

    /// A change to `devices` applied to `before` in place
    /// ([`CompiledDomain::with_phones_changed`]), reading those Devices and what they touch;
    /// `None` when it reaches further (the Domain is read whole instead).
    async fn apply_phones(
        &self,
        before: &Arc<CompiledDomain>,
        devices: &[Uuid],
        settings: CompileSettings,
    ) -> DomainResult<Option<CompiledDomain>> {
        let (Some(context), Some(dependents)) =
            (before.context(), before.phone_dependents(devices))
        else {
            return Ok(None);
        };
        let rows = source::load_phones_at_once(&self.db, context, devices, &dependents).await?;
        let (before, devices, cipher) = (before.clone(), devices.to_vec(), self.cipher.clone());
        tokio::task::spawn_blocking(move || {
            let src = rows.assemble(&cipher);
            before.with_phones_changed(&src, &devices, &dependents, &settings, Utc::now())
        })
        .await
        .map_err(|e| DomainError::Internal(format!("applying a change to a Domain failed: {e}")))
    }

    /// True for a moment after a failed recompile: lookups answer from the last good view
    /// instead of asking the database again.
    fn waiting_to_retry(&self) -> bool {
        self.retry_at
            .lock()
            .is_ok_and(|at| at.is_some_and(|at| Instant::now() < at))
    }

    /// A recompile failed: count it, keep the Domain stale and retry after the back-off.
    fn recompile_failed(&self, id: Uuid, error: &DomainError) {
        if let Some(m) = &self.metrics {
            m.recompile_failures.inc();
        }
        tracing::warn!(domain_id = %id, error = %error, "reloading the directory of a Domain failed; serving the last good view");
        if let Ok(mut stale) = self.stale.lock() {
            // Read everything next time.
            stale.insert(id, Pending::Everything);
        }
        // Counted as a new mark: the refresher (and every lookup that spans Domains) sees the
        // directory stale until a later recompile of it succeeds.
        self.marked.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut retry_at) = self.retry_at.lock() {
            *retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
        }
    }

    fn replace(&self, id: Uuid, compiled: Option<CompiledDomain>) {
        let Ok(stale) = self.stale.lock() else { return };
        if let Ok(mut view) = self.view.write() {
            match compiled {
                Some(domain) => {
                    // Marked again while it was being reloaded: keep it stale.
                    if stale.contains_key(&id) {
                        domain.mark_stale();
                    }
                    view.put(domain)
                }
                None => view.remove(id),
            }
            if let Some(m) = &self.metrics {
                m.recompiles.inc();
                m.observe_view(&view);
            }
        }
    }

    /// The compiled Domain for a SIP domain, if known and enabled.
    pub fn domain(&self, sip_domain: &str) -> Option<Arc<CompiledDomain>> {
        self.view.read().ok()?.domain(sip_domain)
    }

    /// The compiled Domain of an id, if known (enabled or not).
    pub fn domain_by_id(&self, id: Uuid) -> Option<Arc<CompiledDomain>> {
        self.view.read().ok()?.by_id(id).cloned()
    }

    /// Every gateway as FreeSWITCH was last told.
    pub fn carriers(&self) -> Arc<Carriers> {
        self.view
            .read()
            .map(|v| v.carriers.clone())
            .unwrap_or_default()
    }

    async fn load_carriers(&self) -> DomainResult<Carriers> {
        let rows =
            switchboard_domain::services::gateways::load_for_freeswitch(&self.db, &self.cipher)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (gateway, password) in rows {
            let mut addresses: Vec<ipnet::IpNet> = resolve(proxy_host(&gateway.proxy))
                .await
                .into_iter()
                .map(ipnet::IpNet::from)
                .collect();
            addresses.extend(switchboard_domain::services::gateways::inbound_networks(
                &gateway,
            ));
            out.push(Carrier {
                gateway,
                password,
                addresses,
            });
        }
        Ok(Carriers::of(out))
    }

    /// For a directory lookup of one known Domain: its id and whether it is stale. `None` when
    /// the answer may depend on other Domains or on one not compiled yet (gateways, dialplan,
    /// a Domain created moments ago): those wait for every pending recompile.
    fn requested_domain(&self, r: &XmlCurlRequest) -> Option<(Uuid, bool)> {
        if r.get("section") != Some("directory") || !is_user_lookup(r) {
            return None;
        }
        let name = r.get("domain").or_else(|| {
            (r.get("tag_name") == Some("domain"))
                .then(|| r.get("key_value"))
                .flatten()
        })?;
        let view = self.view.read().ok()?;
        let domain = view.by_name.get(&name.to_ascii_lowercase())?;
        Some((domain.id, domain.is_stale()))
    }

    /// Recompiles one stale Domain (unless a reload failed moments ago, or someone else did it
    /// while this waited for its lock), without waiting for other Domains' recompiles.
    async fn refresh_domain(&self, id: Uuid) {
        if self.waiting_to_retry() {
            return;
        }
        self.recompile(id, self.compile_settings()).await;
    }

    /// Answers a request from the current view without refreshing or counting it (the call
    /// explanation, which refreshed first).
    pub fn answer_quietly(&self, request: &XmlCurlRequest) -> Answer {
        match self.view.read() {
            Ok(view) => view.answer(request, &self.settings),
            Err(_) => Answer::not_found(),
        }
    }

    /// Domains and users in the view.
    pub fn stats(&self) -> LoadStats {
        self.view
            .read()
            .map(|v| LoadStats {
                domains: v.by_name.len(),
                users: v.by_name.values().map(|d| d.user_count()).sum(),
                ..LoadStats::default()
            })
            .unwrap_or_default()
    }

    /// Answers one mod_xml_curl request (recompiling stale Domains first).
    ///
    /// A directory lookup for one Domain waits only for that Domain's recompile, never for
    /// another tenant's (a bulk import elsewhere does not stall this Domain's REGISTERs).
    pub async fn answer(&self, request: &XmlCurlRequest) -> Answer {
        if self.is_stale() {
            match self.requested_domain(request) {
                Some((id, true)) => self.refresh_domain(id).await,
                Some((_, false)) => {}
                None => self.refresh().await,
            }
        }
        let answer = match self.view.read() {
            Ok(view) => view.answer(request, &self.settings),
            Err(_) => Answer::not_found(),
        };
        if let Some(m) = &self.metrics {
            m.answers.with_label_values(&[answer.kind.as_str()]).inc();
        }
        answer
    }
}

/// A lookup of one Domain or one of its users: no `purpose`, or mod_voicemail's
/// `publish-vm` (`voicemail_inject`, which a message moved between boxes goes through: the
/// target box's user, found like any other; `_all_` and groups find nothing).
fn is_user_lookup(r: &XmlCurlRequest) -> bool {
    match r.get("purpose") {
        None => true,
        Some("publish-vm") => r.get("user").is_some_and(|u| u != "_all_"),
        Some(_) => false,
    }
}

impl View {
    /// The compiled Domain for a SIP domain, if known and enabled.
    pub fn domain(&self, sip_domain: &str) -> Option<Arc<CompiledDomain>> {
        self.by_name
            .get(&sip_domain.to_ascii_lowercase())
            .filter(|d| d.enabled)
            .cloned()
    }

    /// Answers one mod_xml_curl request; feature codes are handed to the settings'
    /// `outbound_socket`.
    pub fn answer(&self, request: &XmlCurlRequest, settings: &DirectorySettings) -> Answer {
        match request.get("section") {
            Some("directory") => self.directory(request),
            Some("dialplan") => self.dialplan(request, settings),
            _ => Answer::not_found(),
        }
    }

    fn directory(&self, r: &XmlCurlRequest) -> Answer {
        if r.get("purpose") == Some("gateways") {
            let mut domains: Vec<&Arc<CompiledDomain>> = self.by_name.values().collect();
            domains.sort_by(|a, b| a.sip_domain.cmp(&b.sip_domain));
            return Answer::of(
                AnswerKind::Gateways,
                gateways_document(
                    domains.into_iter().map(Arc::as_ref),
                    &self.carriers.gateways_domain(),
                ),
            );
        }
        if r.get("purpose") == Some("network-list")
            && r.get("domain")
                .is_some_and(|d| d.eq_ignore_ascii_case(CARRIERS_DOMAIN))
        {
            return Answer::of(
                AnswerKind::NetworkList,
                self.carriers.network_list_document(),
            );
        }
        if !is_user_lookup(r) {
            // network-list and anything newer: not ours.
            return Answer::not_found();
        }
        let Some(domain) = r
            .get("domain")
            .or_else(|| {
                (r.get("tag_name") == Some("domain"))
                    .then(|| r.get("key_value"))
                    .flatten()
            })
            .and_then(|name| self.domain(name))
        else {
            return Answer::not_found();
        };
        if r.get("action") == Some("sip_auth") && !names_only(r, &domain.sip_domain) {
            return Answer::not_found();
        }
        match r.get("action") {
            Some("group_call") => r
                .get("group_name")
                .or_else(|| r.get("group"))
                .and_then(|g| domain.group_document(g))
                .map_or_else(Answer::not_found, |doc| Answer::of(AnswerKind::Group, doc)),
            // Outbound registration credentials are not ours to give.
            Some("reverse-auth-lookup") => Answer::not_found(),
            _ => match r.get("user") {
                Some(user) => domain
                    .user_document(user)
                    .map_or_else(Answer::not_found, |doc| Answer::of(AnswerKind::User, doc)),
                None if r.get("action").is_none() => {
                    Answer::of(AnswerKind::Domain, domain.domain_document())
                }
                None => Answer::not_found(),
            },
        }
    }

    /// The Domain a dialplan request's channel belongs to: the directory's own variable, then
    /// FreeSWITCH's `domain_name`, then the context read as a SIP domain.
    fn channel_domain(&self, r: &XmlCurlRequest) -> Option<Arc<CompiledDomain>> {
        [
            "variable_switchboard_domain",
            "variable_domain_name",
            "Caller-Context",
        ]
        .iter()
        .filter_map(|f| r.get(f))
        .find_map(|name| self.domain(name))
    }

    fn dialplan(&self, r: &XmlCurlRequest, settings: &DirectorySettings) -> Answer {
        let (Some(context), Some(destination)) = (
            r.get("Caller-Context").or_else(|| r.get("Hunt-Context")),
            r.get("Caller-Destination-Number")
                .or_else(|| r.get("Hunt-Destination-Number")),
        ) else {
            return Answer::not_found();
        };
        if context == VOICEMAIL_CONTEXT {
            let Some((mailbox, name)) = destination.split_once('@') else {
                return Answer::not_found();
            };
            return match self.domain(name) {
                Some(d) if d.mailboxes.contains(mailbox) => Answer::of(
                    AnswerKind::Voicemail,
                    voicemail_document(destination, &d.sip_domain, mailbox),
                ),
                _ => Answer::not_found(),
            };
        }
        if context == PUBLIC_CONTEXT {
            return self.public(r, destination);
        }
        let Some(domain) = self.channel_domain(r) else {
            return Answer::not_found();
        };
        if let Some((feature, extension)) = parse_feature_code(destination) {
            return Answer::of(
                AnswerKind::FeatureCode,
                feature_document(
                    context,
                    destination,
                    feature,
                    extension,
                    &settings.outbound_socket,
                ),
            );
        }
        if context.eq_ignore_ascii_case(domain.dialplan.context()) {
            // Park codes before the Domain's numbers: the lot is the Domain's own.
            if let Some(park) = parse_park_code(destination) {
                return Answer::of(
                    AnswerKind::FeatureCode,
                    park_document(context, destination, &domain.sip_domain, park),
                );
            }
            return domain_context(&domain, r, context, destination, settings);
        }
        if context != LOGGED_OUT_CONTEXT {
            return Answer::not_found();
        }
        if domain.emergency_numbers.iter().any(|n| n == destination) {
            return Answer::of(
                AnswerKind::Emergency,
                emergency_document(
                    destination,
                    &domain.sip_domain,
                    r.get("variable_emergency_caller_id_name"),
                    r.get("variable_emergency_caller_id_number"),
                ),
            );
        }
        Answer::of(AnswerKind::Barred, barred_document(destination))
    }
}

impl View {
    /// A call in the `public` context: only from a gateway (the `switchboard-carriers` ACL let
    /// it in with the gateway's token, and it comes from the gateway's address), only for a
    /// Number of a Domain that may use the gateway.
    fn public(&self, r: &XmlCurlRequest, destination: &str) -> Answer {
        let from_ip = r
            .get("variable_sip_network_ip")
            .or_else(|| r.get("Caller-Network-Addr"))
            .and_then(|a| a.parse::<std::net::IpAddr>().ok());
        let carrier = (r.get("variable_sip_acl_authed_by") == Some(CARRIERS_ACL))
            .then(|| r.get("variable_sip_acl_token"))
            .flatten()
            .and_then(|t| self.carriers.by_token(t))
            .filter(|c| from_ip.is_some_and(|ip| c.sends_from(ip)));
        let Some(carrier) = carrier else {
            tracing::warn!(
                from = ?from_ip,
                destination,
                "a call in the public context that did not come from a gateway was refused"
            );
            return Answer::of(
                AnswerKind::Refused,
                public_refused_document(destination, HangupCause::CallRejected),
            );
        };
        let gateway = &carrier.gateway;
        let Some((domain, number)) = self.inbound_number(destination, gateway.domain_id) else {
            return Answer::of(
                AnswerKind::Unallocated,
                public_refused_document(destination, HangupCause::UnallocatedNumber),
            );
        };
        // A Domain's gateway brings calls for that Domain's Numbers only.
        if gateway.domain_id.is_some_and(|owner| owner != domain.id) {
            return Answer::of(
                AnswerKind::Refused,
                public_refused_document(destination, HangupCause::CallRejected),
            );
        }
        let gw_name = switchboard_domain::routing::outbound::freeswitch_gateway_name(gateway.id);
        let by_extension = |id: Uuid| domain.dialplan.extension_number(id);
        let entered: String;
        let what = match &number.destination {
            Some(Destination::Extension { extension_id }) => match by_extension(*extension_id) {
                Some(ext) => Inbound::Transfer {
                    did: &number.number,
                    number: ext,
                },
                None => Inbound::HangUp(HangupCause::UnallocatedNumber),
            },
            Some(Destination::Voicemail { extension_id }) => {
                match by_extension(*extension_id).filter(|e| domain.mailboxes.contains(e)) {
                    Some(mailbox) => Inbound::Voicemail { mailbox },
                    None => Inbound::HangUp(HangupCause::UnallocatedNumber),
                }
            }
            Some(Destination::External { number: external }) => Inbound::Transfer {
                did: &number.number,
                number: external,
            },
            Some(Destination::HangUp { cause }) => Inbound::HangUp(cause.cause()),
            Some(
                d @ (Destination::RingGroup { .. }
                | Destination::Ivr { .. }
                | Destination::TimeCondition { .. }),
            ) => match domain.dialplan.target(d) {
                Target::Flow(flow) => {
                    entered = flows_xml::enter(flow.id);
                    Inbound::Transfer {
                        did: &number.number,
                        number: &entered,
                    }
                }
                _ => Inbound::HangUp(HangupCause::UnallocatedNumber),
            },
            None => Inbound::HangUp(HangupCause::UnallocatedNumber),
        };
        Answer::of(
            AnswerKind::Inbound,
            inbound_document(
                destination,
                &domain.sip_domain,
                &domain.id.to_string(),
                &gw_name,
                &what,
            ),
        )
    }
}

/// Who is calling, from our own channel variables.
fn caller_of(r: &XmlCurlRequest) -> CallerRef {
    let id = |name: &str| r.get(name).and_then(|v| Uuid::parse_str(v.trim()).ok());
    if let Some(ext) = id(&format!("variable_{FORWARDED_BY_VARIABLE}")) {
        return CallerRef::ForwardedBy(ext);
    }
    if let Some(did) = r
        .get(&format!("variable_{INBOUND_NUMBER_VARIABLE}"))
        .filter(|d| !d.is_empty())
    {
        return CallerRef::InboundNumber(did.to_owned());
    }
    if let Some(device) = id("variable_switchboard_device_id") {
        return CallerRef::Device(device);
    }
    if let Some(ext) = id("variable_switchboard_extension_id") {
        return CallerRef::Extension(ext);
    }
    CallerRef::Unknown
}

/// A number dialled in the Domain's own context (its phones'), or the outcome lookup after a
/// failed ring (`switchboard-outcome-<cause>`, see [`ring_document`]).
fn domain_context(
    domain: &CompiledDomain,
    r: &XmlCurlRequest,
    context: &str,
    destination: &str,
    settings: &DirectorySettings,
) -> Answer {
    let recordings_dir = settings.recordings_dir.as_str();
    let plan = &domain.dialplan;
    let caller = caller_of(r);
    if let Some(lookup) = flows_xml::parse_flow_lookup(destination) {
        return flow_lookup(domain, r, context, destination, lookup, &caller, settings);
    }
    let hops = r
        .get("variable_switchboard_forward_hops")
        .and_then(|h| h.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let decision = match destination.strip_prefix(OUTCOME_PREFIX) {
        // Only our own transfer sets the variable: dialled by hand, it is no number.
        Some(cause) => match r.get("variable_switchboard_called_extension") {
            Some(extension) => plan.after_ring(extension, cause, hops),
            None => Decision::Unallocated,
        },
        None => plan.place(&caller, destination, hops),
    };
    let decision = match decision {
        // A plan that rings but whose targets cannot be written into a dial string (never for
        // validated data): as if nothing could ring.
        Decision::Ring { route } if route.payload.is_none() => {
            plan.after_ring(&route.extension.number, "USER_NOT_REGISTERED", hops)
        }
        d => d,
    };
    let recording = plan.recording(&caller, &decision);
    let recording = RecordingPlace {
        recording: &recording,
        dir: recordings_dir,
        sip_domain: &domain.sip_domain,
    };
    match decision {
        Decision::NotOurs => Answer::not_found(),
        Decision::EmergencyUnrouted(call) => {
            tracing::error!(
                domain_id = %domain.id,
                dialled = %call.dialled,
                "an emergency number was dialled and no Outbound Route reaches it: left to the static dialplan"
            );
            Answer {
                emergency: Some((domain.id, domain.sip_domain.clone(), call)),
                ..Answer::not_found()
            }
        }
        Decision::Outbound(call) => {
            let emergency = call
                .emergency
                .clone()
                .map(|e| (domain.id, domain.sip_domain.clone(), e));
            Answer {
                kind: AnswerKind::Outbound,
                body: outbound_document(context, destination, &call, &recording),
                emergency,
            }
        }
        Decision::Refused { cause, reason, .. } => Answer::of(
            AnswerKind::Refused,
            refused_document(context, destination, cause, reason),
        ),
        Decision::Unallocated => Answer::of(
            AnswerKind::Unallocated,
            unallocated_document(context, destination),
        ),
        Decision::End => Answer::of(AnswerKind::Outcome, end_document(context, destination)),
        Decision::Flow { flow } => {
            enter_flow(domain, r, context, destination, flow, &caller, settings)
        }
        Decision::Ring { route } => Answer::of(
            AnswerKind::Extension,
            ring_document(
                context,
                destination,
                &route.extension.number,
                &route.extension.id.to_string(),
                &route
                    .payload
                    .as_ref()
                    .map(|d| domain.dial_string(d))
                    .unwrap_or_default(),
                &recording,
            ),
        ),
        Decision::Apply { route, step } => {
            if let Step::TooManyHops { hops } = step {
                tracing::warn!(
                    domain_id = %domain.id,
                    extension = %route.extension.number,
                    hops,
                    "a call forwarded {hops} times was ended with {} (forwarding loop?)",
                    Step::TOO_MANY_HOPS_CAUSE.as_str()
                );
            }
            Answer::of(
                AnswerKind::Outcome,
                step_document(
                    context,
                    destination,
                    &domain.sip_domain,
                    &route.extension.number,
                    &route.extension.id.to_string(),
                    &step,
                ),
            )
        }
    }
}

/// Enters a flow: a ring group rings, a time condition branches, a menu plays.
fn enter_flow(
    domain: &CompiledDomain,
    r: &XmlCurlRequest,
    context: &str,
    destination: &str,
    flow: &CompiledFlow,
    caller: &CallerRef,
    settings: &DirectorySettings,
) -> Answer {
    let steps = r
        .get(&format!("variable_{}", flows_xml::FLOW_STEPS_VARIABLE))
        .and_then(|h| h.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let body = match &flow.config {
        FlowConfig::RingGroup(c) => {
            if steps >= flows_xml::MAX_FLOW_STEPS {
                return too_many_steps(domain, flow, context, destination, steps);
            }
            let ring = plan_group(domain, flow, c, caller, &settings.live, true);
            match &ring.dial {
                Some(dial) => flows_xml::ring_group_document(
                    context,
                    destination,
                    flow,
                    steps + 1,
                    &c.caller_id_prefix,
                    dial,
                ),
                // Nobody can ring: straight to "nobody answered".
                None => flows_xml::target_document(
                    context,
                    destination,
                    &domain.sip_domain,
                    flow,
                    &[(flows_xml::FLOW_STEPS_VARIABLE, (steps + 1).to_string())],
                    &domain.dialplan.target(&c.when_unanswered),
                ),
            }
        }
        FlowConfig::TimeCondition(c) => {
            if steps >= flows_xml::MAX_FLOW_STEPS {
                return too_many_steps(domain, flow, context, destination, steps);
            }
            let (open, _, target) = condition_branch(domain, flow, c, Utc::now());
            flows_xml::target_document(
                context,
                destination,
                &domain.sip_domain,
                flow,
                &[
                    (flows_xml::FLOW_STEPS_VARIABLE, (steps + 1).to_string()),
                    (
                        "switchboard_time_condition",
                        format!("{}:{}", flow.id, if open { "open" } else { "closed" }),
                    ),
                ],
                &target,
            )
        }
        FlowConfig::Ivr(c) => {
            let greeting = match &c.greeting {
                Greeting::Builtin { prompt } => BUILTIN_PROMPTS
                    .iter()
                    .find(|(n, _)| n == prompt)
                    .map_or(flows_xml::INVALID_TONE.to_owned(), |(_, file)| {
                        if file.contains("://") {
                            (*file).to_owned()
                        } else {
                            // switchboard's prompt folder (conf/vars.xml), a global variable.
                            format!("${{switchboard_prompts}}/{file}")
                        }
                    }),
            };
            let lengths = c.direct_dial.then(|| extension_lengths(domain)).flatten();
            let max_digits = c
                .options
                .iter()
                .map(|o| o.digits.len())
                .chain(lengths.map(|(_, hi)| hi))
                .max()
                .unwrap_or(1);
            let play = MenuPlay {
                greeting: &greeting,
                max_digits,
                tries: c.max_tries,
                timeout_secs: c.timeout_secs,
                regex: flows_xml::keys_regex(c.options.iter().map(|o| o.digits.as_str()), lengths),
                hash_is_a_key: c.options.iter().any(|o| o.digits.contains('#')),
            };
            flows_xml::ivr_document(context, destination, flow, &play)
        }
    };
    Answer::of(AnswerKind::CallFlow, body)
}

fn too_many_steps(
    domain: &CompiledDomain,
    flow: &CompiledFlow,
    context: &str,
    destination: &str,
    steps: u32,
) -> Answer {
    tracing::warn!(
        domain_id = %domain.id,
        flow = %flow.name,
        steps,
        "a call entered {steps} ring groups and time conditions and was ended (a loop through forwards?)"
    );
    Answer::of(
        AnswerKind::CallFlow,
        flows_xml::too_many_steps_document(context, destination, steps),
    )
}

/// A flow's own lookup: enter it, a group nobody answered, a menu's keys.
fn flow_lookup(
    domain: &CompiledDomain,
    r: &XmlCurlRequest,
    context: &str,
    destination: &str,
    lookup: FlowLookup<'_>,
    caller: &CallerRef,
    settings: &DirectorySettings,
) -> Answer {
    let id = match lookup {
        FlowLookup::Enter(id) | FlowLookup::Unanswered(id, _) | FlowLookup::Key(id, _) => id,
    };
    let Some(flow) = domain.dialplan.flows().get(id) else {
        return Answer::of(
            AnswerKind::Unallocated,
            unallocated_document(context, destination),
        );
    };
    let (vars, target) = match (lookup, &flow.config) {
        (FlowLookup::Enter(_), _) => {
            return enter_flow(domain, r, context, destination, flow, caller, settings);
        }
        (FlowLookup::Unanswered(_, cause), FlowConfig::RingGroup(c)) => {
            if caller_gone(cause) {
                return Answer::of(AnswerKind::Outcome, end_document(context, destination));
            }
            (Vec::new(), domain.dialplan.target(&c.when_unanswered))
        }
        (FlowLookup::Key(_, keys), FlowConfig::Ivr(c)) => {
            let (_, target) = menu_choice(domain, c, keys);
            (vec![("switchboard_ivr_keys", keys.to_owned())], target)
        }
        // A lookup that does not fit the flow's kind (typed by hand): no such number.
        _ => {
            return Answer::of(
                AnswerKind::Unallocated,
                unallocated_document(context, destination),
            );
        }
    };
    Answer::of(
        AnswerKind::CallFlow,
        flows_xml::target_document(
            context,
            destination,
            &domain.sip_domain,
            flow,
            &vars,
            &target,
        ),
    )
}

/// Decrypts a Domain's secrets and compiles it on the blocking pool (a large one takes a
/// while: not on a worker that answers lookups), with the time it took.
async fn compile_off_thread(
    rows: source::DomainRows,
    cipher: Arc<SecretCipher>,
    settings: CompileSettings,
    now: chrono::DateTime<Utc>,
    keep_routing_of: Option<Arc<CompiledDomain>>,
) -> DomainResult<(CompiledDomain, Duration)> {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let context = rows.context();
        let src = rows.assemble(&cipher);
        let mut domain = CompiledDomain::compile_keeping_routing(
            &src,
            &settings,
            now,
            keep_routing_of.as_deref(),
        );
        domain.set_context(context);
        (domain, started.elapsed())
    })
    .await
    .map_err(|e| DomainError::Internal(format!("compiling a Domain failed: {e}")))
}

/// What a stale Domain's next recompile must read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// Only these Devices were created or updated: their rows and the rows they touch, applied
    /// to the compiled Domain in place when that is all they reach.
    Phones(Vec<Uuid>),
    /// People, phones, Locations or their bindings changed
    /// ([`ChangeKind::keeps_routing`]): the bindings, keeping the routing compiled before.
    Bindings,
    /// Anything else: every row of the Domain.
    Everything,
}

/// Devices changed at once beyond which a Domain is read whole rather than Device by Device
/// (a bulk change; under a steady stream of changes to one large Domain, a few dozen pile up
/// while one apply runs, and reading those by id is still far cheaper than the whole Domain).
const PHONES_AT_ONCE: usize = 256;

impl Pending {
    fn of(event: &ChangeEvent) -> Self {
        match event.kind {
            ChangeKind::DeviceCreated | ChangeKind::DeviceUpdated => {
                Self::Phones(vec![event.entity_id])
            }
            kind if kind.keeps_routing() => Self::Bindings,
            _ => Self::Everything,
        }
    }

    /// What to read for both.
    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Everything, _) | (_, Self::Everything) => Self::Everything,
            (Self::Phones(mut a), Self::Phones(b)) => {
                for id in b {
                    if let Err(at) = a.binary_search(&id) {
                        a.insert(at, id);
                    }
                }
                if a.len() > PHONES_AT_ONCE {
                    Self::Bindings
                } else {
                    Self::Phones(a)
                }
            }
            _ => Self::Bindings,
        }
    }
}

/// Domains read and compiled at once at the cold start: enough to keep the database and every
/// core busy, few enough that only a handful of Domains' rows are in memory at a time.
const LOAD_CONCURRENCY: usize = 4;

/// Stale Domains recompiled at once after changes: a recompile mostly waits for the database,
/// so a few overlap (a steady stream of changes across many Domains is read in parallel, not
/// queued behind one another), while the pool keeps connections for the API.
const RECOMPILE_CONCURRENCY: usize = 4;

/// Every Domain's id (the cold start reads and compiles them one by one).
async fn domain_ids(db: &DatabaseConnection) -> DomainResult<Vec<Uuid>> {
    use sea_orm::{EntityTrait, QuerySelect};
    use switchboard_domain::store::domains;
    Ok(domains::Entity::find()
        .select_only()
        .column(domains::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

/// Whether a digest check (`action=sip_auth`) names only `sip_domain`: the realm the phone
/// answered in, and for a REGISTER the To and From domains too (for an INVITE the To is the
/// callee, and the From is the caller's own Domain). FreeSWITCH checks the password in the realm
/// the phone names but stores a registration under its To domain: without this, Domain B's
/// credentials would register as a user of Domain A and take A's calls. An absent field (a
/// hand-made request) is not held against it.
fn names_only(r: &XmlCurlRequest, sip_domain: &str) -> bool {
    let ours = |field: &str| {
        r.get(field)
            .is_none_or(|host| host.eq_ignore_ascii_case(sip_domain))
    };
    let register = r
        .get("sip_auth_method")
        .is_none_or(|m| m.eq_ignore_ascii_case("REGISTER"));
    ours("sip_auth_realm") && ours("sip_from_host") && (!register || ours("sip_to_host"))
}

/// The addresses of a proxy host: an IP address as it is, a name through the resolver (a name
/// that does not resolve has none: calls from it are refused until it does).
async fn resolve(host: &str) -> Vec<std::net::IpAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return vec![ip];
    }
    match tokio::net::lookup_host((host, 5060)).await {
        Ok(addrs) => {
            let mut out: Vec<std::net::IpAddr> = addrs.map(|a| a.ip()).collect();
            out.sort();
            out.dedup();
            out
        }
        Err(e) => {
            tracing::warn!(host, error = %e, "a gateway's proxy does not resolve");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_changes_read_what_every_one_of_them_needs() {
        let event = |kind, n: u128| {
            ChangeEvent::new(
                Uuid::nil(),
                "acme.example.net",
                kind,
                Uuid::from_u128(n),
                Utc::now(),
            )
        };
        let phone = |n| Pending::of(&event(ChangeKind::DeviceUpdated, n));
        assert_eq!(phone(2), Pending::Phones(vec![Uuid::from_u128(2)]));
        assert_eq!(
            Pending::of(&event(ChangeKind::DeviceCreated, 1)),
            Pending::Phones(vec![Uuid::from_u128(1)])
        );
        // Phones add up, each once, in id order.
        let both = phone(3).merge(phone(1)).merge(phone(3));
        assert_eq!(
            both,
            Pending::Phones(vec![Uuid::from_u128(1), Uuid::from_u128(3)])
        );
        // A deletion, a session or an Extension's change: the bindings; anything else: all.
        for kind in [
            ChangeKind::DeviceDeleted,
            ChangeKind::SessionStarted,
            ChangeKind::ExtensionUpdated,
        ] {
            assert_eq!(Pending::of(&event(kind, 9)), Pending::Bindings, "{kind:?}");
            assert_eq!(
                both.clone().merge(Pending::of(&event(kind, 9))),
                Pending::Bindings
            );
        }
        let created = Pending::of(&event(ChangeKind::ExtensionCreated, 9));
        assert_eq!(created, Pending::Everything);
        assert_eq!(both.clone().merge(created.clone()), Pending::Everything);
        assert_eq!(Pending::Bindings.merge(created), Pending::Everything);
        // A bulk change to many phones reads the bindings rather than phone by phone.
        let many = (0..=PHONES_AT_ONCE as u128).fold(phone(0), |p, n| p.merge(phone(n)));
        assert_eq!(many, Pending::Bindings);
        let most = (0..PHONES_AT_ONCE as u128).fold(phone(0), |p, n| p.merge(phone(n)));
        assert!(matches!(most, Pending::Phones(ids) if ids.len() == PHONES_AT_ONCE));
    }
    use switchboard_domain::bindings::testkit::Kit;

    /// Two Domains, each with Extension 201 and its fixed phone.
    fn two_domains() -> View {
        let domain = |id: u128, sip_domain: &str| {
            let mut k = Kit::new();
            k.b.domain.id = Uuid::from_u128(id);
            k.b.domain.sip_domain = sip_domain.to_owned();
            let ext = k.ext("201", "Ada");
            k.fixed("Desk", "d7f3a", ext);
            let src = source::DirectorySource {
                bindings: k.b,
                name: sip_domain.to_owned(),
                enabled: true,
                a1_hashes: HashMap::new(),
                routing: Default::default(),
            };
            CompiledDomain::compile(&src, &CompileSettings { cacheable_ms: 0 }, Utc::now())
        };
        View::of([domain(1, "a.park.test"), domain(2, "b.park.test")])
    }

    /// A dialplan lookup of `dialled` in `context` from a channel of `sip_domain`.
    fn dial(view: &View, sip_domain: &str, context: &str, dialled: &str) -> Answer {
        let body = format!(
            "section=dialplan&Caller-Context={context}&Caller-Destination-Number={dialled}&variable_switchboard_domain={sip_domain}&variable_domain_name={sip_domain}"
        );
        view.answer(
            &XmlCurlRequest::parse(body.as_bytes()),
            &DirectorySettings::default(),
        )
    }

    #[test]
    fn park_codes_in_a_domains_own_context_use_its_own_lot() {
        let view = two_domains();
        for sip_domain in ["a.park.test", "b.park.test"] {
            let a = dial(&view, sip_domain, sip_domain, "*70");
            assert_eq!(a.kind, AnswerKind::FeatureCode, "{}", a.body);
            assert!(
                a.body.contains(&format!(
                    "<action application=\"valet_park\" data=\"park@{sip_domain} auto in 71 79\"/>"
                )),
                "{}",
                a.body
            );
            let a = dial(&view, sip_domain, sip_domain, "*71");
            assert_eq!(a.kind, AnswerKind::FeatureCode, "{}", a.body);
            assert!(
                a.body.contains(&format!(
                    "<action application=\"valet_park\" data=\"park@{sip_domain} 71\"/>"
                )),
                "{}",
                a.body
            );
        }
        // Not a park code: the Domain's numbers as before.
        assert_eq!(
            dial(&view, "a.park.test", "a.park.test", "*80").kind,
            AnswerKind::Unallocated
        );
    }

    #[test]
    fn a_logged_out_phone_can_neither_park_nor_pick_up() {
        let view = two_domains();
        for code in ["*70", "*71", "*79"] {
            let a = dial(&view, "a.park.test", LOGGED_OUT_CONTEXT, code);
            assert_eq!(a.kind, AnswerKind::Barred, "{code}: {}", a.body);
            assert!(!a.body.contains("valet_park"), "{}", a.body);
        }
    }

    #[test]
    fn a_channel_of_one_domain_never_reaches_another_domains_lot() {
        let view = two_domains();
        // A channel of b.park.test looking up a.park.test's context: not ours to answer.
        let a = dial(&view, "b.park.test", "a.park.test", "*71");
        assert_eq!(a.kind, AnswerKind::NotFound, "{}", a.body);
        assert!(!a.body.contains("park@a.park.test"), "{}", a.body);
    }
}
