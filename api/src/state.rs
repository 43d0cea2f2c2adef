//! Shared state handed to every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;

/// What handlers share: the database pool and the configuration.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The key that signs access tokens.
    pub jwt_secret: Arc<secrecy::SecretString>,
}
