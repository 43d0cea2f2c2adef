//! Bulk import into one Domain, all or nothing: Users (with their roles), Locations,
//! Extensions, their hot-desk groups and Devices, each row creating a record or, when asked,
//! updating the one it matches.
//!
//! Use case: check every row with the rules of the single-resource creates and updates (the
//! same `draft`/`apply`/`validate` functions), plus what only a whole file needs (duplicates in
//! the file, collisions with stored records, references by number and name to records of the
//! same file) → answer the per-row report when anything is wrong or on a dry run → otherwise
//! hash PINs and passwords in parallel, write everything in one transaction with every row's
//! audit entry and one `import.completed` entry → after commit publish one
//! [`ChangeKind::ImportCompleted`](crate::events::ChangeKind::ImportCompleted) event naming
//! every affected SIP user, plus the events of the hot-desk sessions a change ended.
//!
//! A row matches a stored record by its natural key: an Extension by number, a Device by MAC
//! address, a User by email, a Location or a group by name. With [`OnExisting::Error`] (the
//! default) a match is a row error, as a single create would answer; with
//! [`OnExisting::Update`] the record is changed by exactly the fields the row gives, through the
//! rules of the single-resource PATCH.

mod devices;
mod extensions;
mod groups;
mod locations;
mod lookup;
mod users;
mod write;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::Duration;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use self::devices::DevicePlan;
use self::extensions::ExtensionPlan;
use self::groups::GroupPlan;
use self::locations::LocationPlan;
use self::users::UserPlan;
use super::devices::DevicePatch;
use super::extension_groups::GroupPatch;
use super::extensions::{Deps, ExtensionPatch, NumberingRules};
use super::locations::LocationPatch;
use super::users::PasswordToken;
use super::{Context, calling_settings};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::identity::authz::{Actor, authorize, can, can_see_domain};
use crate::identity::permissions::Permission;
use crate::store::domains;

/// Which kind of record a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    /// An Extension.
    Extension,
    /// A Device.
    Device,
    /// A dashboard User.
    User,
    /// A Location.
    Location,
    /// A hot-desk group of Extensions.
    Group,
}

impl RowKind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [Self; 5] = [
        Self::Extension,
        Self::Device,
        Self::User,
        Self::Location,
        Self::Group,
    ];

    /// `extension`, `device`, `user`, `location` or `group`, as in the report and the CSV
    /// `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extension => "extension",
            Self::Device => "device",
            Self::User => "user",
            Self::Location => "location",
            Self::Group => "group",
        }
    }

    /// The kind named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The permission writing this kind needs.
    fn permission(self) -> Permission {
        match self {
            Self::Extension => Permission::ExtensionsWrite,
            Self::Device => Permission::DevicesWrite,
            Self::User => Permission::UsersWrite,
            Self::Location => Permission::LocationsWrite,
            // A group is the Extensions' logout action: changed like them.
            Self::Group => Permission::ExtensionsWrite,
        }
    }
}

/// What a row that matches a stored record does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExisting {
    /// The match is a row error (`already_exists`), as for a single create.
    #[default]
    Error,
    /// The stored record is updated with the fields the row gives.
    Update,
}

impl OnExisting {
    /// `error` or `update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Update => "update",
        }
    }
}

/// How to import.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Only check every row and answer the report; write nothing.
    pub dry_run: bool,
    /// What a row matching a stored record does.
    pub on_existing: OnExisting,
    /// How long the set-password tokens of invited Users stay valid.
    pub token_ttl: Duration,
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The row it is about, as numbered by whoever read the file (see [`Numbered::row`]).
    pub row: usize,
    /// The row's kind; `None` when that could not be read.
    pub kind: Option<RowKind>,
    /// The field, named as in the single-resource body (or the import-only columns).
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

/// An Extension to import: the fields of a single create or update, plus its hot-desk group by
/// name.
#[derive(Debug, Clone, Default)]
pub struct ExtensionRow {
    /// The fields of `POST …/extensions` (`PATCH` for a matched Extension).
    pub patch: ExtensionPatch,
    /// The name of a hot-desk group of the Domain or of the file (instead of `group_id`).
    pub group: Option<String>,
}

/// A hot-desk group to import, matched by name: the fields of a single create or update, plus
/// its placeholder by number, which may be an Extension of the same file.
#[derive(Debug, Clone, Default)]
pub struct GroupRow {
    /// The fields of `POST …/extension-groups` (`PATCH` for a matched group).
    pub patch: GroupPatch,
    /// The placeholder Extension's number (instead of `placeholder_extension_id`).
    pub placeholder_extension: Option<String>,
}

