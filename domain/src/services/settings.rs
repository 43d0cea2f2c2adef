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
