//! Server-generated settings kept in the database.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use secrecy::SecretString;

use crate::error::{DomainError, DomainResult};
use crate::identity::tokens::random_token;
use crate::store::server_settings;
use crate::telephony::secrets::SecretCipher;

/// The prefix of a value encrypted by [`SecretCipher::encrypt`]; generated plain values
/// (base64url) never contain a dot, so the two cannot be confused.
const ENCRYPTED_PREFIX: &str = "v1.";

/// Returns the stored secret `key`, generating and storing a random 256-bit value first if
/// there is none; safe against concurrent starts (the loser of an insert race reads the
/// winner's). The value is kept encrypted with `cipher`, bound to its row, so reading the
/// database alone does not yield it; a value an earlier version stored in clear is encrypted
/// in place on the first start that reads it.
pub async fn get_or_generate_encrypted_secret<C: ConnectionTrait>(
    db: &C,
    key: &str,
    cipher: &SecretCipher,
) -> DomainResult<SecretString> {
    let context = format!("server_settings:{key}");
    let decrypt = |value: &str| {
        cipher.decrypt(value, &context).map_err(|e| {
            DomainError::Internal(format!("the stored setting {key} cannot be decrypted: {e}"))
        })
    };
    if let Some(row) = server_settings::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
    {
        if row.value.starts_with(ENCRYPTED_PREFIX) {
            return decrypt(&row.value);
        }
        // Stored in clear by an earlier version: encrypt it where it is. Conditional on the
        // old value, so two nodes upgrading at once both end with the same secret.
        let plain = row.value;
        server_settings::Entity::update_many()
            .col_expr(
                server_settings::Column::Value,
                Expr::value(cipher.encrypt(&plain, &context)),
            )
            .col_expr(server_settings::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(server_settings::Column::Key.eq(key))
            .filter(server_settings::Column::Value.eq(plain.as_str()))
            .exec(db)
            .await?;
        return Ok(SecretString::from(plain));
    }
    let value = random_token(32);
    let inserted = server_settings::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(cipher.encrypt(&value, &context)),
        updated_at: Set(Utc::now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(SecretString::from(value)),
        // Another node won the insert race: use its value.
        Err(_) => match server_settings::Entity::find_by_id(key.to_owned())
            .one(db)
            .await?
        {
            Some(row) if row.value.starts_with(ENCRYPTED_PREFIX) => decrypt(&row.value),
            Some(row) => Ok(SecretString::from(row.value)),
            None => Err(DomainError::Internal(format!(
                "could not store setting {key}"
            ))),
        },
    }
}

/// The settings key of the encryption canary.
const CANARY_KEY: &str = "secrets_canary";
const CANARY_TEXT: &str = "switchboard secrets canary";

/// Proves the configured encryption key is the one the stored secrets were encrypted with:
/// the first start stores a canary encrypted with the key; later starts decrypt it. A wrong key
/// is a clear start-up error instead of garbage secrets later.
pub async fn verify_cipher<C: ConnectionTrait>(
    db: &C,
    cipher: &crate::telephony::secrets::SecretCipher,
) -> DomainResult<()> {
    use secrecy::ExposeSecret;
    match server_settings::Entity::find_by_id(CANARY_KEY.to_owned())
        .one(db)
        .await?
    {
        Some(row) => match cipher.decrypt(&row.value, CANARY_KEY) {
            Ok(text) if text.expose_secret() == CANARY_TEXT => Ok(()),
            Ok(_) => Err(crate::DomainError::Internal(
                "the secrets canary does not match".into(),
            )),
            Err(e) => Err(crate::DomainError::Internal(format!(
                "the configured secrets.encryption_key cannot decrypt this database's SIP secrets: {e}"
            ))),
        },
        None => {
            server_settings::ActiveModel {
                key: Set(CANARY_KEY.to_owned()),
                value: Set(cipher.encrypt(CANARY_TEXT, CANARY_KEY)),
                updated_at: Set(chrono::Utc::now()),
            }
            .insert(db)
            .await?;
            Ok(())
        }
    }
}
