//! Bulk import of Extensions and Devices into one Domain, all or nothing.
//!
//! Every row is checked first, with the same rules as the single-resource creates
//! ([`extensions::draft`] and [`extensions::validate`]; [`devices::draft`], [`devices::validate`]
//! and [`devices::check_references`]), plus what only a whole file needs: duplicates inside the
//! file and collisions with rows that already exist. Devices may name their owner and
//! placeholder Extensions by number (from the file or already stored) and their Location by
//! name. Any error, or a dry run, writes nothing and answers the per-row report; otherwise the
//! PINs are hashed in parallel on the blocking pool, and everything is inserted in one
//! transaction with batched multi-row inserts, one `import.completed` audit entry and, after
//! commit, one [`ChangeKind::ImportCompleted`] event naming every affected SIP user.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, Iterable, QueryFilter, QuerySelect, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::devices::DevicePatch;
use super::extensions::{Deps, ExtensionPatch};
use super::{Context, audit, calling_settings, devices, extensions, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind};
use crate::identity::authz::{Actor, authorize};
use crate::identity::password::hash_secret;
use crate::identity::permissions::Permission;
use crate::store::{
    audit_log, devices as device_store, domains, extensions as extension_store, locations,
    role_assignments,
};
use crate::telephony::secrets::{generate_sip_secret, generate_sip_username};
use crate::telephony::values::ExtensionNumber;

/// Bound parameters per multi-row `INSERT`, well below SQLite's limit (32 766) and
/// PostgreSQL's (65 535).
const MAX_BIND_PARAMS: usize = 15_000;
/// Values per `IN (…)` list of the look-ups.
const LOOKUP_CHUNK: usize = 500;

/// Which kind of resource a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// An Extension.
    Extension,
    /// A Device.
    Device,
}

impl RowKind {
    /// `extension` or `device`, as in the report and the CSV `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extension => "extension",
            Self::Device => "device",
        }
    }
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The row it is about, as numbered by whoever read the file (see [`Numbered::row`]).
    pub row: usize,
    /// Whether the row is an Extension or a Device; `None` when that could not be read.
    pub kind: Option<RowKind>,
    /// The field, named as in the single-resource create body (or the import-only columns).
    pub field: String,
    /// The stable code of the rule that failed.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

impl RowError {
    /// Attaches a field error to a row.
    pub fn new(row: usize, kind: RowKind, error: FieldError) -> Self {
        Self::about(row, Some(kind), error)
    }

    /// Attaches a field error to a row whose kind may be unknown.
    pub fn about(row: usize, kind: Option<RowKind>, error: FieldError) -> Self {
        Self {
            row,
            kind,
            field: error.field,
            code: error.code,
            message: error.message,
        }
    }
}

/// A row of the file with the number it is reported under: for JSON the 1-based position in
/// its list, for CSV the line of the file (the header is line 1).
#[derive(Debug, Clone)]
pub struct Numbered<T> {
    /// The row number.
    pub row: usize,
    /// The row.
    pub value: T,
}

/// A Device to import: the fields of a single create, plus references by natural key that may
/// point at Extensions of the same file.
#[derive(Debug, Clone, Default)]
pub struct DeviceRow {
    /// The fields of `POST …/devices`.
    pub patch: DevicePatch,
    /// The owner Extension's number (instead of `owner_extension_id`).
    pub owner_extension: Option<String>,
    /// The placeholder Extension's number (instead of `placeholder_extension_id`).
    pub placeholder_extension: Option<String>,
    /// The Location's name (instead of `location_id`).
    pub location: Option<String>,
}

/// The rows to import.
#[derive(Debug, Default)]
pub struct ImportFile {
    /// Extensions, with the fields of a single create.
    pub extensions: Vec<Numbered<ExtensionPatch>>,
    /// Devices.
    pub devices: Vec<Numbered<DeviceRow>>,
    /// Rows that could not even be read into the lists above (wrong type, unknown column),
    /// already reported; each such row still counts in [`ImportReport::rows`].
    pub unreadable: Vec<RowError>,
}