/// A Device to import: the fields of a single create or update, plus references by natural
/// key that may point at Extensions and Locations of the same file.
#[derive(Debug, Clone, Default)]
pub struct DeviceRow {
    /// The fields of `POST …/devices` (`PATCH` for a matched Device).
    pub patch: DevicePatch,
    /// The owner Extension's number (instead of `owner_extension_id`).
    pub owner_extension: Option<String>,
    /// The placeholder Extension's number (instead of `placeholder_extension_id`).
    pub placeholder_extension: Option<String>,
    /// The Location's name (instead of `location_id`).
    pub location: Option<String>,
    /// The home Extension's number (instead of `home_extension_id`).
    pub home_extension: Option<String>,
}

/// A dashboard User to import, matched by email.
#[derive(Debug, Clone, Default)]
pub struct UserRow {
    /// The email, the login name and the match key (required).
    pub email: Option<String>,
    /// Display name (required for a new User).
    pub display_name: Option<String>,
    /// A password for a new User; without one the User is invited.
    pub password: Option<SecretString>,
    /// The roles in the Domain (required for a new User): built-in role names, custom role
    /// names or custom role ids. For a matched User they replace the roles held there.
    pub roles: Option<Vec<String>>,
    /// The number of the Extension linked to the User (`Some(None)`: none).
    pub extension: Option<Option<String>>,
}

/// A Location to import, matched by name.
#[derive(Debug, Clone, Default)]
pub struct LocationRow {
    /// The fields of `POST …/locations` (`PATCH` for a matched Location).
    pub patch: LocationPatch,
    /// Numbers of the Extensions allowed to sign in (instead of `allowed_extension_ids`).
    pub allowed_extensions: Option<Vec<String>>,
}

/// The rows to import.
#[derive(Debug, Default)]
pub struct ImportFile {
    /// Extensions.
    pub extensions: Vec<Numbered<ExtensionRow>>,
    /// Devices.
    pub devices: Vec<Numbered<DeviceRow>>,
    /// Users.
    pub users: Vec<Numbered<UserRow>>,
    /// Locations.
    pub locations: Vec<Numbered<LocationRow>>,
    /// Hot-desk groups.
    pub groups: Vec<Numbered<GroupRow>>,
    /// Rows that could not even be read into the lists above (wrong type, unknown column),
    /// already reported; each such row still counts in [`ImportReport::rows`].
    pub unreadable: Vec<RowError>,
}

/// What happened, or on a dry run would happen, to a row's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new record.
    Created,
    /// The matched record changed.
    Updated,
    /// The matched record already was as the row says.
    Unchanged,
}

/// The outcome of one valid row.
#[derive(Debug, Clone)]
pub struct RowResult {
    /// The row.
    pub row: usize,
    /// Its kind.
    pub kind: RowKind,
    /// Its natural key: the number, MAC address (or label, for a Device without one), email
    /// or name (of a Location or a group).
    pub key: String,
    /// Created, updated or unchanged.
    pub action: Action,
    /// The record's id; `None` for a record a dry run would create.
    pub id: Option<Uuid>,
    /// For `updated`: the fields that change, named as in the single-resource bodies.
    pub changed: Vec<String>,
    /// For an invited User that was imported: the single-use set-password token.
    pub set_password: Option<PasswordToken>,
}

/// How many rows of a kind (or of all kinds) create, update or leave a record unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    /// New records.
    pub created: usize,
    /// Changed records.
    pub updated: usize,
    /// Records already as the rows say.
    pub unchanged: usize,
}

/// The outcome of an import or a dry run.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// True when every row passed.
    pub valid: bool,
    /// True when nothing was to be written.
    pub dry_run: bool,
    /// True when the rows were written.
    pub imported: bool,
    /// What rows matching stored records did.
    pub on_existing: OnExisting,
    /// Rows in the file.
    pub rows: usize,
    /// Extension rows in the file.
    pub extensions: usize,
    /// Device rows in the file.
    pub devices: usize,
    /// User rows in the file.
    pub users: usize,
    /// Location rows in the file.
    pub locations: usize,
    /// Group rows in the file.
    pub groups: usize,
    /// What each valid row does (or would do), ordered by row.
    pub results: Vec<RowResult>,
    /// Every problem found, ordered by row.
    pub errors: Vec<RowError>,
}

