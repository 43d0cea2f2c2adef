//! Writing the audit log, inside the caller's transaction.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
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

/// Writes an entry with the context's actor, time and request id. Call it with the same
/// transaction as the change so both commit or neither does.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    entry: Entry<'_>,
) -> DomainResult<()> {
    let (kind, id) = match &ctx.actor.principal {
        Principal::User { id, .. } => ("user", Some(*id)),
        Principal::ApiKey { id } => ("api_key", Some(*id)),
        Principal::System => ("system", None),
    };
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(ctx.now),
        domain_id: Set(entry.domain_id),
        actor_kind: Set(kind.to_owned()),
        actor_id: Set(id),
        actor_label: Set(ctx.actor.label.clone()),
        action: Set(entry.action.to_owned()),
        target_kind: Set(entry.target_kind.to_owned()),
        target_id: Set(entry.target_id),
        before: Set(entry.before.map(redact)),
        after: Set(entry.after.map(redact)),
        request_id: Set(ctx.request_id.clone()),
    }
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
