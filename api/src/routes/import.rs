//! Bulk import of Users, Locations, Extensions, hot-desk groups and Devices:
//! `POST /api/v1/domains/{domain_id}/import` with JSON or CSV, all or nothing, rows creating
//! records or (with `on_existing=update`) updating the ones they match, with a dry run that
//! only answers the per-row report.
//!
//! Reading the file lives here too ([`parse_file`]), because `switchboard import --offline`
//! reads the same two formats: JSON rows are deserialized one by one into the very types of the
//! single-resource bodies ([`ExtensionInput`], [`DeviceInput`], [`LocationInput`],
//! [`ExtensionGroupInput`]), and each CSV row is first turned into the same JSON object, so both
//! formats follow one path and a wrong type in row 12 is an error of row 12, not of the whole
//! file.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_domain::FieldError;
use switchboard_domain::services::extension_groups::GroupPatch;
use switchboard_domain::services::extensions::{Deps, ExtensionPatch};
use switchboard_domain::services::import::{
    self, Action, ActionCounts, DeviceRow, ExtensionRow, GroupRow, ImportFile, ImportOptions,
    ImportReport, LocationRow, Numbered, OnExisting, RowError, RowKind, RowResult, Silent, UserRow,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Query, payload_error, refuse_nul_in_json, within_body_timeout};
use crate::problem::{ApiError, ApiResult, PROBLEM_JSON, Problem, ProblemField};
use crate::routes::devices::DeviceInput;
use crate::routes::extension_groups::ExtensionGroupInput;
use crate::routes::extensions::ExtensionInput;
use crate::routes::locations::LocationInput;
use crate::state::AppState;

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// `{"users": [...], "locations": [...], "groups": [...], "extensions": [...],
    /// "devices": [...]}`.
    Json,
    /// A header line, then one row per line: a `kind` column (`user`, `location`, `group`,
    /// `extension` or `device`) and the bodies' fields as columns (nested ones with dots, e.g.
    /// `forwarding.busy.enabled`).
    Csv,
}

impl ImportFormat {
    /// The media type the file is sent as.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv",
        }
    }
}

/// What a row that matches a stored record does (an Extension by number, a Device by MAC
/// address, a User by email, a Location or a hot-desk group by name).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ImportOnExisting {
    /// The row is an error (`already_exists`), as for a single create. The default.
    #[default]
    Error,
    /// The record is updated with the fields the row gives; the others stay.
    Update,
}

impl From<ImportOnExisting> for OnExisting {
    fn from(o: ImportOnExisting) -> Self {
        match o {
            ImportOnExisting::Error => Self::Error,
            ImportOnExisting::Update => Self::Update,
        }
    }
}

impl From<OnExisting> for ImportOnExisting {
    fn from(o: OnExisting) -> Self {
        match o {
            OnExisting::Error => Self::Error,
            OnExisting::Update => Self::Update,
        }
    }
}

impl ImportOnExisting {
    /// `error` or `update`, as in the query.
    pub fn as_str(self) -> &'static str {
        OnExisting::from(self).as_str()
    }
}

/// A JSON import body. Only used to document the format: rows are read one at a time so that a
/// bad row is reported as that row.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Dashboard Users, matched by email.
    #[serde(default)]
    pub users: Vec<ImportUserInput>,
    /// Locations, each like the body of `POST …/locations` (`PATCH` for a matched one), matched
    /// by name.
    #[serde(default)]
    pub locations: Vec<ImportLocationInput>,
    /// Hot-desk groups, each like the body of `POST …/extension-groups` (`PATCH` for a matched
    /// one) plus the placeholder by number, matched by name.
    #[serde(default)]
    pub groups: Vec<ImportGroupInput>,
    /// Extensions, each like the body of `POST …/extensions` (`PATCH` for a matched one) plus
    /// the hot-desk group by name (one of the file or of the Domain), matched by number.
    #[serde(default)]
    pub extensions: Vec<ImportExtensionInput>,
    /// Devices, each like the body of `POST …/devices` (`PATCH` for a matched one) plus
    /// references by number and name, matched by MAC address.
    #[serde(default)]
    pub devices: Vec<ImportDeviceInput>,
    /// Only check, write nothing (also `?dry_run=true`).
    #[serde(default)]
    pub dry_run: bool,
    /// What a row matching a stored record does (also `?on_existing=`; the two may not
    /// disagree). Default `error`.
    #[serde(default)]
    pub on_existing: Option<ImportOnExisting>,
}

/// An Extension row: the body of `POST …/extensions`, plus the hot-desk group by name.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportExtensionInput {
    /// The fields of a single create or change; `number` is the match key.
    #[serde(flatten)]
    pub extension: ExtensionInput,
    /// The name of a hot-desk group of the file or of the Domain (instead of `group_id`).
    #[schema(example = "Sales floor")]
    pub group: Option<String>,
}

/// A hot-desk group row: the body of `POST …/extension-groups`, plus the placeholder by number
/// (an Extension of the file or of the Domain). With `on_existing=update` a stored group of
/// the same name gets the fields the row gives.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportGroupInput {
    /// The fields of a single create or change; `name` is the match key.
    #[serde(flatten)]
    pub group: ExtensionGroupInput,
    /// The placeholder Extension's number (instead of `placeholder_extension_id`), for
    /// `logged_out_mode` `placeholder`: an Extension flagged `placeholder`.
    #[schema(example = "299")]
    pub placeholder_extension: Option<String>,
}

/// A Device row: the body of `POST …/devices`, plus four import-only references that may
/// point at Extensions and Locations of the same file.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportDeviceInput {
    /// The fields of a single create or change.
    #[serde(flatten)]
    pub device: DeviceInput,
    /// The owner Extension's number (instead of `owner_extension_id`): an Extension of the
    /// file or one already in the Domain.
    #[schema(example = "201")]
    pub owner_extension: Option<String>,
    /// The placeholder Extension's number (instead of `placeholder_extension_id`).
    pub placeholder_extension: Option<String>,
    /// The name of a Location of the file or of the Domain (instead of `location_id`).
    #[schema(example = "Berlin 2F")]
    pub location: Option<String>,
    /// The home Extension's number (instead of `home_extension_id`).
    pub home_extension: Option<String>,
}

/// A Location row: the body of `POST …/locations`, plus the allowed Extensions by number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportLocationInput {
    /// The fields of a single create or change; `name` is the match key.
    #[serde(flatten)]
    pub location: LocationInput,
    /// The numbers of the Extensions allowed to sign in under `listed` (instead of
    /// `allowed_extension_ids`): Extensions of the file or of the Domain; replaces the list.
    #[schema(example = json!(["201", "202"]))]
    pub allowed_extensions: Option<Vec<String>>,
}

/// A dashboard User row, matched by email. A new User follows the rules of
/// `POST …/users` (without `password` the User is invited and the report carries the
/// set-password token); a matched member of the Domain gets the display name, roles and
/// Extension the row gives.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportUserInput {
    /// Email, the login name and the match key; case-insensitive.
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// Display name, 1–100 characters (required for a new User).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, example = "Ada Lovelace")]
    pub display_name: Option<String>,
    /// A new User's password (at least 12 characters, not a common one); without it the User is
    /// invited. Never changes an existing User's password (an error on a matched row). Never
    /// logged, stored as an argon2id hash only.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, format = Password)]
    pub password: Option<SecretString>,
    /// Roles in this Domain (required for a new User): built-in role names (`domain_admin`,
    /// `manager`, `receptionist`, `supervisor`, `agent`, `member`), custom role names or ids.
    /// For a matched User they replace the roles held here. You must hold every permission of
    /// each role granted or taken away.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, example = json!(["manager"]))]
    pub roles: Option<Vec<String>>,
    /// The number of the Extension linked to the User (one of the file or of the Domain, not a
    /// placeholder); `null` unlinks. Linking needs `extensions.write`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "201")]
    pub extension: Option<Option<String>>,
}