/// The outcome of an import or a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// True when every row passed.
    pub valid: bool,
    /// True when nothing was to be written.
    pub dry_run: bool,
    /// True when the rows were written.
    pub imported: bool,
    /// Rows in the file.
    pub rows: usize,
    /// Extension rows in the file.
    pub extensions: usize,
    /// Device rows in the file.
    pub devices: usize,
    /// Every problem found, ordered by row.
    pub errors: Vec<RowError>,
}

/// The stages of an import, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Checking every row.
    Validating,
    /// Hashing PINs (the slow part).
    Hashing,
    /// Writing rows.
    Inserting,
}

impl Stage {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Hashing => "hashing PINs",
            Self::Inserting => "inserting",
        }
    }
}

/// Receives progress: a stage starts with its number of steps, then steps are done.
pub trait Progress: Send + Sync {
    /// A stage begins.
    fn start(&self, stage: Stage, total: u64);
    /// `steps` more steps of the current stage are done.
    fn advance(&self, steps: u64);
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: Stage, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// An Extension row that went through the rules.
struct ExtensionDraft {
    row: usize,
    model: extension_store::Model,
    pin: Option<SecretString>,
}

/// A Device row that went through the rules.
struct DeviceDraft {
    row: usize,
    model: device_store::Model,
    /// Whether the row gave a position in its Location (otherwise it goes to the end).
    position_given: bool,
}

/// Collects row errors.
#[derive(Debug, Default)]
struct Report(Vec<RowError>);

impl Report {
    fn add(&mut self, row: usize, kind: RowKind, field: &str, code: &str, message: String) {
        self.0.push(RowError {
            row,
            kind: Some(kind),
            field: field.to_owned(),
            code: code.to_owned(),
            message,
        });
    }

    fn extend(&mut self, row: usize, kind: RowKind, errors: FieldErrors) {
        self.0.extend(
            errors
                .into_vec()
                .into_iter()
                .map(|e| RowError::new(row, kind, e)),
        );
    }
}

/// The Domain with this SIP domain (case-insensitive), for `switchboard import --domain`.
pub async fn domain_by_sip_domain<C: ConnectionTrait>(
    db: &C,
    sip_domain: &str,
) -> DomainResult<domains::Model> {
    domains::Entity::find()
        .filter(domains::Column::SipDomain.eq(sip_domain.trim().to_ascii_lowercase()))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))
}

/// Whether `actor` may import into the Domain: `extensions.write` and `devices.write` there.
/// The HTTP edge asks before reading a large body; [`import`] asks again itself.
pub fn can_import(actor: &Actor, domain_id: Uuid) -> DomainResult<()> {
    authorize(actor, Permission::ExtensionsWrite, domain_id)?;
    authorize(actor, Permission::DevicesWrite, domain_id)
}

