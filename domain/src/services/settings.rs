//! Server-generated settings kept in the database.

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use crate::error::DomainResult;
use crate::identity::tokens::random_token;
use crate::store::server_settings;

/// Returns the stored value of `key`, generating and storing a random 256-bit value first if
/// there is none. Safe against concurrent starts: the loser of an insert race reads the winner's.
pub async fn get_or_generate_secret<C: ConnectionTrait>(db: &C, key: &str) -> DomainResult<String> {
    if let Some(row) = server_settings::Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
    {
        return Ok(row.value);
    }
    let value = random_token(32);
    let inserted = server_settings::ActiveModel {
        key: Set(key.to_owned()),
        value: Set(value.clone()),
        updated_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(value),
        Err(_) => match server_settings::Entity::find_by_id(key.to_owned())
            .one(db)
            .await?
        {
            Some(row) => Ok(row.value),
            None => Err(crate::DomainError::Internal(format!(
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
