//! FreeSWITCH nodes registered through the API.

use sea_orm::entity::prelude::*;

/// A registered FreeSWITCH node.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "freeswitch_nodes")]
pub struct Model {
    /// Its id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Its name (unique, also among the configured nodes).
    pub name: String,
    /// Host of its Event Socket.
    pub host: String,
    /// Port of its Event Socket.
    pub port: i32,
    /// The Event Socket password, encrypted with the secrets key.
    pub password_encrypted: String,
    /// The sofia profile phones register on.
    pub profile: String,
    /// True: it serves every Domain; false: those in `freeswitch_node_domains`.
    pub all_domains: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// No relations declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