/// Imports (or, with `dry_run`, only checks) `file` into the Domain; needs `extensions.write`
/// and `devices.write` there.
///
/// Invalid rows are not an `Err`: the report says `valid: false` and lists them, and nothing
/// is written. A unique constraint that a concurrent writer broke between the checks and the
/// insert is a [`DomainError::Conflict`], and nothing is written either.
pub async fn import(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    file: ImportFile,
    dry_run: bool,
    progress: &dyn Progress,
) -> DomainResult<ImportReport> {
    can_import(&ctx.actor, domain_id)?;
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::DevicesWrite).await?;
    let settings = calling_settings::load(deps.db, domain_id).await?;
    let rules = extensions::NumberingRules::of(&settings);

    let mut report = Report(file.unreadable);
    let mut counted: HashSet<(Option<RowKind>, usize)> =
        report.0.iter().map(|e| (e.kind, e.row)).collect();
    counted.extend(
        file.extensions
            .iter()
            .map(|r| (Some(RowKind::Extension), r.row)),
    );
    counted.extend(file.devices.iter().map(|r| (Some(RowKind::Device), r.row)));
    let rows = counted.len();
    let of_kind = |kind| counted.iter().filter(|(k, _)| *k == Some(kind)).count();
    let (extension_rows, device_rows) = (of_kind(RowKind::Extension), of_kind(RowKind::Device));
    if rows == 0 {
        // Most likely the wrong file, or a CSV with only its header: say so rather than
        // record an import of nothing.
        return Err(DomainError::invalid(
            "rows",
            "empty",
            "the file has no rows to import",
        ));
    }

    let started = std::time::Instant::now();
    progress.start(Stage::Validating, rows as u64);
    let mut exts = draft_extensions(file.extensions, domain_id, ctx.now, &rules, &mut report);
    progress.advance(exts.len() as u64);
    let reads = lookups(deps.db).await?;
    check_extensions(&reads, domain_id, &exts, &mut report).await?;
    let mut devs =
        draft_devices(&reads, domain_id, ctx.now, file.devices, &exts, &mut report).await?;
    progress.advance(devs.len() as u64);
    check_devices(&reads, &devs, &mut report).await?;
    reads.rollback().await?;

    let mut errors = report.0;
    errors.sort_by_key(|e| (e.row, e.kind));
    let valid = errors.is_empty();
    let mut outcome = ImportReport {
        valid,
        dry_run,
        imported: false,
        rows,
        extensions: extension_rows,
        devices: device_rows,
        errors,
    };
    if !valid || dry_run {
        return Ok(outcome);
    }

    let validated = started.elapsed();
    hash_pins(&mut exts, progress).await?;
    let hashed = started.elapsed();
    for ext in &mut exts {
        if ext.model.sip_registration_enabled {
            ext.model.sip_secret_encrypted = Some(deps.cipher.encrypt(
                generate_sip_secret().expose_secret(),
                &extensions::secret_context(ext.model.id),
            ));
        }
    }
    let reads = lookups(deps.db).await?;
    assign_positions(&reads, domain_id, &mut devs).await?;
    assign_sip_usernames(&reads, domain_id, &mut devs).await?;
    for dev in &mut devs {
        dev.model.sip_secret_encrypted = deps.cipher.encrypt(
            generate_sip_secret().expose_secret(),
            &devices::secret_context(dev.model.id),
        );
    }

    let import_id = Uuid::now_v7();
    let pins = exts.iter().filter(|e| e.model.pin_hash.is_some()).count();
    let mut sip_users = affected_sip_users(&reads, domain_id, &exts, &devs).await?;
    reads.rollback().await?;
    let ext_models: Vec<_> = exts.into_iter().map(|e| e.model).collect();
    let dev_models: Vec<_> = devs.into_iter().map(|d| d.model).collect();

    progress.start(
        Stage::Inserting,
        (ext_models.len() + dev_models.len()) as u64,
    );
    let txn = crate::db::begin_write(deps.db).await?;
    insert_chunked::<extension_store::Entity, _>(&txn, &ext_models, progress).await?;
    insert_chunked::<device_store::Entity, _>(&txn, &dev_models, progress).await?;
    // Every row created is audited as its single create would be, tied to this import.
    let with_import = |view: Option<serde_json::Value>| {
        view.map(|mut v| {
            if let Some(map) = v.as_object_mut() {
                map.insert("import_id".into(), json!(import_id));
            }
            v
        })
    };
    let entries: Vec<_> = ext_models
        .iter()
        .map(|m| {
            audit::row(
                ctx,
                audit::Entry {
                    domain_id: Some(domain_id),
                    action: "extension.create",
                    target_kind: "extension",
                    target_id: Some(m.id.to_string()),
                    before: None,
                    after: with_import(serde_json::to_value(m).ok()),
                },
            )
        })
        .chain(dev_models.iter().map(|m| {
            audit::row(
                ctx,
                audit::Entry {
                    domain_id: Some(domain_id),
                    action: "device.create",
                    target_kind: "device",
                    target_id: Some(m.id.to_string()),
                    before: None,
                    after: with_import(super::devices::audit_view(m)),
                },
            )
        }))
        .collect();
    insert_chunked::<audit_log::Entity, _>(&txn, &entries, &Silent).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "import.completed",
            target_kind: "import",
            target_id: Some(import_id.to_string()),
            before: None,
            after: Some(json!({
                "rows": rows,
                "extensions": ext_models.len(),
                "devices": dev_models.len(),
                "extensions_with_pin": pins,
            })),
        },
    )
    .await?;
    txn.commit().await?;
    let written = started.elapsed();
    tracing::info!(
        domain = %domain_id,
        import = %import_id,
        extensions = ext_models.len(),
        devices = dev_models.len(),
        pins,
        validate_ms = validated.as_millis(),
        hash_ms = (hashed - validated).as_millis(),
        write_ms = (written - hashed).as_millis(),
        "bulk import committed"
    );

    sip_users.sort();
    let mut event = ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::ImportCompleted,
        import_id,
        ctx.now,
    );
    event.sip_users = sip_users;
    deps.bus.publish([event]);
    outcome.imported = true;
    Ok(outcome)
}

