//! Numbers (DIDs): E.164 numbers unique platform-wide, in the platform's stock or assigned to a
//! Domain, with an optional destination in three columns (see [`crate::routing::destination`]).

use sea_orm::entity::prelude::*;

use crate::routing::destination::Destination;

/// A Number row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "numbers")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The number in E.164 (`+4930123456`), unique platform-wide.
    pub number: String,
    /// The Domain it is assigned to; `None`: in the platform's stock.
    pub domain_id: Option<Uuid>,
    /// Free text.
    pub description: String,
    /// `extension`, `voicemail`, `external`, `hang_up`; `None`: not pointed anywhere.
    pub destination_type: Option<String>,
    /// The id the destination points at (an Extension).
    pub destination_id: Option<Uuid>,
    /// The destination's value (a number, a cause).
    pub destination_value: Option<String>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// The destination; `None` when it points nowhere or at something this version cannot
    /// read (both end as "unallocated").
    pub fn destination(&self) -> Option<Destination> {
        Destination::from_stored(
            self.destination_type.as_deref()?,
            self.destination_id,
            self.destination_value.as_deref(),
        )
    }

    /// Stores `destination` (or none) in the three columns.
    pub fn set_destination(&mut self, destination: Option<&Destination>) {
        let stored = destination.map(Destination::to_stored);
        self.destination_type = stored.as_ref().map(|s| s.kind.clone());
        self.destination_id = stored.as_ref().and_then(|s| s.id);
        self.destination_value = stored.and_then(|s| s.value);
    }
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