impl ImportReport {
    /// The counts of the rows of `kind`, or of every row with `None`.
    pub fn counts(&self, kind: Option<RowKind>) -> ActionCounts {
        let mut counts = ActionCounts::default();
        for r in self
            .results
            .iter()
            .filter(|r| kind.is_none_or(|k| k == r.kind))
        {
            match r.action {
                Action::Created => counts.created += 1,
                Action::Updated => counts.updated += 1,
                Action::Unchanged => counts.unchanged += 1,
            }
        }
        counts
    }
}

/// The stages of an import, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Checking every row.
    Validating,
    /// Hashing PINs and passwords (the slow part).
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
            Self::Inserting => "writing",
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

/// Collects row errors.
#[derive(Debug, Default)]
struct Report(Vec<RowError>);

impl Report {
    fn add(
        &mut self,
        row: usize,
        kind: RowKind,
        field: impl Into<String>,
        code: &str,
        message: impl Into<String>,
    ) {
        self.0.push(RowError {
            row,
            kind: Some(kind),
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
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

    /// The rows with at least one error.
    fn failed(&self) -> HashSet<(RowKind, usize)> {
        self.0
            .iter()
            .filter_map(|e| e.kind.map(|k| (k, e.row)))
            .collect()
    }
}

/// Where and how the rows are checked: the Domain, the time of the import, and what a row
/// matching a stored record does.
#[derive(Debug, Clone, Copy)]
struct Drafting {
    domain_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    on_existing: OnExisting,
}

/// Everything the rows will do, once checked.
#[derive(Default)]
struct Plan {
    extensions: Vec<ExtensionPlan>,
    users: Vec<UserPlan>,
    locations: Vec<LocationPlan>,
    devices: Vec<DevicePlan>,
    groups: Vec<GroupPlan>,
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

/// The permissions of which an importer needs at least one in the Domain.
const IMPORT_PERMISSIONS: [Permission; 4] = [
    Permission::ExtensionsWrite,
    Permission::DevicesWrite,
    Permission::UsersWrite,
    Permission::LocationsWrite,
];

/// Whether `actor` may import into the Domain at all: one of `extensions.write`,
/// `devices.write`, `users.write`, `locations.write` there (each kind of row then needs its
/// own). The HTTP edge asks before reading a large body; [`import`] asks again itself.
pub fn can_import(actor: &Actor, domain_id: Uuid) -> DomainResult<()> {
    if IMPORT_PERMISSIONS
        .iter()
        .any(|p| can(actor, *p, Some(domain_id)))
    {
        Ok(())
    } else if can_see_domain(actor, domain_id) {
        Err(DomainError::Forbidden {
            permission: IMPORT_PERMISSIONS.map(Permission::as_str).join(" or "),
        })
    } else {
        Err(DomainError::NotFound("domain"))
    }
}

/// The permissions the rows of `file` need: each kind's write permission (`extensions.write`
/// for groups), and `extensions.write` for Users linked to an Extension.
fn needed_permissions(file: &ImportFile) -> BTreeSet<Permission> {
    let mut needed = BTreeSet::new();
    if !file.extensions.is_empty() {
        needed.insert(RowKind::Extension.permission());
    }
    if !file.devices.is_empty() {
        needed.insert(RowKind::Device.permission());
    }
    if !file.users.is_empty() {
        needed.insert(RowKind::User.permission());
    }
    if file.users.iter().any(|u| u.value.extension.is_some()) {
        needed.insert(Permission::ExtensionsWrite);
    }
    if !file.locations.is_empty() {
        needed.insert(RowKind::Location.permission());
    }
    if !file.groups.is_empty() {
        needed.insert(RowKind::Group.permission());
    }
    needed
}

/// Imports (or, with `dry_run`, only checks) `file` into the Domain; needs the write
/// permission of every kind of row the file holds.
///
/// Invalid rows are not an `Err`: the report says `valid: false` and lists them, and nothing
/// is written. A record that a concurrent writer created or changed between the checks and the
/// write is a [`DomainError::Conflict`], and nothing is written either.
pub async fn import(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    file: ImportFile,
    options: ImportOptions,
    progress: &dyn Progress,
) -> DomainResult<ImportReport> {
    can_import(&ctx.actor, domain_id)?;
    for permission in needed_permissions(&file) {
        authorize(&ctx.actor, permission, domain_id)?;
    }
    let domain = domains::Entity::find_by_id(domain_id)
        .one(deps.db)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let settings = calling_settings::load(deps.db, domain_id).await?;
    let rules = NumberingRules::of(&settings);

    let mut report = Report(file.unreadable);
    let mut counted: HashSet<(Option<RowKind>, usize)> =
        report.0.iter().map(|e| (e.kind, e.row)).collect();
    counted.extend(
        file.extensions
            .iter()
            .map(|r| (RowKind::Extension, r.row))
            .chain(file.devices.iter().map(|r| (RowKind::Device, r.row)))
            .chain(file.users.iter().map(|r| (RowKind::User, r.row)))
            .chain(file.locations.iter().map(|r| (RowKind::Location, r.row)))
            .chain(file.groups.iter().map(|r| (RowKind::Group, r.row)))
            .map(|(kind, row)| (Some(kind), row)),
    );
    let rows = counted.len();
    let of_kind = |kind| counted.iter().filter(|(k, _)| *k == Some(kind)).count();
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
    let on_existing = options.on_existing;
    let at = Drafting {
        domain_id,
        now: ctx.now,
        on_existing,
    };
    let reads = lookup::lookups(deps.db).await?;
    let mut plan = Plan {
        extensions: extensions::draft(&reads, at, &rules, file.extensions, &mut report).await?,
        ..Plan::default()
    };
    progress.advance(plan.extensions.len() as u64);
    plan.users = users::draft(
        &reads,
        ctx,
        at,
        file.users,
        &mut plan.extensions,
        &mut report,
    )
    .await?;
    progress.advance(plan.users.len() as u64);
    extensions::check_links(&reads, domain_id, &plan.extensions, &mut report).await?;
    // Groups may name a placeholder of the file; Extensions may join a group of the file.
    plan.groups = groups::draft(&reads, at, file.groups, &plan.extensions, &mut report).await?;
    groups::join(&plan.groups, &mut plan.extensions, &mut report);
    progress.advance(plan.groups.len() as u64);
    plan.locations =
        locations::draft(&reads, at, file.locations, &plan.extensions, &mut report).await?;
    progress.advance(plan.locations.len() as u64);
    plan.devices = devices::draft(
        &reads,
        at,
        file.devices,
        &plan.extensions,
        &plan.locations,
        &mut report,
    )
    .await?;
    progress.advance(plan.devices.len() as u64);
    reads.rollback().await?;
    extensions::compare_pins(&mut plan.extensions).await?;

    let failed = report.failed();
    let mut errors = report.0;
    errors.sort_by_key(|e| (e.row, e.kind));
    let valid = errors.is_empty();
    let mut outcome = ImportReport {
        valid,
        dry_run: options.dry_run,
        imported: false,
        on_existing,
        rows,
        extensions: of_kind(RowKind::Extension),
        devices: of_kind(RowKind::Device),
        users: of_kind(RowKind::User),
        locations: of_kind(RowKind::Location),
        groups: of_kind(RowKind::Group),
        results: results(&plan, &failed),
        errors,
    };
    if !valid || options.dry_run {
        // A created record only gets its id when it is written.
        for r in &mut outcome.results {
            if r.action == Action::Created {
                r.id = None;
            }
        }
        return Ok(outcome);
    }

    let validated = started.elapsed();
    let written = write::write(
        deps,
        ctx,
        &domain,
        plan,
        &outcome,
        options.token_ttl,
        progress,
    )
    .await?;
    for r in &mut outcome.results {
        if r.kind == RowKind::User {
            r.set_password = written.tokens.get(&r.row).cloned();
        }
    }
    tracing::info!(
        domain = %domain_id,
        import = %written.import_id,
        rows,
        created = outcome.counts(None).created,
        updated = outcome.counts(None).updated,
        unchanged = outcome.counts(None).unchanged,
        validate_ms = validated.as_millis(),
        hash_ms = written.hashing.as_millis(),
        write_ms = started
            .elapsed()
            .saturating_sub(validated)
            .saturating_sub(written.hashing)
            .as_millis(),
        "bulk import committed"
    );
    outcome.imported = true;
    Ok(outcome)
}

/// What every row without errors does, ordered by row (and kind).
fn results(plan: &Plan, failed: &HashSet<(RowKind, usize)>) -> Vec<RowResult> {
    let mut out: Vec<RowResult> = plan
        .extensions
        .iter()
        .filter_map(ExtensionPlan::result)
        .chain(plan.users.iter().map(UserPlan::result))
        .chain(plan.locations.iter().map(LocationPlan::result))
        .chain(plan.devices.iter().map(DevicePlan::result))
        .chain(plan.groups.iter().map(GroupPlan::result))
        .filter(|r| !failed.contains(&(r.kind, r.row)))
        .collect();
    out.sort_by_key(|r| (r.row, r.kind));
    out
}

/// Created, updated or unchanged, from what the row changes.
fn action_of<T>(before: Option<&T>, changed: &[String]) -> Action {
    match before {
        None => Action::Created,
        Some(_) if changed.is_empty() => Action::Unchanged,
        Some(_) => Action::Updated,
    }
}

/// The fields whose values differ between two serialised records, skipping `skip` and
/// naming each with `rename` (a stored column → its name in the API body).
fn changed_fields(
    before: &serde_json::Value,
    after: &serde_json::Value,
    skip: &[&str],
    rename: fn(&str) -> String,
) -> Vec<String> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(key, _)| !skip.contains(&key.as_str()))
        .filter(|(key, value)| before.get(key.as_str()) != Some(*value))
        .map(|(key, _)| rename(key))
        .collect()
}

/// Marks every row after the first that has the same `key` as an earlier one.
/// The trimmed names of rows matched by name (Locations, groups), `None` where a row has none;
/// a name given twice is a `duplicate_in_file` error on the later rows.
fn names_in_file<T>(
    rows: &[Numbered<T>],
    name: impl Fn(&T) -> Option<&str>,
    kind: RowKind,
    report: &mut Report,
) -> Vec<Option<String>> {
    let names: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            name(&r.value)
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        })
        .collect();
    duplicates(
        rows.iter().zip(&names).map(|(r, n)| (r.row, n.clone())),
        |row, earlier| {
            report.add(
                row,
                kind,
                "name",
                "duplicate_in_file",
                format!("the name is already on row {earlier} of this file"),
            )
        },
    );
    names
}

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