/// A read-only transaction for the batched look-ups (`IN` lists of up to [`LOOKUP_CHUNK`]
/// values). On PostgreSQL it plans every execution for its actual values: a prepared
/// statement's generic plan, fixed while a table was still small, would otherwise keep
/// scanning the whole table once it has grown (seconds per import at 50 000 devices).
async fn lookups(db: &DatabaseConnection) -> DomainResult<DatabaseTransaction> {
    // Reads only: not a write transaction, which on SQLite would hold the write lock.
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
    }
    Ok(txn)
}

/// Builds and checks every Extension row on its own: the single-create rules.
fn draft_extensions(
    rows: Vec<Numbered<ExtensionPatch>>,
    domain_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    rules: &extensions::NumberingRules,
    report: &mut Report,
) -> Vec<ExtensionDraft> {
    rows.into_iter()
        .map(|Numbered { row, value }| {
            let (mut model, pin, mut errors) = extensions::draft(domain_id, now, value);
            // Like a single create: a missing required field is reported alone.
            if errors.is_empty() {
                errors = extensions::validate(&mut model, rules, pin.as_ref());
            }
            report.extend(row, RowKind::Extension, errors);
            ExtensionDraft { row, model, pin }
        })
        .collect()
}

/// Marks every row after the first that has the same `key` as an earlier one.
fn duplicates<K: std::hash::Hash + Eq>(
    items: impl IntoIterator<Item = (usize, Option<K>)>,
    mut report: impl FnMut(usize, usize),
) {
    let mut first: HashMap<K, usize> = HashMap::new();
    for (row, key) in items {
        if let Some(key) = key {
            match first.get(&key) {
                Some(earlier) => report(row, *earlier),
                None => {
                    first.insert(key, row);
                }
            }
        }
    }
}

/// Extension checks across rows: duplicates in the file, numbers and users already taken in
/// the Domain, linked users that hold no role in it.
async fn check_extensions<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    exts: &[ExtensionDraft],
    report: &mut Report,
) -> DomainResult<()> {
    let kind = RowKind::Extension;
    duplicates(
        exts.iter().map(|e| {
            (
                e.row,
                Some(e.model.number.clone()).filter(|n| !n.is_empty()),
            )
        }),
        |row, earlier| {
            report.add(
                row,
                kind,
                "number",
                "duplicate_in_file",
                format!("the number is already on row {earlier} of this file"),
            )
        },
    );
    duplicates(
        exts.iter().map(|e| (e.row, e.model.user_id)),
        |row, earlier| {
            report.add(
                row,
                kind,
                "user_id",
                "duplicate_in_file",
                format!("the User is already linked on row {earlier} of this file"),
            )
        },
    );

    let numbers: Vec<String> = exts.iter().map(|e| e.model.number.clone()).collect();
    let taken = extensions_by_number(db, domain_id, &numbers).await?;
    let users: Vec<Uuid> = exts.iter().filter_map(|e| e.model.user_id).collect();
    let members = members_of(db, domain_id, &users).await?;
    let linked = linked_users(db, domain_id, &users).await?;
    for e in exts {
        if taken.contains_key(&e.model.number) {
            report.add(
                e.row,
                kind,
                "number",
                "already_exists",
                "an Extension with this number already exists in the Domain".into(),
            );
        }
        if let Some(user) = e.model.user_id {
            if !members.contains(&user) {
                report.add(
                    e.row,
                    kind,
                    "user_id",
                    "not_found",
                    "no such User in this Domain".into(),
                );
            } else if linked.contains(&user) {
                report.add(
                    e.row,
                    kind,
                    "user_id",
                    "already_exists",
                    "this User already has an Extension in the Domain".into(),
                );
            }
        }
    }
    Ok(())
}