/// `?dry_run=true&on_existing=update`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Only check every row and answer the report; write nothing.
    pub dry_run: Option<bool>,
    /// What a row matching a stored record does: `error` (default) or `update`.
    pub on_existing: Option<ImportOnExisting>,
}

/// The kind of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportRowKind {
    /// An Extension.
    Extension,
    /// A Device.
    Device,
    /// A dashboard User.
    User,
    /// A Location.
    Location,
    /// A hot-desk group.
    Group,
}

impl From<RowKind> for ImportRowKind {
    fn from(k: RowKind) -> Self {
        match k {
            RowKind::Extension => Self::Extension,
            RowKind::Device => Self::Device,
            RowKind::User => Self::User,
            RowKind::Location => Self::Location,
            RowKind::Group => Self::Group,
        }
    }
}

/// One problem with one field of one row.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRowError {
    /// JSON: the 1-based position in its list (`users`, `locations`, `groups`, `extensions` or
    /// `devices`). CSV: the line of the file (the header is line 1, so the first row is 2), as
    /// a spreadsheet numbers it.
    #[schema(example = 12)]
    pub row: usize,
    /// The row's kind; null when a CSV row's `kind` is missing or unknown.
    #[schema(example = "device")]
    pub kind: Option<ImportRowKind>,
    /// The field, named as in the body (CSV: the column), e.g. `roles[1]`.
    #[schema(example = "mac_address")]
    pub field: String,
    /// Stable code of the rule, e.g. `invalid_mac`, `duplicate_in_file`, `already_exists`,
    /// `not_found`, `unknown_role`, `required`, `unknown_field`, `invalid_type`.
    #[schema(example = "duplicate_in_file")]
    pub code: String,
    /// For people.
    #[schema(example = "the MAC address is already on row 3 of this file")]
    pub message: String,
}

impl From<RowError> for ImportRowError {
    fn from(e: RowError) -> Self {
        Self {
            row: e.row,
            kind: e.kind.map(Into::into),
            field: e.field,
            code: e.code,
            message: e.message,
        }
    }
}

/// What happened to a row's record, or on a dry run would happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportAction {
    /// A new record.
    Created,
    /// The matched record changed (`changed` names the fields).
    Updated,
    /// The matched record already was as the row says.
    Unchanged,
}

impl From<Action> for ImportAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Created => Self::Created,
            Action::Updated => Self::Updated,
            Action::Unchanged => Self::Unchanged,
        }
    }
}

/// What one valid row does.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRowResult {
    /// The row, numbered as in `errors`.
    #[schema(example = 3)]
    pub row: usize,
    /// Its kind.
    pub kind: ImportRowKind,
    /// Its match key: the number, the MAC address (a Device without one: its label), the
    /// email or the name (of a Location or a group).
    #[schema(example = "201")]
    pub key: String,
    /// Created, updated or unchanged.
    pub action: ImportAction,
    /// The record's id; null for a record a dry run (or an invalid file) would create.
    pub id: Option<Uuid>,
    /// For `updated`: the fields that change, named as in the bodies (`pin` for a new PIN,
    /// `roles`, `extension` and `display_name` for a User, `allowed_extension_ids` for a
    /// Location's listing).
    #[schema(example = json!(["display_name", "forwarding.busy.destination"]))]
    pub changed: Vec<String>,
    /// An invited User's single-use set-password token (`POST /api/v1/auth/set-password`),
    /// shown once; only when imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_password_token: Option<String>,
    /// When that token stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_password_expires_at: Option<DateTime<Utc>>,
}

impl From<RowResult> for ImportRowResult {
    fn from(r: RowResult) -> Self {
        let (token, expires) = match r.set_password {
            Some(t) => (Some(t.token.expose_secret().to_owned()), Some(t.expires_at)),
            None => (None, None),
        };
        Self {
            row: r.row,
            kind: r.kind.into(),
            key: r.key,
            action: r.action.into(),
            id: r.id,
            changed: r.changed,
            set_password_token: token,
            set_password_expires_at: expires,
        }
    }
}

/// How many rows create, update or leave unchanged a record.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportActionCounts {
    /// New records.
    pub created: usize,
    /// Changed records.
    pub updated: usize,
    /// Records already as their rows say.
    pub unchanged: usize,
}

impl From<ActionCounts> for ImportActionCounts {
    fn from(c: ActionCounts) -> Self {
        Self {
            created: c.created,
            updated: c.updated,
            unchanged: c.unchanged,
        }
    }
}

/// The valid rows' actions, in all and per kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportTotals {
    /// New records of every kind.
    pub created: usize,
    /// Changed records of every kind.
    pub updated: usize,
    /// Unchanged records of every kind.
    pub unchanged: usize,
    /// Extension rows.
    pub extensions: ImportActionCounts,
    /// Device rows.
    pub devices: ImportActionCounts,
    /// User rows.
    pub users: ImportActionCounts,
    /// Location rows.
    pub locations: ImportActionCounts,
    /// Group rows.
    pub groups: ImportActionCounts,
}

impl From<&ImportReport> for ImportTotals {
    fn from(r: &ImportReport) -> Self {
        let all = r.counts(None);
        Self {
            created: all.created,
            updated: all.updated,
            unchanged: all.unchanged,
            extensions: r.counts(Some(RowKind::Extension)).into(),
            devices: r.counts(Some(RowKind::Device)).into(),
            users: r.counts(Some(RowKind::User)).into(),
            locations: r.counts(Some(RowKind::Location)).into(),
            groups: r.counts(Some(RowKind::Group)).into(),
        }
    }
}

/// The result of an import or a dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReportDto {
    /// True when every row passed every check.
    pub valid: bool,
    /// True for a dry run.
    pub dry_run: bool,
    /// True when the rows were written (all of them, in one transaction).
    pub imported: bool,
    /// What rows matching stored records did.
    pub on_existing: ImportOnExisting,
    /// Rows in the file.
    #[schema(example = 10000)]
    pub rows: usize,
    /// Extension rows.
    pub extensions: usize,
    /// Device rows.
    pub devices: usize,
    /// User rows.
    pub users: usize,
    /// Location rows.
    pub locations: usize,
    /// Group rows.
    pub groups: usize,
    /// How many valid rows create, update or leave unchanged a record, in all and per kind.
    pub totals: ImportTotals,
    /// What each valid row does (a dry run: would do), ordered by row.
    pub results: Vec<ImportRowResult>,
    /// Every problem, ordered by row; empty when valid.
    pub errors: Vec<ImportRowError>,
}

impl From<ImportReport> for ImportReportDto {
    fn from(r: ImportReport) -> Self {
        let totals = ImportTotals::from(&r);
        Self {
            valid: r.valid,
            dry_run: r.dry_run,
            imported: r.imported,
            on_existing: r.on_existing.into(),
            rows: r.rows,
            extensions: r.extensions,
            devices: r.devices,
            users: r.users,
            locations: r.locations,
            groups: r.groups,
            totals,
            results: r.results.into_iter().map(Into::into).collect(),
            errors: r.errors.into_iter().map(Into::into).collect(),
        }
    }
}

/// The 422 answer of an import: invalid rows ([`ImportProblem`]), or a request refused before
/// any row was read (a bad query, a file of the wrong shape: a plain [`Problem`]).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ImportRefusal {
    /// Invalid rows.
    // Boxed: the report is much larger than a plain problem.
    Rows(Box<ImportProblem>),
    /// The request itself.
    Request(Problem),
}

