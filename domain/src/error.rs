//! The one error type of the business layer, with stable machine-readable codes.
//!
//! The HTTP edge maps each variant to a status once (`api::problem`); nothing here knows about
//! HTTP. Database constraint violations are translated here, in one place, into the same
//! field-level errors that validation produces.

use std::fmt;
use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr};
use serde::Serialize;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the request, e.g. `email` or `forwarding.busy.destination`.
    pub field: String,
    /// A stable code for the rule that failed, e.g. `too_short`, `invalid_format`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A collection of field errors gathered while checking one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one error.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Adds one error built from its parts.
    pub fn add(
        &mut self,
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push(FieldError::new(field, code, message));
    }

    /// Runs a parser and records its error under `field`, returning the parsed value if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(mut error) => {
                error.field = field.to_owned();
                self.push(error);
                None
            }
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, otherwise a validation error carrying every field error.
    pub fn into_result(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.0))
        }
    }

    /// The recorded errors.
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Everything that can go wrong in the business layer.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input broke one or more rules; each field says which.
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    /// The resource does not exist, or belongs to a Domain the caller cannot see.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change conflicts with the current state (duplicate, in use, wrong state).
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `already_exists`, `in_use`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
        /// The field that collides, when one does.
        field: Option<String>,
    },
    /// The caller is authenticated but lacks a permission in this scope.
    #[error("missing permission {permission}")]
    Forbidden {
        /// The permission that was needed.
        permission: String,
    },
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many attempts; try again after the given number of seconds.
    #[error("too many attempts")]
    RateLimited {
        /// Seconds until a new attempt is accepted.
        retry_after_secs: u64,
    },
    /// The target is locked (e.g. PIN lockout) for the given number of seconds.
    #[error("locked")]
    Locked {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// A database error that is not a constraint the caller can fix.
    #[error("database error")]
    Database(#[source] DbErr),
    /// An unexpected internal failure (e.g. a worker thread vanished).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// A validation error for a single field.
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// A conflict with a stable code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            field: None,
        }
    }
}

/// How a database constraint maps to the request field a caller can fix.
///
/// `name` is the PostgreSQL constraint/index name; `sqlite` is SQLite's `table.column` list as it
/// appears in "UNIQUE constraint failed: …".
#[derive(Debug)]
struct ConstraintField {
    name: &'static str,
    code: &'static str,
    sqlite: &'static str,
    field: &'static str,
    message: &'static str,
}

