//! Keyset pagination with opaque cursors, shared by every list endpoint.
//!
//! Lists are ordered by id (UUIDv7, so creation order); the cursor encodes the last id seen and
//! the next page starts after it. Unlike offsets, a page never repeats or skips rows when rows
//! are inserted or deleted meanwhile.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::error::{DomainResult, FieldError, FieldErrors};

/// The page size when the caller gives none.
pub const DEFAULT_LIMIT: u64 = 50;
/// The largest page a caller may ask for.
pub const MAX_LIMIT: u64 = 500;

const CURSOR_PREFIX: &str = "v1:";

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items at most.
    pub limit: u64,
    /// Start after this id.
    pub after: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// Validates `limit` (1..=500, default 50) and decodes `cursor`.
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> DomainResult<Self> {
        let mut errors = FieldErrors::new();
        let limit = match limit {
            None => Some(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
            Some(_) => {
                errors.add(
                    "limit",
                    "out_of_range",
                    format!("limit must be between 1 and {MAX_LIMIT}"),
                );
                None
            }
        };
        let after = match cursor {
            None | Some("") => None,
            Some(c) => errors.check("cursor", decode_cursor(c)),
        };
        errors.into_result()?;
        Ok(Self {
            limit: limit.unwrap_or(DEFAULT_LIMIT),
            after,
        })
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in a stable order.
    pub items: Vec<T>,
    /// Where the next page starts, or none on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Converts the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Encodes an id as an opaque cursor.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

fn decode_cursor(cursor: &str) -> Result<Uuid, FieldError> {
    let invalid = || {
        FieldError::new(
            "cursor",
            "invalid_cursor",
            "the cursor is not one this API issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
    Uuid::parse_str(id).map_err(|_| invalid())
}

/// Runs `select` as one page ordered by `id_column`, fetching one extra row to know whether
/// there is a next page.
pub async fn fetch_page<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    id_of: impl Fn(&E::Model) -> Uuid,
    page: &PageRequest,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut query = select.order_by_asc(id_column);
    if let Some(after) = page.after {
        query = query.filter(id_column.gt(after));
    }
    let mut items = query.limit(page.limit + 1).all(db).await?;
    let next_cursor = if items.len() as u64 > page.limit {
        items.truncate(page.limit as usize);
        items.last().map(|last| encode_cursor(id_of(last)))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Like [`fetch_page`], newest first: ordered by `id_column` descending, the cursor's page
/// starting below the last id seen (for logs, where the latest entries matter most).
pub async fn fetch_page_desc<E, C>(
    db: &C,
    select: Select<E>,
    id_column: E::Column,
    id_of: impl Fn(&E::Model) -> Uuid,
    page: &PageRequest,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut query = select.order_by_desc(id_column);
    if let Some(after) = page.after {
        query = query.filter(id_column.lt(after));
    }
    let mut items = query.limit(page.limit + 1).all(db).await?;
    let next_cursor = if items.len() as u64 > page.limit {
        items.truncate(page.limit as usize);
        items.last().map(|last| encode_cursor(id_of(last)))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            PageRequest::parse(None, None).ok(),
            Some(PageRequest::default())
        );
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(501), None).is_err());
        assert_eq!(
            PageRequest::parse(Some(500), None).map(|p| p.limit).ok(),
            Some(500)
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        let cursor = encode_cursor(id);
        assert_eq!(
            PageRequest::parse(None, Some(&cursor))
                .ok()
                .and_then(|p| p.after),
            Some(id)
        );
        for bad in [
            "%%%",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("v1:not-a-uuid"),
        ] {
            assert!(PageRequest::parse(None, Some(bad)).is_err(), "{bad}");
        }
    }
}