/// The 422 answer of an import with invalid rows: a problem document (code
/// `validation_failed`) whose `errors` are the rows' errors, with the rest of the report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportProblem {
    /// `urn:switchboard:problem:validation_failed`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// `Unprocessable Entity`.
    pub title: String,
    /// 422.
    pub status: u16,
    /// How many errors, and that nothing was written.
    #[schema(example = "3 errors in 10000 rows; nothing was imported")]
    pub detail: String,
    /// `validation_failed`.
    pub code: String,
    /// The report (`valid` and `imported` false).
    #[serde(flatten)]
    pub report: ImportReportDto,
}

impl From<ImportReport> for ImportProblem {
    fn from(r: ImportReport) -> Self {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        Self {
            problem_type: "urn:switchboard:problem:validation_failed".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: format!(
                "{} error(s) in {} row(s); nothing was imported",
                r.errors.len(),
                r.rows
            ),
            code: "validation_failed".to_owned(),
            report: r.into(),
        }
    }
}

/// A file that cannot be read at all (not JSON, no `kind` column, unknown column …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 400 for an unreadable file, 422 for a readable one of the wrong shape.
    pub status: StatusCode,
    /// Stable code: `malformed_json`, `malformed_csv` or `validation_failed`.
    pub code: &'static str,
    /// What is wrong.
    pub detail: String,
    /// The field or column at fault, when there is one.
    pub field: Option<FieldError>,
}

impl FileError {
    pub(crate) fn malformed(code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            detail: detail.into(),
            field: None,
        }
    }

    pub(crate) fn shape(field: &str, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            detail: message.clone(),
            field: Some(FieldError::new(field, code, message)),
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {}", field.field, field.message),
            None => f.write_str(&self.detail),
        }
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        let errors = e.field.map(|f| vec![f.into()]).unwrap_or_default();
        ApiError::new(e.status, e.code, e.detail).with_errors(errors)
    }
}

/// A file read into rows.
#[derive(Debug)]
pub struct ParsedFile {
    /// The rows (and the rows that could not be read, as errors).
    pub file: ImportFile,
    /// The JSON body asked for a dry run.
    pub dry_run: bool,
    /// What the JSON body says rows matching stored records do.
    pub on_existing: Option<ImportOnExisting>,
}

/// Reads an import file of either format.
pub fn parse_file(format: ImportFormat, bytes: &[u8]) -> Result<ParsedFile, FileError> {
    match format {
        ImportFormat::Json => parse_json(bytes),
        ImportFormat::Csv => parse_csv(bytes),
    }
}

/// The JSON body's outer shape; the rows stay raw until each is read on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody {
    #[serde(default)]
    users: Vec<Value>,
    #[serde(default)]
    locations: Vec<Value>,
    #[serde(default)]
    groups: Vec<Value>,
    #[serde(default)]
    extensions: Vec<Value>,
    #[serde(default)]
    devices: Vec<Value>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    on_existing: Option<ImportOnExisting>,
}

fn parse_json(bytes: &[u8]) -> Result<ParsedFile, FileError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let body: RawBody = match serde_path_to_error::deserialize(&mut de) {
        Ok(body) => body,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let f = serde_field_error(&path, &inner.to_string());
                    FileError::shape(&f.field, &f.code, f.message)
                }
                _ => FileError::malformed(
                    "malformed_json",
                    format!(
                        "the file is not valid JSON (line {}, column {})",
                        inner.line(),
                        inner.column()
                    ),
                ),
            });
        }
    };
    de.end().map_err(|e| {
        FileError::malformed(
            "malformed_json",
            format!(
                "the file is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let mut file = ImportFile::default();
    for (i, value) in body.users.into_iter().enumerate() {
        read_user(&mut file, i + 1, value);
    }
    for (i, value) in body.locations.into_iter().enumerate() {
        read_location(&mut file, i + 1, value);
    }
    for (i, value) in body.groups.into_iter().enumerate() {
        read_group(&mut file, i + 1, value);
    }
    for (i, value) in body.extensions.into_iter().enumerate() {
        read_extension(&mut file, i + 1, value);
    }
    for (i, value) in body.devices.into_iter().enumerate() {
        read_device(&mut file, i + 1, value);
    }
    Ok(ParsedFile {
        file,
        dry_run: body.dry_run,
        on_existing: body.on_existing,
    })
}

/// Reads one Extension row into the file, or records why it cannot be read: the import-only
/// group name is taken out, the rest is a create body.
fn read_extension(file: &mut ImportFile, row: usize, mut value: Value) {
    let mut group = None;
    if let Value::Object(map) = &mut value {
        match map.remove("group") {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) => group = Some(name),
            Some(other) => {
                file.unreadable.push(RowError::new(
                    row,
                    RowKind::Extension,
                    FieldError::new(
                        "group",
                        "invalid_type",
                        format!("expected a group's name, found {other}"),
                    ),
                ));
                return;
            }
        }
    }
    match serde_path_to_error::deserialize::<_, ExtensionInput>(value) {
        Ok(input) => file.extensions.push(Numbered {
            row,
            value: ExtensionRow {
                patch: ExtensionPatch::from(input),
                group,
            },
        }),
        Err(err) => file
            .unreadable
            .push(row_type_error(row, RowKind::Extension, err)),
    }
}

/// An Extension number written without quotes (`"owner_extension": 201`) means the same as
/// with them.
fn number_as_text(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        other => other,
    }
}

/// The import-only reference fields of a Device row.
const DEVICE_REFERENCES: [&str; 4] = [
    "owner_extension",
    "placeholder_extension",
    "location",
    "home_extension",
];

/// Reads one Device row: the import-only references are taken out, the rest is a create body.
fn read_device(file: &mut ImportFile, row: usize, mut value: Value) {
    let mut refs: [Option<String>; 4] = Default::default();
    if let Value::Object(map) = &mut value {
        for (slot, key) in refs.iter_mut().zip(DEVICE_REFERENCES) {
            match map.remove(key).map(number_as_text) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = Some(s),
                Some(other) => {
                    file.unreadable.push(RowError::new(
                        row,
                        RowKind::Device,
                        FieldError::new(
                            key,
                            "invalid_type",
                            format!("expected a string, found {other}"),
                        ),
                    ));
                    return;
                }
            }
        }
    }
    match serde_path_to_error::deserialize::<_, DeviceInput>(value) {
        Ok(input) => {
            let [
                owner_extension,
                placeholder_extension,
                location,
                home_extension,
            ] = refs;
            file.devices.push(Numbered {
                row,
                value: DeviceRow {
                    patch: input.into(),
                    owner_extension,
                    placeholder_extension,
                    location,
                    home_extension,
                },
            })
        }
        Err(err) => file
            .unreadable
            .push(row_type_error(row, RowKind::Device, err)),
    }
}

/// Reads one User row.
fn read_user(file: &mut ImportFile, row: usize, mut value: Value) {
    if let Value::Object(map) = &mut value
        && let Some(extension) = map.remove("extension")
    {
        map.insert("extension".into(), number_as_text(extension));
    }
    match serde_path_to_error::deserialize::<_, ImportUserInput>(value) {
        Ok(input) => file.users.push(Numbered {
            row,
            value: UserRow {
                email: input.email,
                display_name: input.display_name,
                password: input.password,
                roles: input.roles,
                extension: input.extension,
            },
        }),
        Err(err) => file
            .unreadable
            .push(row_type_error(row, RowKind::User, err)),
    }
}

