//! Per FreeSWITCH node: the switchboard node driving it and that link's state.

use sea_orm::entity::prelude::*;

/// A FreeSWITCH node's link, as its owner last wrote it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "freeswitch_links")]
pub struct Model {
    /// The FreeSWITCH node's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The switchboard node holding its lease (none: nobody drives it).
    pub owner: Option<String>,
    /// Since when.
    pub owner_since: Option<DateTimeUtc>,
    /// `connecting`, `connected` or `disconnected`.
    pub state: String,
    /// Since when in that state.
    pub state_since: DateTimeUtc,
    /// Why the link is down.
    pub last_error: Option<String>,
    /// The last change whose commands reached the node.
    pub pushed_seq: i64,
    /// When the owner last wrote the row.
    pub updated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