/// Resolves the natural-key references of every Device row, builds the rows with the
/// single-create rules and checks their references.
async fn draft_devices<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    rows: Vec<Numbered<DeviceRow>>,
    exts: &[ExtensionDraft],
    report: &mut Report,
) -> DomainResult<Vec<DeviceDraft>> {
    let kind = RowKind::Device;
    // The Extensions Devices may point at: the file's own, then the stored ones.
    let in_file: HashMap<&str, &extension_store::Model> = exts
        .iter()
        .map(|e| (e.model.number.as_str(), &e.model))
        .collect();
    let wanted_numbers: Vec<String> = rows
        .iter()
        .flat_map(|r| [&r.value.owner_extension, &r.value.placeholder_extension])
        .flatten()
        .filter_map(|n| ExtensionNumber::parse(n).ok())
        .map(ExtensionNumber::into_string)
        .filter(|n| !in_file.contains_key(n.as_str()))
        .collect();
    let stored_by_number = extensions_by_number(db, domain_id, &wanted_numbers).await?;
    let wanted_ids: Vec<Uuid> = rows
        .iter()
        .flat_map(|r| {
            [
                r.value.patch.owner_extension_id.flatten(),
                r.value.patch.placeholder_extension_id.flatten(),
            ]
        })
        .flatten()
        .collect();
    let stored_by_id = extensions_by_id(db, domain_id, &wanted_ids).await?;
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| r.value.location.as_deref().map(|n| n.trim().to_owned()))
        .collect();
    let location_ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|r| r.value.patch.location_id.flatten())
        .collect();
    let (locations_by_name, known_locations) =
        locations_of(db, domain_id, &names, &location_ids).await?;

    let by_id: HashMap<Uuid, &extension_store::Model> = in_file
        .values()
        .map(|m| (m.id, *m))
        .chain(stored_by_id.values().map(|m| (m.id, m)))
        .chain(stored_by_number.values().map(|m| (m.id, m)))
        .collect();
    let resolve = |number: &str| -> Result<Uuid, FieldError> {
        let number = ExtensionNumber::parse(number)?.into_string();
        in_file
            .get(number.as_str())
            .map(|m| m.id)
            .or_else(|| stored_by_number.get(&number).map(|m| m.id))
            .ok_or_else(|| {
                FieldError::new(
                    "",
                    "not_found",
                    format!("no Extension {number} in this Domain or in this file"),
                )
            })
    };

    let mut drafts = Vec::with_capacity(rows.len());
    for Numbered { row, value } in rows {
        let DeviceRow {
            mut patch,
            owner_extension,
            placeholder_extension,
            location,
        } = value;
        let mut errors = FieldErrors::new();
        // Whether the owner / placeholder was named by number (import-only field).
        let mut owner_by_number = false;
        let mut placeholder_by_number = false;
        for (number, id_field, key_field, target, by_number) in [
            (
                owner_extension,
                "owner_extension_id",
                "owner_extension",
                &mut patch.owner_extension_id,
                &mut owner_by_number,
            ),
            (
                placeholder_extension,
                "placeholder_extension_id",
                "placeholder_extension",
                &mut patch.placeholder_extension_id,
                &mut placeholder_by_number,
            ),
        ] {
            match (number.filter(|n| !n.trim().is_empty()), *target) {
                (Some(_), Some(Some(_))) => errors.add(
                    key_field,
                    "conflicting_fields",
                    format!("give {key_field} or {id_field}, not both"),
                ),
                (Some(number), _) => {
                    *by_number = true;
                    if let Some(id) = errors.check(key_field, resolve(&number)) {
                        *target = Some(Some(id));
                    }
                }
                (None, _) => {}
            }
        }
        let mut location_found = true;
        match (location.filter(|n| !n.trim().is_empty()), patch.location_id) {
            (Some(_), Some(Some(_))) => errors.add(
                "location",
                "conflicting_fields",
                "give location or location_id, not both",
            ),
            (Some(name), _) => match locations_by_name.get(name.trim()) {
                Some(id) => patch.location_id = Some(Some(*id)),
                None => errors.add(
                    "location",
                    "not_found",
                    format!("no Location named {:?} in this Domain", name.trim()),
                ),
            },
            (None, Some(Some(id))) => location_found = known_locations.contains(&id),
            (None, _) => {}
        }
        let position_given = patch.location_position.is_some();
        let (mut model, draft_errors) = devices::draft(domain_id, now, patch);
        if draft_errors.is_empty() && errors.is_empty() {
            let mut rules = devices::validate(&mut model);
            let owner = model
                .owner_extension_id
                .and_then(|id| by_id.get(&id).copied());
            let placeholder = model
                .placeholder_extension_id
                .and_then(|id| by_id.get(&id).copied());
            devices::check_references(&model, None, owner, placeholder, location_found, &mut rules);
            // Errors about a reference given by number are reported under the number's field.
            for mut e in rules.into_vec() {
                if owner_by_number && e.field == "owner_extension_id" {
                    e.field = "owner_extension".into();
                }
                if placeholder_by_number && e.field == "placeholder_extension_id" {
                    e.field = "placeholder_extension".into();
                }
                errors.push(e);
            }
        } else {
            for e in draft_errors.into_vec() {
                errors.push(e);
            }
        }
        report.extend(row, kind, errors);
        drafts.push(DeviceDraft {
            row,
            model,
            position_given,
        });
    }
    Ok(drafts)
}

