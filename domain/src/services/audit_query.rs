//! Reading the audit log: one scope at a time (a Domain, or the platform level), filtered,
//! newest first.
//!
//! Filters arrive as the text the client sent and are parsed here, so every malformed one is a
//! validation error naming its query parameter.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Select};
use uuid::Uuid;

use super::{Context, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::identity::authz::authorize_platform;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page_desc};
use crate::store::{audit_log, search};

/// Whose log is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// One Domain's entries (`audit.read` in that Domain).
    Domain(Uuid),
    /// Platform-level entries, which belong to no Domain (platform `audit.read`).
    Platform,
}

/// The filters as the client sent them; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The acting user's or API key's id.
    pub actor_id: Option<String>,
    /// The actor's label, exactly (an email, `api_key:<name>`, `system`).
    pub actor: Option<String>,
    /// `user`, `api_key` or `system`.
    pub actor_kind: Option<String>,
    /// An action (`user.create`), or a prefix ending in `*` (`user.*`).
    pub action: Option<String>,
    /// The target's kind (`user`, `api_key` …).
    pub target_kind: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// Entries at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Entries before this RFC 3339 time.
    pub to: Option<String>,
    /// Platform scope only: a Domain's entries instead of the platform-level ones.
    pub domain_id: Option<String>,
}

/// Which actions match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionPattern {
    /// Exactly this action.
    Exact(String),
    /// Every action starting with this text (`user.` for `user.*`); empty matches everything.
    Prefix(String),
}

impl ActionPattern {
    /// Parses `user.create` or `user.*`: lower-case letters, digits, `_` and `.`, with at most
    /// one `*`, at the end.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim();
        let (stem, prefix) = match value.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (value, false),
        };
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.';
        if (!prefix && stem.is_empty()) || !stem.chars().all(valid_char) {
            return Err(FieldError::new(
                "action",
                "invalid_format",
                "an action is lower-case letters, digits, `_` and `.`, optionally ending in `*` \
                 to match a prefix (e.g. `user.*`)",
            ));
        }
        Ok(if prefix {
            Self::Prefix(stem.to_owned())
        } else {
            Self::Exact(stem.to_owned())
        })
    }

    /// True when `action` matches.
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Self::Exact(a) => action == a,
            Self::Prefix(p) => action.starts_with(p.as_str()),
        }
    }
}

/// Parses an RFC 3339 time. A `+` in a query string arrives as a space (form encoding), so a
/// space before the offset is read back as `+`: `…T10:00:00 01:00` means `…T10:00:00+01:00`.
pub fn parse_time(field: &str, input: &str) -> Result<DateTime<Utc>, FieldError> {
    let value = input.trim();
    let parsed = DateTime::parse_from_rfc3339(value).or_else(|e| match value.rfind(' ') {
        Some(i) if i > 10 => {
            DateTime::parse_from_rfc3339(&format!("{}+{}", &value[..i], &value[i + 1..]))
        }
        _ => Err(e),
    });
    parsed.map(|t| t.with_timezone(&Utc)).map_err(|_| {
        FieldError::new(
            field,
            "invalid_format",
            format!(
                "{field} must be an RFC 3339 time such as 2026-01-31T09:30:00Z (encode `+` as %2B)"
            ),
        )
    })
}

fn parse_uuid(field: &str, input: &str) -> Result<Uuid, FieldError> {
    Uuid::try_parse(input.trim())
        .map_err(|_| FieldError::new(field, "invalid_format", format!("{field} must be a UUID")))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The filters, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor's id.
    pub actor_id: Option<Uuid>,
    /// The actor's label, exactly.
    pub actor: Option<String>,
    /// The actor's kind.
    pub actor_kind: Option<String>,
    /// The actions.
    pub action: Option<ActionPattern>,
    /// The target's kind.
    pub target_kind: Option<String>,
    /// The target's id.
    pub target_id: Option<String>,
    /// Lower bound of `at`, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Upper bound of `at`, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// The Domain whose entries the platform scope shows; none for platform-level entries.
    pub domain_id: Option<Uuid>,
}