#[cfg(test)]
mod tests {
    use serde_json::json;

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

    #[test]
    fn changed_fields_name_only_what_differs() {
        let before = json!({"id": 1, "a": 1, "forward_busy_enabled": false, "updated_at": "x"});
        let after = json!({"id": 1, "a": 1, "forward_busy_enabled": true, "updated_at": "y"});
        let got = changed_fields(&before, &after, &["id", "updated_at"], |k| {
            format!("renamed.{k}")
        });
        assert_eq!(got, vec!["renamed.forward_busy_enabled".to_owned()]);
    }

    #[test]
    fn kinds_parse_case_insensitively_and_order_extensions_first() {
        assert_eq!(RowKind::parse(" User "), Some(RowKind::User));
        assert_eq!(RowKind::parse("phone"), None);
        assert!(RowKind::Extension < RowKind::Device);
        assert!(RowKind::Device < RowKind::User);
        assert_eq!(RowKind::parse("GROUP"), Some(RowKind::Group));
        assert_eq!(RowKind::Group.permission(), Permission::ExtensionsWrite);
    }

    #[test]
    fn actions_follow_the_match_and_the_changes() {
        assert_eq!(action_of::<()>(None, &[]), Action::Created);
        assert_eq!(action_of(Some(&()), &[]), Action::Unchanged);
        assert_eq!(action_of(Some(&()), &["label".to_owned()]), Action::Updated);
    }

    #[test]
    fn the_counts_sum_up_each_kind_and_all_kinds() {
        let result = |kind, action| RowResult {
            row: 1,
            kind,
            key: String::new(),
            action,
            id: None,
            changed: Vec::new(),
            set_password: None,
        };
        let report = ImportReport {
            valid: true,
            dry_run: true,
            imported: false,
            on_existing: OnExisting::Update,
            rows: 3,
            extensions: 2,
            devices: 0,
            users: 1,
            locations: 0,
            groups: 0,
            results: vec![
                result(RowKind::Extension, Action::Created),
                result(RowKind::Extension, Action::Updated),
                result(RowKind::User, Action::Unchanged),
            ],
            errors: Vec::new(),
        };
        assert_eq!(
            report.counts(Some(RowKind::Extension)),
            ActionCounts {
                created: 1,
                updated: 1,
                unchanged: 0
            }
        );
        assert_eq!(
            report.counts(None),
            ActionCounts {
                created: 1,
                updated: 1,
                unchanged: 1
            }
        );
    }
}