/// Device checks across rows: MAC addresses repeated in the file or already used anywhere on
/// the platform.
async fn check_devices<C: ConnectionTrait>(
    db: &C,
    devs: &[DeviceDraft],
    report: &mut Report,
) -> DomainResult<()> {
    let kind = RowKind::Device;
    duplicates(
        devs.iter().map(|d| (d.row, d.model.mac_address.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "mac_address",
                "duplicate_in_file",
                format!("the MAC address is already on row {earlier} of this file"),
            )
        },
    );
    let macs: Vec<String> = devs
        .iter()
        .filter_map(|d| d.model.mac_address.clone())
        .collect();
    let mut used = HashSet::new();
    for chunk in macs.chunks(LOOKUP_CHUNK) {
        // MAC addresses are unique across every Domain, so this look-up is deliberately not
        // scoped; only the fact that one is taken is used, nothing of the other row.
        let found: Vec<Option<String>> = device_store::Entity::find()
            .select_only()
            .column(device_store::Column::MacAddress)
            .filter(device_store::Column::MacAddress.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        used.extend(found.into_iter().flatten());
    }
    for d in devs {
        if d.model
            .mac_address
            .as_ref()
            .is_some_and(|m| used.contains(m))
        {
            report.add(
                d.row,
                kind,
                "mac_address",
                "already_exists",
                "a Device with this MAC address already exists".into(),
            );
        }
    }
    Ok(())
}

/// Hashes every PIN on the blocking pool, one per core at a time: argon2id is deliberately
/// slow (tens of ms and 19 MiB each), so a thousand PINs take seconds, and an unbounded fan-out
/// would only trade time for memory.
async fn hash_pins(exts: &mut [ExtensionDraft], progress: &dyn Progress) -> DomainResult<()> {
    let pending: Vec<(usize, SecretString)> = exts
        .iter_mut()
        .enumerate()
        .filter_map(|(i, e)| e.pin.take().map(|p| (i, p)))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    progress.start(Stage::Hashing, pending.len() as u64);
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let mut queue = pending.into_iter();
    let mut running = JoinSet::new();
    loop {
        while running.len() < workers {
            match queue.next() {
                Some((i, pin)) => {
                    running.spawn(async move { (i, hash_secret(pin).await) });
                }
                None => break,
            }
        }
        match running.join_next().await {
            Some(joined) => {
                let (i, hash) =
                    joined.map_err(|e| DomainError::Internal(format!("hashing task: {e}")))?;
                if let Some(ext) = exts.get_mut(i) {
                    ext.model.pin_hash = Some(hash?);
                }
                progress.advance(1);
            }
            None => return Ok(()),
        }
    }
}

/// Devices that join a Location without a position go to its end, in file order (as a single
/// create puts them).
async fn assign_positions<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    devs: &mut [DeviceDraft],
) -> DomainResult<()> {
    let mut next: HashMap<Uuid, i32> = HashMap::new();
    for dev in devs.iter_mut().filter(|d| !d.position_given) {
        let Some(location) = dev.model.location_id else {
            continue;
        };
        let position = match next.get(&location) {
            Some(p) => *p,
            None => devices::end_of_location(db, domain_id, location).await?,
        };
        dev.model.location_position = position;
        next.insert(
            location,
            Ord::min(position.saturating_add(1), devices::MAX_LOCATION_POSITION),
        );
    }
    Ok(())
}