/// Reads one Location row: the import-only list of Extension numbers is taken out, the rest is
/// a create body.
fn read_location(file: &mut ImportFile, row: usize, mut value: Value) {
    let mut allowed_extensions = None;
    if let Value::Object(map) = &mut value {
        match map.remove("allowed_extensions") {
            None => {}
            Some(Value::Array(items)) => {
                let numbers: Result<Vec<String>, Value> = items
                    .into_iter()
                    .map(|v| match number_as_text(v) {
                        Value::String(s) => Ok(s),
                        other => Err(other),
                    })
                    .collect();
                match numbers {
                    Ok(numbers) => allowed_extensions = Some(numbers),
                    Err(other) => {
                        file.unreadable.push(RowError::new(
                            row,
                            RowKind::Location,
                            FieldError::new(
                                "allowed_extensions",
                                "invalid_type",
                                format!("expected Extension numbers, found {other}"),
                            ),
                        ));
                        return;
                    }
                }
            }
            Some(other) => {
                file.unreadable.push(RowError::new(
                    row,
                    RowKind::Location,
                    FieldError::new(
                        "allowed_extensions",
                        "invalid_type",
                        format!("expected a list of Extension numbers, found {other}"),
                    ),
                ));
                return;
            }
        }
    }
    match serde_path_to_error::deserialize::<_, LocationInput>(value) {
        Ok(input) => file.locations.push(Numbered {
            row,
            value: LocationRow {
                patch: input.into(),
                allowed_extensions,
            },
        }),
        Err(err) => file
            .unreadable
            .push(row_type_error(row, RowKind::Location, err)),
    }
}

/// Reads one group row: the import-only placeholder number is taken out, the rest is a create
/// body.
fn read_group(file: &mut ImportFile, row: usize, mut value: Value) {
    let mut placeholder_extension = None;
    if let Value::Object(map) = &mut value {
        match map.remove("placeholder_extension").map(number_as_text) {
            None | Some(Value::Null) => {}
            Some(Value::String(number)) => placeholder_extension = Some(number),
            Some(other) => {
                file.unreadable.push(RowError::new(
                    row,
                    RowKind::Group,
                    FieldError::new(
                        "placeholder_extension",
                        "invalid_type",
                        format!("expected an Extension number, found {other}"),
                    ),
                ));
                return;
            }
        }
    }
    match serde_path_to_error::deserialize::<_, ExtensionGroupInput>(value) {
        Ok(input) => file.groups.push(Numbered {
            row,
            value: GroupRow {
                patch: GroupPatch::from(input),
                placeholder_extension,
            },
        }),
        Err(err) => file
            .unreadable
            .push(row_type_error(row, RowKind::Group, err)),
    }
}

/// A row that does not fit its create body: an unknown field, a wrong type.
fn row_type_error(
    row: usize,
    kind: RowKind,
    err: serde_path_to_error::Error<serde_json::Error>,
) -> RowError {
    let path = err.path().to_string();
    RowError::new(
        row,
        kind,
        serde_field_error(&path, &err.into_inner().to_string()),
    )
}

/// serde's message as a field error, like the single-resource endpoints report it.
pub(crate) fn serde_field_error(path: &str, message: &str) -> FieldError {
    let message = message.split(" at line ").next().unwrap_or(message);
    let parent = if path == "." { "" } else { path };
    let quoted = message.split('`').nth(1).unwrap_or_default();
    if message.starts_with("unknown field") {
        // serde_path_to_error's path already ends with the unknown field.
        let field = if parent.is_empty() { quoted } else { parent };
        FieldError::new(field, "unknown_field", message)
    } else if message.starts_with("missing field") {
        let field = if parent.is_empty() {
            quoted.to_owned()
        } else {
            format!("{parent}.{quoted}")
        };
        FieldError::new(field, "required", message)
    } else {
        let field = if parent.is_empty() { "row" } else { parent };
        FieldError::new(field, "invalid_type", message)
    }
}

/// How a CSV cell becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// As is.
    Text,
    /// `true`/`false`, `yes`/`no`, `1`/`0`, `on`/`off`.
    Bool,
    /// A whole number.
    Int,
    /// Values separated by `,`, `;`, `|` or spaces.
    List,
    /// Names separated by `,`, `;` or `|` (a name may hold spaces: `Night shift`).
    Names,
}

/// The CSV columns of Extension rows: the create body's fields, nested ones with dots.
const EXTENSION_COLUMNS: &[(&str, Cell)] = &[
    ("number", Cell::Text),
    ("display_name", Cell::Text),
    ("internal_caller_id_name", Cell::Text),
    ("internal_caller_id_number", Cell::Text),
    ("outbound_caller_id_name", Cell::Text),
    ("outbound_caller_id_number", Cell::Text),
    ("emergency_caller_id_name", Cell::Text),
    ("emergency_caller_id_number", Cell::Text),
    ("voicemail_enabled", Cell::Bool),
    ("pin", Cell::Text),
    ("ring_timeout_secs", Cell::Int),
    ("dnd", Cell::Bool),
    ("forwarding.always.enabled", Cell::Bool),
    ("forwarding.always.destination", Cell::Text),
    ("forwarding.busy.enabled", Cell::Bool),
    ("forwarding.busy.destination", Cell::Text),
    ("forwarding.no_answer.enabled", Cell::Bool),
    ("forwarding.no_answer.destination", Cell::Text),
    ("forwarding.not_registered.enabled", Cell::Bool),
    ("forwarding.not_registered.destination", Cell::Text),
    ("recording.inbound", Cell::Text),
    ("recording.outbound", Cell::Text),
    ("context", Cell::Text),
    ("toll_allow", Cell::List),
    ("account_code", Cell::Text),
    ("call_group", Cell::Text),
    ("hotdesk_allowed", Cell::Bool),
    ("placeholder", Cell::Bool),
    ("placeholder_rings", Cell::Bool),
    ("internal_allow", Cell::List),
    ("group_id", Cell::Text),
    ("group", Cell::Text),
    ("sip_registration.enabled", Cell::Bool),
    ("sip_registration.max_registrations", Cell::Int),
    ("user_id", Cell::Text),
    ("enabled", Cell::Bool),
];

/// The CSV columns of Device rows: the create body's fields and the import-only references.
const DEVICE_COLUMNS: &[(&str, Cell)] = &[
    ("label", Cell::Text),
    ("mac_address", Cell::Text),
    ("vendor", Cell::Text),
    ("model", Cell::Text),
    ("mode", Cell::Text),
    ("owner_extension", Cell::Text),
    ("owner_extension_id", Cell::Text),
    ("location", Cell::Text),
    ("location_id", Cell::Text),
    ("location_position", Cell::Int),
    ("location_ring_timeout_secs", Cell::Int),
    ("emergency_caller_id_name", Cell::Text),
    ("emergency_caller_id_number", Cell::Text),
    ("logged_out_mode", Cell::Text),
    ("placeholder_extension", Cell::Text),
    ("placeholder_extension_id", Cell::Text),
    ("auto_logout", Cell::Text),
    ("auto_logout_hours", Cell::Int),
    ("auto_logout_at", Cell::Text),
    ("home_extension_id", Cell::Text),
    ("home_extension", Cell::Text),
    ("template_id", Cell::Text),
    ("enabled", Cell::Bool),
];

/// The CSV columns of User rows.
const USER_COLUMNS: &[(&str, Cell)] = &[
    ("email", Cell::Text),
    ("display_name", Cell::Text),
    ("password", Cell::Text),
    ("roles", Cell::Names),
    ("extension", Cell::Text),
];

/// The CSV columns of Location rows: the create body's fields and the import-only list of
/// Extension numbers.
const LOCATION_COLUMNS: &[(&str, Cell)] = &[
    ("name", Cell::Text),
    ("description", Cell::Text),
    ("emergency_caller_id_name", Cell::Text),
    ("emergency_caller_id_number", Cell::Text),
    ("emergency_address", Cell::Text),
    ("ring_strategy", Cell::Text),
    ("sign_in_policy", Cell::Text),
    ("allowed_extensions", Cell::List),
    ("allowed_extension_ids", Cell::List),
    ("allowed_roles", Cell::Names),
    ("auto_sign_out", Cell::Text),
    ("auto_sign_out_hours", Cell::Int),
    ("auto_sign_out_at", Cell::Text),
    ("short_code", Cell::Text),
];

