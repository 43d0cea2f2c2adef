//! Writing the audit log, inside the caller's transaction.

use sea_orm::{ActiveModelTrait, ConnectionTrait};
use serde_json::Value;
use uuid::Uuid;

use super::Context;
use crate::error::DomainResult;
use crate::identity::authz::Principal;
use crate::store::audit_log;

/// Keys whose values never reach the audit log, at any depth.
const SECRET_KEYS: &[&str] = &[
    "password",
    "password_hash",
    "secret",
    "sip_secret",
    "sip_secret_encrypted",
    "secret_hash",
    "pin",
    "pin_hash",
    "token",
    "token_hash",
    "refresh_token",
    "access_token",
    "api_key",
];

/// Replaces the value of every secret-looking key with `"[redacted]"`.
pub fn redact(mut value: Value) -> Value {
    redact_in_place(&mut value);
    value
}

fn redact_in_place(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_in_place(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// One audit entry to write.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The Domain concerned, if any.
    pub domain_id: Option<Uuid>,
    /// e.g. `user.create`.
    pub action: &'a str,
    /// e.g. `user`.
    pub target_kind: &'a str,
    /// The target's id.
    pub target_id: Option<String>,
    /// State before.
    pub before: Option<Value>,
    /// State after.
    pub after: Option<Value>,
}

/// The stored row of an entry, with the context's actor, time and request id (for writing
/// many entries in one statement, as a bulk import does).
pub fn row(ctx: &Context, entry: Entry<'_>) -> audit_log::Model {
    let (kind, id) = match &ctx.actor.principal {
        Principal::User { id, .. } => ("user", Some(*id)),
        Principal::ApiKey { id } => ("api_key", Some(*id)),
        Principal::System => ("system", None),
    };
    audit_log::Model {
        id: Uuid::now_v7(),
        at: ctx.now,
        domain_id: entry.domain_id,
        actor_kind: kind.to_owned(),
        actor_id: id,
        actor_label: ctx.actor.label.clone(),
        action: entry.action.to_owned(),
        target_kind: entry.target_kind.to_owned(),
        target_id: entry.target_id,
        before: entry.before.map(redact),
        after: entry.after.map(redact),
        request_id: ctx.request_id.clone(),
    }
}

/// Writes an entry with the context's actor, time and request id. Call it with the same
/// transaction as the change so both commit or neither does.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    entry: Entry<'_>,
) -> DomainResult<()> {
    audit_log::ActiveModel::from(row(ctx, entry))
        .insert(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(
            json!({"email": "a@b.c", "password": "x", "nested": [{"pin": "1234", "ok": 1}]}),
        );
        assert_eq!(
            v,
            json!({"email": "a@b.c", "password": "[redacted]", "nested": [{"pin": "[redacted]", "ok": 1}]})
        );
    }
}