impl AuditFilter {
    /// Parses every filter, collecting one error per bad parameter. Empty parameters count as
    /// absent. `domain_id` is refused in a Domain's own log, where it would be meaningless.
    pub fn parse(query: &AuditQuery, scope: AuditScope) -> DomainResult<Self> {
        let mut errors = FieldErrors::new();
        let actor_id = non_empty(&query.actor_id)
            .and_then(|v| errors.check("actor_id", parse_uuid("actor_id", v)));
        let actor_kind = non_empty(&query.actor_kind).and_then(|v| {
            if ["user", "api_key", "system"].contains(&v) {
                Some(v.to_owned())
            } else {
                errors.add(
                    "actor_kind",
                    "invalid_value",
                    "actor_kind is one of user, api_key, system",
                );
                None
            }
        });
        let action =
            non_empty(&query.action).and_then(|v| errors.check("action", ActionPattern::parse(v)));
        let from = non_empty(&query.from).and_then(|v| errors.check("from", parse_time("from", v)));
        let to = non_empty(&query.to).and_then(|v| errors.check("to", parse_time("to", v)));
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            errors.add("to", "before_from", "to must not be earlier than from");
        }
        let domain_id = match (non_empty(&query.domain_id), scope) {
            (None, _) => None,
            (Some(v), AuditScope::Platform) => {
                errors.check("domain_id", parse_uuid("domain_id", v))
            }
            (Some(_), AuditScope::Domain(_)) => {
                errors.add(
                    "domain_id",
                    "not_allowed",
                    "domain_id filters the platform log (/api/v1/audit) only",
                );
                None
            }
        };
        errors.into_result()?;
        Ok(Self {
            actor_id,
            actor: non_empty(&query.actor).map(str::to_owned),
            actor_kind,
            action,
            target_kind: non_empty(&query.target_kind).map(str::to_owned),
            target_id: non_empty(&query.target_id).map(str::to_owned),
            from,
            to,
            domain_id,
        })
    }

    /// Narrows `select` to the entries matching every filter.
    fn apply(&self, mut select: Select<audit_log::Entity>) -> Select<audit_log::Entity> {
        use audit_log::Column as C;
        if let Some(id) = self.actor_id {
            select = select.filter(C::ActorId.eq(id));
        }
        if let Some(label) = &self.actor {
            select = select.filter(C::ActorLabel.eq(label.as_str()));
        }
        if let Some(kind) = &self.actor_kind {
            select = select.filter(C::ActorKind.eq(kind.as_str()));
        }
        match &self.action {
            Some(ActionPattern::Exact(action)) => {
                select = select.filter(C::Action.eq(action.as_str()));
            }
            Some(ActionPattern::Prefix(prefix)) if !prefix.is_empty() => {
                select = select.filter(C::Action.like(search::starts_with(prefix)));
            }
            Some(ActionPattern::Prefix(_)) | None => {}
        }
        if let Some(kind) = &self.target_kind {
            select = select.filter(C::TargetKind.eq(kind.as_str()));
        }
        if let Some(id) = &self.target_id {
            select = select.filter(C::TargetId.eq(id.as_str()));
        }
        if let Some(from) = self.from {
            select = select.filter(C::At.gte(from));
        }
        if let Some(to) = self.to {
            select = select.filter(C::At.lt(to));
        }
        select
    }
}

/// Requires `audit.read` in `scope`: in a Domain the caller cannot see (or that does not exist)
/// it is not found, in a visible one forbidden; at platform level forbidden.
pub async fn authorize(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: AuditScope,
) -> DomainResult<()> {
    match scope {
        AuditScope::Domain(domain_id) => {
            scope::enter(db, ctx, domain_id, Permission::AuditRead).await?;
            Ok(())
        }
        AuditScope::Platform => authorize_platform(&ctx.actor, Permission::AuditRead),
    }
}