/// Gives every Device a generated SIP user name, unique in the file and in the Domain
/// (a clash of two random names is improbable, but cheap to rule out).
async fn assign_sip_usernames<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    devs: &mut [DeviceDraft],
) -> DomainResult<()> {
    let mut seen: HashSet<String> = HashSet::with_capacity(devs.len());
    let mut todo: Vec<usize> = (0..devs.len()).collect();
    while !todo.is_empty() {
        for &i in &todo {
            if let Some(dev) = devs.get_mut(i) {
                let mut name = generate_sip_username();
                while !seen.insert(name.clone()) {
                    name = generate_sip_username();
                }
                dev.model.sip_username = name;
            }
        }
        let names: Vec<String> = todo
            .iter()
            .filter_map(|&i| devs.get(i).map(|d| d.model.sip_username.clone()))
            .collect();
        let mut taken = HashSet::new();
        for chunk in names.chunks(LOOKUP_CHUNK) {
            let found: Vec<String> = device_store::Entity::find()
                .select_only()
                .column(device_store::Column::SipUsername)
                .filter(device_store::Column::DomainId.eq(domain_id))
                .filter(device_store::Column::SipUsername.is_in(chunk.iter().cloned()))
                .into_tuple()
                .all(db)
                .await?;
            taken.extend(found);
        }
        todo.retain(|&i| {
            devs.get(i)
                .is_some_and(|d| taken.contains(&d.model.sip_username))
        });
    }
    Ok(())
}

/// The SIP users FreeSWITCH must re-read: every new Extension and Device, and the stored
/// Extensions that gained a fixed device (their dial string now includes it).
async fn affected_sip_users<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    exts: &[ExtensionDraft],
    devs: &[DeviceDraft],
) -> DomainResult<Vec<String>> {
    let new_ids: HashSet<Uuid> = exts.iter().map(|e| e.model.id).collect();
    let stored_owners: Vec<Uuid> = devs
        .iter()
        .filter_map(|d| d.model.owner_extension_id)
        .filter(|id| !new_ids.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let owners = extensions_by_id(db, domain_id, &stored_owners).await?;
    let mut users: HashSet<String> = exts.iter().map(|e| e.model.number.clone()).collect();
    users.extend(devs.iter().map(|d| d.model.sip_username.clone()));
    users.extend(owners.into_values().map(|m| m.number));
    Ok(users.into_iter().collect())
}

/// Inserts `rows` with multi-row `INSERT`s sized to stay under the bound-parameter limits.
async fn insert_chunked<E, C>(
    db: &C,
    rows: &[E::Model],
    progress: &dyn Progress,
) -> DomainResult<()>
where
    E: EntityTrait,
    E::Model: Clone + sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + From<E::Model> + Send,
    C: ConnectionTrait,
{
    let per_insert = (MAX_BIND_PARAMS / E::Column::iter().count().max(1)).clamp(1, 500);
    for chunk in rows.chunks(per_insert) {
        E::insert_many(chunk.iter().cloned().map(E::ActiveModel::from))
            .exec_without_returning(db)
            .await?;
        progress.advance(chunk.len() as u64);
    }
    Ok(())
}

/// The stored Extensions of the Domain with one of these numbers.
async fn extensions_by_number<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    numbers: &[String],
) -> DomainResult<HashMap<String, extension_store::Model>> {
    let mut found = HashMap::new();
    for chunk in numbers.chunks(LOOKUP_CHUNK) {
        for m in extension_store::Entity::find()
            .filter(extension_store::Column::DomainId.eq(domain_id))
            .filter(extension_store::Column::Number.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(m.number.clone(), m);
        }
    }
    Ok(found)
}

/// The stored Extensions of the Domain with one of these ids.
async fn extensions_by_id<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, extension_store::Model>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        for m in extension_store::Entity::find()
            .filter(extension_store::Column::DomainId.eq(domain_id))
            .filter(extension_store::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(m.id, m);
        }
    }
    Ok(found)
}