/// The CSV columns of group rows: the create body's fields and the import-only placeholder
/// number.
const GROUP_COLUMNS: &[(&str, Cell)] = &[
    ("name", Cell::Text),
    ("description", Cell::Text),
    ("logged_out_mode", Cell::Text),
    ("placeholder_extension", Cell::Text),
    ("placeholder_extension_id", Cell::Text),
];

fn columns_of(kind: RowKind) -> &'static [(&'static str, Cell)] {
    match kind {
        RowKind::Extension => EXTENSION_COLUMNS,
        RowKind::Device => DEVICE_COLUMNS,
        RowKind::User => USER_COLUMNS,
        RowKind::Location => LOCATION_COLUMNS,
        RowKind::Group => GROUP_COLUMNS,
    }
}

/// Every CSV column: `kind`, then the columns of each kind (a few, like `enabled` or
/// `display_name`, belong to several), each once.
pub fn csv_columns() -> Vec<&'static str> {
    let mut columns = vec!["kind"];
    for kind in RowKind::ALL {
        for (name, _) in columns_of(kind) {
            if !columns.contains(name) {
                columns.push(name);
            }
        }
    }
    columns
}

/// A CSV file read for an import: the lower-cased header, checked against the columns the
/// import knows, and every non-blank record with the line an editor shows for it.
pub(crate) struct CsvTable {
    pub headers: Vec<String>,
    pub records: Vec<(usize, csv::StringRecord)>,
}

/// Reads an import's CSV: `,` or `;` separated (spreadsheets in many locales save with `;`:
/// taken when the header has no comma), a header line naming only `columns`, each once.
/// `columns_of` says whose columns they are in the refusal (`"an import column"`).
pub(crate) fn read_csv(
    bytes: &[u8],
    columns: &[&str],
    columns_of: &str,
) -> Result<CsvTable, FileError> {
    let header_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if !header_line.contains(&b',') && header_line.contains(&b';') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let malformed = |e: csv::Error| {
        // Where, not the parser's words (`invalid utf-8`, `found record with 3 fields`).
        let at = e
            .position()
            .map(|p| format!(" (line {})", p.line()))
            .unwrap_or_default();
        let what = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "it is not UTF-8",
            _ => "it cannot be read",
        };
        FileError::malformed(
            "malformed_csv",
            format!("the file is not valid CSV{at}: {what}"),
        )
    };
    let headers: Vec<String> = reader
        .headers()
        .map_err(malformed)?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for h in &headers {
        if !columns.contains(&h.as_str()) {
            return Err(FileError::shape(
                h,
                "unknown_column",
                format!("{h:?} is not {columns_of}"),
            ));
        }
        if !seen.insert(h.as_str()) {
            return Err(FileError::shape(
                h,
                "duplicate_column",
                format!("the column {h:?} appears twice"),
            ));
        }
    }
    let mut records = Vec::new();
    // The csv crate does not count blank lines; count newlines up to each record instead, so
    // a row number is the line a spreadsheet or an editor shows.
    let (mut line, mut counted_to) = (1usize, 0usize);
    for record in reader.records() {
        let record = record.map_err(malformed)?;
        let mut start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(counted_to)
            .min(bytes.len());
        // A record's position is where reading began, before the blank lines it skipped.
        while bytes.get(start).is_some_and(|b| *b == b'\n' || *b == b'\r') {
            start += 1;
        }
        if let Some(skipped) = bytes.get(counted_to..start) {
            line += skipped.iter().filter(|b| **b == b'\n').count();
        }
        counted_to = start;
        if !record.iter().all(str::is_empty) {
            records.push((line, record));
        }
    }
    Ok(CsvTable { headers, records })
}

fn parse_csv(bytes: &[u8]) -> Result<ParsedFile, FileError> {
    let CsvTable { headers, records } = read_csv(
        bytes,
        &csv_columns(),
        "an import column (see the documentation of POST …/import)",
    )?;
    let Some(kind_column) = headers.iter().position(|h| h == "kind") else {
        return Err(FileError::shape(
            "kind",
            "required",
            "a `kind` column (user, location, group, extension or device) is required",
        ));
    };

    let mut file = ImportFile::default();
    for (row, record) in records {
        let cell = record.get(kind_column).unwrap_or_default();
        let Some(kind) = RowKind::parse(cell) else {
            let message = if cell.is_empty() {
                "every row needs a kind: user, location, group, extension or device".to_owned()
            } else {
                format!("{cell:?} is not a kind; use user, location, group, extension or device")
            };
            file.unreadable.push(RowError::about(
                row,
                None,
                FieldError::new("kind", "invalid_choice", message),
            ));
            continue;
        };
        match csv_row_object(kind, &headers, &record) {
            Ok(object) => {
                let value = Value::Object(object);
                match kind {
                    RowKind::Extension => read_extension(&mut file, row, value),
                    RowKind::Device => read_device(&mut file, row, value),
                    RowKind::User => read_user(&mut file, row, value),
                    RowKind::Location => read_location(&mut file, row, value),
                    RowKind::Group => read_group(&mut file, row, value),
                }
            }
            Err(errors) => file
                .unreadable
                .extend(errors.into_iter().map(|e| RowError::new(row, kind, e))),
        }
    }
    Ok(ParsedFile {
        file,
        dry_run: false,
        on_existing: None,
    })
}

/// Turns a CSV row into the JSON object of its body: empty cells are left out (not given: the
/// default applies to a new record, a matched one keeps its value), dotted columns become
/// nested objects.
fn csv_row_object(
    kind: RowKind,
    headers: &[String],
    record: &csv::StringRecord,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let columns = columns_of(kind);
    let mut object = Map::new();
    let mut errors = Vec::new();
    for (header, cell) in headers.iter().zip(record.iter()) {
        if header == "kind" || cell.is_empty() {
            continue;
        }
        let Some((_, cell_type)) = columns.iter().find(|(name, _)| name == header) else {
            errors.push(FieldError::new(
                header.as_str(),
                "unknown_field",
                format!(
                    "{header} is not a column of {} rows; leave it empty",
                    kind.as_str()
                ),
            ));
            continue;
        };
        let value = match cell_value(*cell_type, cell) {
            Ok(value) => value,
            Err(message) => {
                errors.push(FieldError::new(header.as_str(), "invalid_type", message));
                continue;
            }
        };
        insert_path(&mut object, header, value);
    }
    if errors.is_empty() {
        Ok(object)
    } else {
        Err(errors)
    }
}

fn cell_value(cell_type: Cell, cell: &str) -> Result<Value, String> {
    let list = |separators: &[char]| {
        Value::Array(
            cell.split(separators)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )
    };
    match cell_type {
        Cell::Text => Ok(Value::String(cell.to_owned())),
        Cell::Bool => match cell.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("{cell:?} is not true or false")),
        },
        Cell::Int => cell
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{cell:?} is not a whole number")),
        Cell::List => Ok(list(&[',', ';', '|', ' '])),
        Cell::Names => Ok(list(&[',', ';', '|'])),
    }
}

/// Puts `value` at a dotted path (`forwarding.busy.destination`) into `object`.
fn insert_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            object.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = object
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}