/// Lists the audit entries of `scope` matching `query`, newest first.
///
/// A Domain's log needs `audit.read` there (another Domain's is 404); the platform log needs
/// platform `audit.read` and shows the entries of no Domain, or of `domain_id` when given.
/// Authorization comes before the filters are parsed, so a caller who may not read a log learns
/// nothing from its errors.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: AuditScope,
    query: &AuditQuery,
    limit: Option<u64>,
    cursor: Option<&str>,
) -> DomainResult<Page<audit_log::Model>> {
    authorize(db, ctx, scope).await?;
    let (filter, page) = match (
        AuditFilter::parse(query, scope),
        PageRequest::parse(limit, cursor),
    ) {
        (Ok(filter), Ok(page)) => (filter, page),
        (Err(DomainError::Validation(mut a)), Err(DomainError::Validation(b))) => {
            a.extend(b);
            return Err(DomainError::Validation(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let domain = match scope {
        AuditScope::Domain(d) => Some(d),
        AuditScope::Platform => filter.domain_id,
    };
    let select = match domain {
        Some(d) => audit_log::Entity::find().filter(audit_log::Column::DomainId.eq(d)),
        None => audit_log::Entity::find().filter(audit_log::Column::DomainId.is_null()),
    };
    fetch_page_desc(
        db,
        filter.apply(select),
        audit_log::Column::Id,
        |e| e.id,
        &page,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(query: AuditQuery, scope: AuditScope) -> Vec<(String, String)> {
        match AuditFilter::parse(&query, scope) {
            Ok(_) => Vec::new(),
            Err(DomainError::Validation(errors)) => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            Err(e) => vec![("?".into(), e.to_string())],
        }
    }

    fn pair(field: &str, code: &str) -> (String, String) {
        (field.to_owned(), code.to_owned())
    }

    #[test]
    fn action_patterns_are_exact_or_a_trailing_star_prefix() {
        assert_eq!(
            ActionPattern::parse("user.create").ok(),
            Some(ActionPattern::Exact("user.create".into()))
        );
        assert_eq!(
            ActionPattern::parse("user.*").ok(),
            Some(ActionPattern::Prefix("user.".into()))
        );
        assert_eq!(
            ActionPattern::parse("*").ok(),
            Some(ActionPattern::Prefix(String::new()))
        );
        for bad in [
            "",
            "us*er",
            "user.**",
            "User.create",
            "user create",
            "user%",
        ] {
            assert!(ActionPattern::parse(bad).is_err(), "{bad:?}");
        }
        let users = ActionPattern::Prefix("user.".into());
        assert!(users.matches("user.create") && !users.matches("users.x"));
    }

    #[test]
    fn times_are_rfc3339_and_a_form_decoded_plus_is_forgiven() {
        let utc = parse_time("from", "2026-01-31T09:30:00Z").ok();
        assert_eq!(
            utc.map(|t| t.to_rfc3339()),
            Some("2026-01-31T09:30:00+00:00".into())
        );
        let offset = parse_time("from", "2026-01-31T10:30:00 01:00").ok();
        assert_eq!(offset, utc);
        for bad in [
            "yesterday",
            "2026-01-31",
            "2026-01-31T09:30:00",
            "2026-13-01T00:00:00Z",
        ] {
            let err = parse_time("from", bad).err().map(|e| (e.field, e.code));
            assert_eq!(err, Some(("from".into(), "invalid_format".into())), "{bad}");
        }
    }

    #[test]
    fn every_bad_filter_is_named() {
        let query = AuditQuery {
            actor_id: Some("nope".into()),
            actor_kind: Some("robot".into()),
            action: Some("a*b".into()),
            from: Some("soon".into()),
            to: Some("later".into()),
            ..AuditQuery::default()
        };
        assert_eq!(
            codes(query, AuditScope::Platform),
            vec![
                pair("actor_id", "invalid_format"),
                pair("actor_kind", "invalid_value"),
                pair("action", "invalid_format"),
                pair("from", "invalid_format"),
                pair("to", "invalid_format"),
            ]
        );
    }

    #[test]
    fn the_range_must_not_run_backwards() {
        let query = AuditQuery {
            from: Some("2026-02-01T00:00:00Z".into()),
            to: Some("2026-01-01T00:00:00Z".into()),
            ..AuditQuery::default()
        };
        assert_eq!(
            codes(query.clone(), AuditScope::Platform),
            vec![pair("to", "before_from")]
        );
        let same = AuditQuery {
            to: query.from.clone(),
            ..query
        };
        assert!(codes(same, AuditScope::Platform).is_empty());
    }

    #[test]
    fn domain_id_only_filters_the_platform_log() {
        let query = AuditQuery {
            domain_id: Some(Uuid::nil().to_string()),
            ..AuditQuery::default()
        };
        assert!(codes(query.clone(), AuditScope::Platform).is_empty());
        assert_eq!(
            codes(query, AuditScope::Domain(Uuid::nil())),
            vec![pair("domain_id", "not_allowed")]
        );
    }

    #[test]
    fn empty_parameters_count_as_absent() {
        let query = AuditQuery {
            actor: Some(" ".into()),
            action: Some(String::new()),
            from: Some(String::new()),
            ..AuditQuery::default()
        };
        assert_eq!(
            AuditFilter::parse(&query, AuditScope::Platform).ok(),
            Some(AuditFilter::default())
        );
    }
}