/// Which of `users` hold a role in the Domain (a linked User must).
async fn members_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    users: &[Uuid],
) -> DomainResult<HashSet<Uuid>> {
    let mut found = HashSet::new();
    for chunk in users.chunks(LOOKUP_CHUNK) {
        let ids: Vec<Uuid> = role_assignments::Entity::find()
            .select_only()
            .column(role_assignments::Column::UserId)
            .filter(role_assignments::Column::DomainId.eq(domain_id))
            .filter(role_assignments::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(ids);
    }
    Ok(found)
}

/// Which of `users` already have an Extension in the Domain.
async fn linked_users<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    users: &[Uuid],
) -> DomainResult<HashSet<Uuid>> {
    let mut found = HashSet::new();
    for chunk in users.chunks(LOOKUP_CHUNK) {
        let ids: Vec<Option<Uuid>> = extension_store::Entity::find()
            .select_only()
            .column(extension_store::Column::UserId)
            .filter(extension_store::Column::DomainId.eq(domain_id))
            .filter(extension_store::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(ids.into_iter().flatten());
    }
    Ok(found)
}

/// The Domain's Locations named in `names` (name → id), and which of `ids` exist in it.
async fn locations_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    names: &[String],
    ids: &[Uuid],
) -> DomainResult<(HashMap<String, Uuid>, HashSet<Uuid>)> {
    let mut by_name = HashMap::new();
    let unique: Vec<String> = names
        .iter()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for chunk in unique.chunks(LOOKUP_CHUNK) {
        let found: Vec<(Uuid, String)> = locations::Entity::find()
            .select_only()
            .column(locations::Column::Id)
            .column(locations::Column::Name)
            .filter(locations::Column::DomainId.eq(domain_id))
            .filter(locations::Column::Name.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        by_name.extend(found.into_iter().map(|(id, name)| (name, id)));
    }
    let mut known = HashSet::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let found: Vec<Uuid> = locations::Entity::find()
            .select_only()
            .column(locations::Column::Id)
            .filter(locations::Column::DomainId.eq(domain_id))
            .filter(locations::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(found);
    }
    Ok((by_name, known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_duplicates_name_the_first_row() {
        let mut found = Vec::new();
        duplicates(
            [
                (2, Some("201")),
                (3, Some("202")),
                (4, None),
                (5, Some("201")),
                (6, Some("201")),
            ],
            |row, earlier| found.push((row, earlier)),
        );
        assert_eq!(found, vec![(5, 2), (6, 2)]);
    }

    #[test]
    fn extension_rows_are_checked_with_the_single_create_rules() {
        let mut report = Report::default();
        let rows = vec![
            Numbered {
                row: 1,
                value: ExtensionPatch {
                    number: Some("201".into()),
                    display_name: Some("Ada".into()),
                    pin: Some(Some(SecretString::from("2580"))),
                    ..Default::default()
                },
            },
            Numbered {
                row: 2,
                value: ExtensionPatch {
                    number: Some("911".into()),
                    display_name: Some("Bad".into()),
                    ..Default::default()
                },
            },
            Numbered {
                row: 3,
                value: ExtensionPatch {
                    display_name: Some("No number".into()),
                    ..Default::default()
                },
            },
        ];
        let drafts = draft_extensions(
            rows,
            Uuid::nil(),
            chrono::Utc::now(),
            &extensions::NumberingRules {
                emergency_numbers: vec!["911".to_owned()],
                pin_min_length: 4,
            },
            &mut report,
        );
        assert_eq!(drafts.len(), 3);
        assert!(drafts[0].pin.is_some());
        let got: Vec<(usize, &str, &str)> = report
            .0
            .iter()
            .map(|e| (e.row, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(2, "number", "emergency_number"), (3, "number", "required")]
        );
    }

    #[test]
    fn row_errors_serialize_with_their_kind() {
        let e = RowError::new(
            12,
            RowKind::Device,
            FieldError::new("mac_address", "invalid_mac", "bad"),
        );
        assert_eq!(
            serde_json::to_value(&e).ok(),
            Some(
                json!({"row": 12, "kind": "device", "field": "mac_address", "code": "invalid_mac", "message": "bad"})
            )
        );
    }
}