/// The format a request declares, from its `Content-Type`.
pub(crate) fn format_of(req: &HttpRequest) -> Result<ImportFormat, ApiError> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as application/json or text/csv",
        )
    };
    match req.mime_type() {
        Ok(Some(mime)) => match (mime.type_().as_str(), mime.subtype().as_str()) {
            ("application", "json") => Ok(ImportFormat::Json),
            ("application", _) if mime.suffix().is_some_and(|s| s == "json") => {
                Ok(ImportFormat::Json)
            }
            ("text" | "application", "csv") => Ok(ImportFormat::Csv),
            _ => Err(unsupported()),
        },
        _ => Err(unsupported()),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("an import file may have at most {limit} bytes (http.max_import_bytes)"),
    )
}

/// Refuses a file holding NUL (U+0000), which no text column can store: 422 `nul_character`.
pub(crate) fn refuse_nul(format: ImportFormat, body: &[u8]) -> Result<(), ApiError> {
    match format {
        ImportFormat::Json => refuse_nul_in_json(body),
        ImportFormat::Csv if body.contains(&0) => Err(ApiError::validation(vec![ProblemField {
            field: "file".into(),
            code: "nul_character".into(),
            message: "text may not contain the NUL character (U+0000)".into(),
        }])),
        ImportFormat::Csv => Ok(()),
    }
}

/// Reads the body up to `limit` bytes (the import limit, not the general one).
pub(crate) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    read_body_or(req, payload, limit, too_large).await
}

