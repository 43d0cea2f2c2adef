//! Who drives each FreeSWITCH node, as the drivers write it: the owner, the state of its link,
//! and the last change whose commands reached the node. Every write but the claim is made only
//! while the writer still owns the row, so a node that lost its lease cannot overwrite its
//! successor.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::store::freeswitch_links::{self, Column, Entity};

/// The link rows, by name.
pub async fn list(
    db: &impl ConnectionTrait,
) -> Result<Vec<freeswitch_links::Model>, sea_orm::DbErr> {
    Entity::find().order_by_asc(Column::Name).all(db).await
}

/// Records that `owner` took the lease of `name` and returns the last change that reached it.
pub async fn claim(
    db: &impl ConnectionTrait,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<i64, sea_orm::DbErr> {
    let row = freeswitch_links::ActiveModel {
        name: Set(name.to_owned()),
        owner: Set(Some(owner.to_owned())),
        owner_since: Set(Some(now)),
        state: Set("connecting".to_owned()),
        state_since: Set(now),
        last_error: Set(None),
        pushed_seq: Set(0),
        updated_at: Set(now),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::Name)
                .update_columns([
                    Column::Owner,
                    Column::OwnerSince,
                    Column::State,
                    Column::StateSince,
                    Column::LastError,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(Entity::find_by_id(name.to_owned())
        .one(db)
        .await?
        .map(|r| r.pushed_seq)
        .unwrap_or(0))
}

/// Writes the link's state, if `owner` still owns it.
pub async fn record_state(
    db: &impl ConnectionTrait,
    name: &str,
    owner: &str,
    state: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    Entity::update_many()
        .col_expr(Column::State, Expr::value(state))
        .col_expr(Column::StateSince, Expr::value(now))
        .col_expr(Column::LastError, Expr::value(error.map(str::to_owned)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .filter(Column::Owner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that every change up to `seq` reached the node, if `owner` still owns it.
pub async fn record_pushed(
    db: &impl ConnectionTrait,
    name: &str,
    owner: &str,
    seq: i64,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    Entity::update_many()
        .col_expr(Column::PushedSeq, Expr::value(seq))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .filter(Column::Owner.eq(owner))
        .filter(Column::PushedSeq.lt(seq))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that `owner` gave the lease of `name` up.
pub async fn release(
    db: &impl ConnectionTrait,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    Entity::update_many()
        .col_expr(Column::Owner, Expr::value(None::<String>))
        .col_expr(Column::OwnerSince, Expr::value(None::<DateTime<Utc>>))
        .col_expr(Column::State, Expr::value("disconnected"))
        .col_expr(Column::StateSince, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Name.eq(name))
        .filter(Column::Owner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}
