//! The list convention: `?limit=&cursor=` in, `{"items": [...], "next_cursor": …}` out.

use serde::{Deserialize, Serialize};
use switchboard_domain::pagination::{Page, PageRequest};
use utoipa::{IntoParams, ToSchema};

use crate::problem::ApiError;

/// Page parameters of every list endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Validates into the domain's page request (422 naming `limit` or `cursor`).
    pub fn to_request(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageResponse<T: ToSchema> {
    /// The items, in a stable order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PageResponse<T> {
    /// Converts a domain page.
    pub fn from_page<M>(page: Page<M>, f: impl FnMut(M) -> T) -> Self {
        let page = page.map(f);
        Self {
            items: page.items,
            next_cursor: page.next_cursor,
        }
    }
}