/// Reads a body of at most `limit` bytes; a larger one (declared or sent) is `too_large`.
pub(crate) async fn read_body_or(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    too_large: fn(usize) -> ApiError,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| payload_error(e.into()))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Import Users, Locations, hot-desk groups, Extensions and Devices from JSON or CSV (the write
/// permission of each kind the file holds: `users.write`, `locations.write`, `extensions.write`
/// for groups and Extensions, `devices.write`; linking a User to an Extension also needs
/// `extensions.write`).
///
/// Every row is checked first, by the same rules as the single creates and changes
/// (`POST`/`PATCH …/users`, `…/locations`, `…/extension-groups`, `…/extensions`, `…/devices`,
/// and `PUT …/users/{id}/roles`), plus duplicates inside the file and collisions with what
/// exists. A row **matches** a stored record by its key: a User by email, a Location or a group
/// by name, an Extension by number, a Device by MAC address. With `on_existing=error` (the
/// default) a match is an `already_exists` error of the row; with `on_existing=update` the
/// record is changed by exactly the fields the row gives (an absent JSON field or an empty CSV
/// cell leaves a field as it is; JSON `null` clears an optional one). Devices name their owner,
/// placeholder and home Extensions by number and their Location by name, Users their Extension
/// by number, Locations their allowed Extensions by number, groups their placeholder Extension
/// by number, Extensions their hot-desk group by name (records of the same file or already
/// stored). Roles are built-in names, custom role names or ids.
///
/// One bad row and nothing is written: 422 with every row's errors. Otherwise everything is
/// written in one transaction (201), every created or changed record audited as its single
/// change would be plus one `import.completed` entry, and FreeSWITCH is told of every SIP user
/// concerned. The report lists per valid row what it does: `created`, `updated` (with the
/// `changed` fields) or `unchanged`, with totals. A dry run (`?dry_run=true`, or
/// `"dry_run": true` in JSON) writes nothing and answers the same report with 200. The body may
/// be up to `http.max_import_bytes` (16 MiB). A record changed by someone else between the
/// checks and the write makes the whole import a 409 `concurrent_change`: run it again.
///
/// **JSON**: `{"users": [...], "locations": [...], "groups": [...], "extensions": [...],
/// "devices": [...], "dry_run": false, "on_existing": "error"}`. A row's `row` in the report is
/// its 1-based position in its list.
///
/// **CSV** (`text/csv`, `,` or `;` separated, UTF-8, header line required): a `kind` column
/// (`user`, `location`, `group`, `extension` or `device`), then any of the bodies' fields as
/// columns, nested ones with dots. Users: `email, display_name, password, roles` (names
/// separated by `;`, `|` or `,`), `extension`. Locations: `name, description,
/// emergency_caller_id_name, emergency_caller_id_number, emergency_address, ring_strategy,
/// sign_in_policy, allowed_extensions` (numbers), `allowed_extension_ids, allowed_roles,
/// auto_sign_out, auto_sign_out_hours, auto_sign_out_at, short_code`. Groups: `name,
/// description, logged_out_mode` (`inherit`, `full` or `placeholder`), `placeholder_extension`
/// (a number), `placeholder_extension_id`. Extensions: `number, display_name,
/// internal_caller_id_name, internal_caller_id_number, outbound_caller_id_name,
/// outbound_caller_id_number, emergency_caller_id_name, emergency_caller_id_number,
/// voicemail_enabled, pin, ring_timeout_secs, dnd,
/// forwarding.{always,busy,no_answer,not_registered}.{enabled,destination}, recording.inbound,
/// recording.outbound, context, toll_allow (classes separated by `;`, `|` or spaces),
/// account_code, call_group, hotdesk_allowed, placeholder, placeholder_rings, internal_allow
/// (numbers and ranges separated by `;`, `|` or spaces), group_id, group (a hot-desk group's
/// name), sip_registration.enabled, sip_registration.max_registrations, user_id, enabled`.
/// Devices: `label, mac_address, vendor, model, mode, owner_extension, owner_extension_id,
/// location, location_id, location_position, location_ring_timeout_secs,
/// emergency_caller_id_name, emergency_caller_id_number, logged_out_mode,
/// placeholder_extension, placeholder_extension_id, auto_logout, auto_logout_hours,
/// auto_logout_at, home_extension_id, home_extension, template_id, enabled`. An empty cell means "not given"; booleans are
/// `true`/`false`, `yes`/`no` or `1`/`0`. A cell in a column of another kind is an error. A
/// row's `row` is its line in the file.
#[utoipa::path(
    tag = "import",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ImportQuery),
    request_body(
        description = "The rows, as JSON or as CSV",
        content(
            (ImportRequest = "application/json", example = json!({
                "on_existing": "update",
                "users": [
                    {"email": "ada@example.com", "display_name": "Ada Lovelace", "roles": ["manager"], "extension": "201"}
                ],
                "locations": [
                    {"name": "Berlin 2F", "ring_strategy": "sequential", "emergency_caller_id_number": "+4930123456"}
                ],
                "groups": [
                    {"name": "Visitors", "logged_out_mode": "placeholder", "placeholder_extension": "299"}
                ],
                "extensions": [
                    {"number": "201", "display_name": "Ada Lovelace", "pin": "2580"},
                    {"number": "299", "display_name": "Lobby", "placeholder": true, "hotdesk_allowed": false},
                    {"number": "230", "display_name": "Guest", "group": "Visitors"},
                    {"number": "202", "display_name": "Reception", "forwarding": {"no_answer": {"enabled": true, "destination": "201"}}}
                ],
                "devices": [
                    {"label": "Ada's desk", "mac_address": "00:15:65:ab:cd:ef", "mode": "fixed", "owner_extension": "201"},
                    {"label": "Hot desk 1", "location": "Berlin 2F"}
                ]
            })),
            (String = "text/csv", example = "kind,email,roles,extension,name,logged_out_mode,placeholder_extension,number,display_name,pin,placeholder,hotdesk_allowed,group,label,mac_address,mode,owner_extension,location\nuser,ada@example.com,manager,201,,,,,Ada Lovelace,,,,,,,,,\nlocation,,,,Berlin 2F,,,,,,,,,,,,,\ngroup,,,,Visitors,placeholder,299,,,,,,,,,,,\nextension,,,,,,,201,Ada Lovelace,2580,,,,,,,,\nextension,,,,,,,299,Lobby,,yes,no,,,,,,\nextension,,,,,,,230,Guest,,,,Visitors,,,,,\ndevice,,,,,,,,,,,,,Ada's desk,00:15:65:ab:cd:ef,fixed,201,Berlin 2F\n")
        )
    ),
    responses(
        (status = 200, description = "Dry run: the report (`valid` says whether an import would succeed, `results` what each row would do); nothing written", body = ImportReportDto),
        (status = 201, description = "Imported: every row written in one transaction", body = ImportReportDto),
        (status = 400, description = "Not JSON, or not CSV (`malformed_json`, `malformed_csv`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The write permission of a kind of row the file holds is missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A record was created or changed by someone else between the checks and the write (`concurrent_change`, `already_exists`); nothing written, run it again", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than `http.max_import_bytes`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither application/json nor text/csv", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid rows (`errors` lists each with `row`, `kind`, `field`), a file of the wrong shape (unknown column), one without rows (`empty`), or `on_existing` given twice differently; nothing written", body = ImportRefusal, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains/{domain_id}/import")]
pub async fn import_rows(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: Query<ImportQuery>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    // Refuse before reading up to 16 MiB for someone who may not import anyway.
    import::can_import(&caller.ctx().actor, domain_id)?;
    let format = format_of(&req)?;
    let limit = state.config.http.max_import_bytes;
    let body = within_body_timeout(&req, read_body(&req, payload, limit)).await?;
    refuse_nul(format, &body)?;
    let parsed = web::block(move || parse_file(format, &body))
        .await
        .map_err(ApiError::internal)??;
    let query = query.into_inner();
    let on_existing = match (parsed.on_existing, query.on_existing) {
        (Some(body), Some(query)) if body != query => {
            return Err(ApiError::validation(vec![ProblemField {
                field: "on_existing".into(),
                code: "conflicting_fields".into(),
                message: format!(
                    "the body says {} and the query {}; give one",
                    body.as_str(),
                    query.as_str()
                ),
            }]));
        }
        (body, query) => body.or(query).unwrap_or_default(),
    };
    let options = ImportOptions {
        dry_run: parsed.dry_run || query.dry_run.unwrap_or(false),
        on_existing: on_existing.into(),
        token_ttl: chrono::Duration::hours(i64::from(state.config.auth.password_token_ttl_hours)),
    };
    let deps = Deps {
        db: &state.db,
        cipher: &state.cipher,
        bus: &state.events,
    };
    let report =
        import::import(deps, caller.ctx(), domain_id, parsed.file, options, &Silent).await?;
    Ok(if report.dry_run {
        // The report is what a dry run asks for, valid or not.
        HttpResponse::Ok().json(ImportReportDto::from(report))
    } else if !report.valid {
        HttpResponse::UnprocessableEntity()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .json(ImportProblem::from(report))
    } else {
        HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(ImportReportDto::from(report))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    fn csv(text: &str) -> ImportFile {
        match parse_file(ImportFormat::Csv, text.as_bytes()) {
            Ok(parsed) => parsed.file,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn csv_rows_become_create_bodies_numbered_by_line() {
        let file = csv(
            "kind,number,display_name,forwarding.busy.enabled,forwarding.busy.destination,toll_allow,label,owner_extension,mode\n\
             extension,201,Ada,yes,+4930123456,local;international,,,\n\
             \n\
             device,,,,,,Desk,201,fixed\n",
        );
        assert_eq!(file.unreadable, vec![]);
        assert_eq!(file.extensions.len(), 1);
        let ext = &file.extensions[0];
        assert_eq!(ext.row, 2);
        assert_eq!(ext.value.patch.number.as_deref(), Some("201"));
        let busy = ext
            .value
            .patch
            .forward_busy
            .as_ref()
            .map(|f| (f.enabled, f.destination.clone()));
        assert_eq!(
            busy,
            Some((Some(true), Some(Some("+4930123456".to_owned()))))
        );
        assert_eq!(
            ext.value.patch.toll_allow,
            Some(vec!["local".to_owned(), "international".to_owned()])
        );
        assert_eq!(file.devices.len(), 1);
        assert_eq!(file.devices[0].row, 4);
        assert_eq!(
            file.devices[0].value.owner_extension.as_deref(),
            Some("201")
        );
        assert_eq!(file.devices[0].value.patch.mode.as_deref(), Some("fixed"));
    }

    #[test]
    fn a_byte_order_mark_and_windows_line_ends_are_accepted() {
        let file = csv(
            "\u{feff}Kind,Number,Display_Name\r\nextension,201,Ada\r\n\r\nextension,202,Bob\r\n",
        );
        assert_eq!(file.unreadable, vec![]);
        let rows: Vec<usize> = file.extensions.iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![2, 4]);
    }

    #[test]
    fn bad_cells_and_kinds_are_errors_of_their_row() {
        let file = csv("kind;number;display_name;ring_timeout_secs;label\n\
             extension;201;Ada;soon;\n\
             extension;202;Bob;;Desk\n\
             phone;203;Cy;;\n");
        let got: Vec<(usize, Option<RowKind>, &str, &str)> = file
            .unreadable
            .iter()
            .map(|e| (e.row, e.kind, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    2,
                    Some(RowKind::Extension),
                    "ring_timeout_secs",
                    "invalid_type"
                ),
                (3, Some(RowKind::Extension), "label", "unknown_field"),
                (4, None, "kind", "invalid_choice"),
            ]
        );
    }

    #[test]
    fn a_csv_without_kind_or_with_an_unknown_column_is_refused_whole() {
        let err = parse_file(ImportFormat::Csv, b"number,display_name\n201,Ada\n").err();
        assert_eq!(
            err.and_then(|e| e.field).map(|f| f.code),
            Some("required".into())
        );
        let err = parse_file(ImportFormat::Csv, b"kind,colour\nextension,red\n").err();
        assert_eq!(
            err.and_then(|e| e.field).map(|f| (f.field, f.code)),
            Some(("colour".into(), "unknown_column".into()))
        );
    }

    #[test]
    fn json_rows_are_read_one_by_one() {
        let body = br#"{"extensions": [{"number": "201", "display_name": "Ada"},
            {"number": 202, "display_name": "Bob"}, {"numbr": "203"}],
            "devices": [{"label": "Desk", "owner_extension": 201, "location": "HQ"}],
            "dry_run": true}"#;
        let parsed = parse_file(ImportFormat::Json, body).map_err(|e| e.to_string());
        let Ok(parsed) = parsed else {
            panic!("{parsed:?}");
        };
        assert!(parsed.dry_run);
        assert_eq!(parsed.file.extensions.len(), 1);
        let got: Vec<(usize, &str, &str)> = parsed
            .file
            .unreadable
            .iter()
            .map(|e| (e.row, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(2, "number", "invalid_type"), (3, "numbr", "unknown_field")]
        );
        let device = &parsed.file.devices[0].value;
        assert_eq!(device.owner_extension.as_deref(), Some("201"));
        assert_eq!(device.location.as_deref(), Some("HQ"));
        assert_eq!(
            parse_file(ImportFormat::Json, b"{\"extension\": []}")
                .err()
                .map(|e| e.code),
            Some("validation_failed")
        );
        assert_eq!(
            parse_file(ImportFormat::Json, b"{\"extensions\": [")
                .err()
                .map(|e| e.code),
            Some("malformed_json")
        );
    }

    /// Every property path of a schema (`forwarding.busy.destination`), following the nested
    /// input types by field name.
    fn leaf_paths(schema: RefOr<Schema>, prefix: &str, out: &mut Vec<String>) {
        use crate::routes::extensions::{
            ForwardInput, ForwardingInput, RecordingInput, SipRegistrationInput,
        };
        let nested = |name: &str| match name {
            "forwarding" => Some(ForwardingInput::schema()),
            "recording" => Some(RecordingInput::schema()),
            "sip_registration" => Some(SipRegistrationInput::schema()),
            "always" | "busy" | "no_answer" | "not_registered" => Some(ForwardInput::schema()),
            _ => None,
        };
        let RefOr::T(Schema::Object(object)) = schema else {
            out.push(prefix.to_owned());
            return;
        };
        if object.properties.is_empty() {
            out.push(prefix.to_owned());
        }
        for (name, property) in object.properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match nested(&name) {
                Some(inner) => leaf_paths(inner, &path, out),
                None => leaf_paths(property, &path, out),
            }
        }
    }

    /// The CSV columns must follow the bodies when those grow a field.
    #[test]
    fn the_csv_columns_cover_every_field_of_the_bodies() {
        for (schema, columns, at_least) in [
            (ExtensionInput::schema(), EXTENSION_COLUMNS, 15),
            (DeviceInput::schema(), DEVICE_COLUMNS, 15),
            (LocationInput::schema(), LOCATION_COLUMNS, 10),
            (ImportUserInput::schema(), USER_COLUMNS, 4),
            (ExtensionGroupInput::schema(), GROUP_COLUMNS, 3),
        ] {
            let mut fields = Vec::new();
            leaf_paths(schema, "", &mut fields);
            assert!(fields.len() > at_least, "{fields:?}");
            for field in &fields {
                assert!(
                    columns.iter().any(|(c, _)| c == field),
                    "no CSV column for {field}"
                );
            }
        }
        let all = csv_columns();
        for kind in RowKind::ALL {
            for (column, _) in columns_of(kind) {
                assert_eq!(
                    all.iter().filter(|c| *c == column).count(),
                    1,
                    "{column} is not a CSV column exactly once"
                );
            }
        }
    }

    #[test]
    fn user_and_location_rows_are_read_from_csv_like_json() {
        let file = csv(
            "kind;email;display_name;password;roles;extension;name;ring_strategy;allowed_extensions;allowed_roles;short_code\n\
             user;Ada@Example.com;Ada;;manager| Night shift ;201;;;;;\n\
             location;;;;;;Berlin 2F;sequential;201 202;receptionist,Night shift;412\n\
             location;;Desk;;;;HQ;;;;\n",
        );
        let got: Vec<(usize, Option<RowKind>, &str, &str)> = file
            .unreadable
            .iter()
            .map(|e| (e.row, e.kind, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(4, Some(RowKind::Location), "display_name", "unknown_field")]
        );
        let user = &file.users[0];
        assert_eq!(user.row, 2);
        assert_eq!(user.value.email.as_deref(), Some("Ada@Example.com"));
        assert!(user.value.password.is_none());
        assert_eq!(
            user.value.roles,
            Some(vec!["manager".to_owned(), "Night shift".to_owned()])
        );
        assert_eq!(user.value.extension, Some(Some("201".to_owned())));
        let location = &file.locations[0].value;
        assert_eq!(location.patch.name.as_deref(), Some("Berlin 2F"));
        assert_eq!(
            location.allowed_extensions,
            Some(vec!["201".to_owned(), "202".to_owned()])
        );
        assert_eq!(
            location.patch.allowed_roles,
            Some(vec!["receptionist".to_owned(), "Night shift".to_owned()])
        );
        assert_eq!(location.patch.short_code, Some(Some("412".to_owned())));

        let body = br#"{"on_existing": "update", "users": [{"email": "a@b.example", "extension": 201},
            {"email": "c@b.example", "extension": null, "colour": "red"}],
            "locations": [{"name": "HQ", "allowed_extensions": [201, "202"]}, {"name": "X", "allowed_extensions": "201"}]}"#;
        let parsed = parse_file(ImportFormat::Json, body).map_err(|e| e.to_string());
        let Ok(parsed) = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!(parsed.on_existing, Some(ImportOnExisting::Update));
        assert_eq!(
            parsed.file.users[0].value.extension,
            Some(Some("201".to_owned()))
        );
        assert_eq!(
            parsed.file.locations[0].value.allowed_extensions,
            Some(vec!["201".to_owned(), "202".to_owned()])
        );
        let got: Vec<(usize, Option<RowKind>, &str, &str)> = parsed
            .file
            .unreadable
            .iter()
            .map(|e| (e.row, e.kind, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, Some(RowKind::User), "colour", "unknown_field"),
                (
                    2,
                    Some(RowKind::Location),
                    "allowed_extensions",
                    "invalid_type"
                )
            ]
        );
    }

    #[test]
    fn hot_desk_settings_are_columns_and_references_by_name() {
        let file = csv(
            "kind,number,display_name,group,internal_allow,label,home_extension\n\
             extension,201,Ada,Sales floor,200-299 310,,\n\
             device,,,,,Desk,201\n",
        );
        assert_eq!(file.unreadable, vec![]);
        let ext = &file.extensions[0].value;
        assert_eq!(ext.group.as_deref(), Some("Sales floor"));
        assert_eq!(
            ext.patch.internal_allow,
            Some(Some(vec!["200-299".to_owned(), "310".to_owned()]))
        );
        assert_eq!(file.devices[0].value.home_extension.as_deref(), Some("201"));
    }

    #[test]
    fn group_rows_are_read_from_csv_like_json_with_the_placeholder_by_number() {
        let file = csv(
            "kind,name,description,logged_out_mode,placeholder_extension,number,group,label\n\
             group,Visitors,Guests,placeholder,299,,,\n\
             extension,,,,,230,Visitors,\n\
             group,Staff,,full,,,,Desk\n",
        );
        let got: Vec<(usize, Option<RowKind>, &str, &str)> = file
            .unreadable
            .iter()
            .map(|e| (e.row, e.kind, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(4, Some(RowKind::Group), "label", "unknown_field")]
        );
        assert_eq!(file.groups.len(), 1);
        let group = &file.groups[0];
        assert_eq!(group.row, 2);
        assert_eq!(group.value.patch.name.as_deref(), Some("Visitors"));
        assert_eq!(group.value.patch.description.as_deref(), Some("Guests"));
        assert_eq!(
            group.value.patch.logged_out_mode.as_deref(),
            Some("placeholder")
        );
        assert_eq!(group.value.placeholder_extension.as_deref(), Some("299"));
        assert_eq!(group.value.patch.placeholder_extension_id, None);
        assert_eq!(file.extensions[0].value.group.as_deref(), Some("Visitors"));

        let body = br#"{"groups": [{"name": "Visitors", "placeholder_extension": 299},
            {"name": "Staff", "placeholder_extension_id": null},
            {"name": "X", "placeholder_extension": ["299"]}, {"name": "Y", "colour": "red"}]}"#;
        let parsed = parse_file(ImportFormat::Json, body).map_err(|e| e.to_string());
        let Ok(parsed) = parsed else {
            panic!("{parsed:?}");
        };
        let groups = &parsed.file.groups;
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].value.placeholder_extension.as_deref(),
            Some("299")
        );
        assert_eq!(groups[1].value.patch.placeholder_extension_id, Some(None));
        let got: Vec<(usize, Option<RowKind>, &str, &str)> = parsed
            .file
            .unreadable
            .iter()
            .map(|e| (e.row, e.kind, e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    3,
                    Some(RowKind::Group),
                    "placeholder_extension",
                    "invalid_type"
                ),
                (4, Some(RowKind::Group), "colour", "unknown_field"),
            ]
        );
    }

    #[test]
    fn a_user_row_unlinks_with_null_and_keeps_with_absence() {
        let body = br#"{"users": [{"email": "a@b.example", "extension": null}, {"email": "c@b.example"}]}"#;
        let Ok(parsed) = parse_file(ImportFormat::Json, body) else {
            panic!("not read");
        };
        assert_eq!(parsed.file.users[0].value.extension, Some(None));
        assert_eq!(parsed.file.users[1].value.extension, None);
    }
}