/// Every unique constraint a caller can run into, with the field it belongs to.
const UNIQUE_CONSTRAINTS: &[ConstraintField] = &[
    ConstraintField {
        name: "uq_extensions_domain_number",
        code: "already_exists",
        sqlite: "extensions.domain_id, extensions.number",
        field: "number",
        message: "an Extension with this number already exists in the Domain",
    },
    ConstraintField {
        name: "uq_extensions_domain_user",
        code: "already_exists",
        sqlite: "extensions.domain_id, extensions.user_id",
        field: "user_id",
        message: "this User already has an Extension in the Domain",
    },
    ConstraintField {
        name: "devices_mac_address_key",
        code: "already_exists",
        sqlite: "devices.mac_address",
        field: "mac_address",
        message: "a Device with this MAC address already exists",
    },
    ConstraintField {
        name: "uq_devices_domain_sip_username",
        code: "already_exists",
        sqlite: "devices.domain_id, devices.sip_username",
        field: "sip_username",
        message: "a Device with this SIP user name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_locations_domain_name",
        code: "already_exists",
        sqlite: "locations.domain_id, locations.name",
        field: "name",
        message: "a Location with this name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_locations_domain_short_code",
        code: "already_exists",
        sqlite: "locations.domain_id, locations.short_code",
        field: "short_code",
        message: "another Location of the Domain has this short code",
    },
    ConstraintField {
        name: "uq_extension_groups_domain_name",
        code: "already_exists",
        sqlite: "extension_groups.domain_id, extension_groups.name",
        field: "name",
        message: "a group with this name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_provisioning_templates_domain_name",
        code: "already_exists",
        sqlite: "provisioning_templates.domain_id, provisioning_templates.name",
        field: "name",
        message: "a template with this name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_model_layouts_domain_name",
        code: "already_exists",
        sqlite: "model_layouts.domain_id, model_layouts.name",
        field: "name",
        message: "a layout with this name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_model_layouts_logged_out",
        code: "already_exists",
        sqlite: "model_layouts.domain_id, model_layouts.model",
        field: "logged_out",
        message: "the Domain already has a logged-out layout for this model",
    },
    ConstraintField {
        name: "uq_hotdesk_sessions_active_device",
        code: "already_exists",
        sqlite: "hotdesk_sessions.device_id",
        field: "device_id",
        message: "someone is already logged in to this device",
    },
    ConstraintField {
        name: "uq_hotdesk_sessions_active_extension",
        code: "already_exists",
        sqlite: "hotdesk_sessions.extension_id",
        field: "extension_id",
        message: "this Extension is already logged in to another phone (one phone at a time)",
    },
    ConstraintField {
        name: "location_sign_ins_pkey",
        code: "already_exists",
        sqlite: "location_sign_ins.extension_id",
        field: "extension_id",
        message: "this Extension is already signed in to a Location",
    },
    ConstraintField {
        name: "uq_gateways_owner_name",
        sqlite: "gateways.owner_key, gateways.name",
        code: "already_exists",
        field: "name",
        message: "a gateway with this name already exists",
    },
    ConstraintField {
        name: "uq_outbound_routes_domain_name",
        sqlite: "outbound_routes.domain_id, outbound_routes.name",
        code: "already_exists",
        field: "name",
        message: "an Outbound Route with this name already exists in the Domain",
    },
    ConstraintField {
        name: "users_email_key",
        code: "already_exists",
        sqlite: "users.email",
        field: "email",
        message: "a user with this email already exists",
    },
    ConstraintField {
        name: "domains_sip_domain_key",
        code: "already_exists",
        sqlite: "domains.sip_domain",
        field: "sip_domain",
        message: "a Domain with this SIP domain already exists",
    },
    ConstraintField {
        name: "uq_roles_domain_name",
        code: "already_exists",
        sqlite: "roles.domain_id, roles.name",
        field: "name",
        message: "a role with this name already exists in the Domain",
    },
    ConstraintField {
        name: "uq_role_assignments",
        code: "already_exists",
        sqlite: "role_assignments.user_id, role_assignments.scope_key, role_assignments.role_key",
        field: "role",
        message: "the user already holds this role in this scope",
    },
    ConstraintField {
        name: "uq_numbers_number",
        code: "number_taken",
        sqlite: "numbers.number",
        field: "number",
        message: "this Number is already on the platform",
    },
];

impl From<FieldError> for DomainError {
    fn from(err: FieldError) -> Self {
        Self::Validation(vec![err])
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        classify_db_error(err)
    }
}

/// Turns unique and foreign-key violations into 409/422-style errors; anything else stays a
/// database error (an opaque 500 at the edge, logged with its cause).
pub fn classify_db_error(err: DbErr) -> DomainError {
    let (code, constraint, message) = match &err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.deref() {
                sea_orm::sqlx::Error::Database(db) => (
                    db.code().map(|c| c.into_owned()).unwrap_or_default(),
                    db.constraint().map(str::to_owned),
                    db.message().to_owned(),
                ),
                _ => return DomainError::Database(err),
            }
        }
        _ => return DomainError::Database(err),
    };
    // PostgreSQL SQLSTATE 23505 / SQLite extended codes 2067 (UNIQUE) and 1555 (PRIMARY KEY).
    let unique = code == "23505" || code == "2067" || code == "1555";
    // PostgreSQL 23503 / SQLite 787 (FOREIGN KEY).
    let foreign = code == "23503" || code == "787";
    if unique {
        let known = UNIQUE_CONSTRAINTS
            .iter()
            .find(|c| constraint.as_deref() == Some(c.name) || message.ends_with(c.sqlite));
        return match known {
            Some(c) => DomainError::Conflict {
                code: c.code,
                message: c.message.to_owned(),
                field: Some(c.field.to_owned()),
            },
            None => DomainError::Conflict {
                code: "already_exists",
                message: "a resource with these values already exists".to_owned(),
                field: None,
            },
        };
    }
    if foreign {
        return DomainError::invalid(
            "reference",
            "invalid_reference",
            "the change refers to something that does not exist, or is still referred to",
        );
    }
    DomainError::Database(err)
}

/// Shorthand for results of the business layer.
pub type DomainResult<T> = Result<T, DomainError>;

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
