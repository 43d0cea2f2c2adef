//! The Domains a registered FreeSWITCH node serves (when not all).

use sea_orm::entity::prelude::*;

/// One served Domain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "freeswitch_node_domains")]
pub struct Model {
    /// The node.
    #[sea_orm(primary_key, auto_increment = false)]
    pub node_id: Uuid,
    /// The Domain.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: Uuid,
}

/// No relations declared.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
