//! The FreeSWITCH nodes and the state of the bridge's Event Socket link to each (platform
//! scope).

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_domain::identity::authz::authorize_platform;
use switchboard_domain::identity::permissions::Permission;
use switchboard_esl_bridge::link::NodeStatus;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// A FreeSWITCH node and its link.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDto {
    /// The configured name.
    #[schema(example = "fs1")]
    pub name: String,
    /// Host of its event socket.
    #[schema(example = "127.0.0.1")]
    pub host: String,
    /// Port of its event socket.
    #[schema(example = 8021)]
    pub port: u16,
    /// The sofia profile phones register on.
    #[schema(example = "internal")]
    pub profile: String,
    /// `connecting`, `connected` or `disconnected`, as the switchboard node driving it last
    /// reported; `standby` while no switchboard node drives it.
    #[schema(example = "connected")]
    pub state: String,
    /// The switchboard node driving it (`cluster.node_name`); `null` while none does.
    #[schema(example = "sb1")]
    pub owner: Option<String>,
    /// True when the node answering this request drives it (its queue and reconnects are
    /// this node's; another node's link shows its reported state only).
    pub driven_here: bool,
    /// Since when in that state.
    pub since: DateTime<Utc>,
    /// Why the link is down, while it is not `connected`; `null` once connected.
    pub last_error: Option<String>,
    /// When the link last went down (kept after it came back), if it ever did.
    pub last_disconnect_at: Option<DateTime<Utc>>,
    /// Why the link last went down (kept after it came back), if it ever did.
    pub last_disconnect_reason: Option<String>,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Commands waiting for the link.
    pub queued_commands: usize,
}

impl From<NodeStatus> for NodeDto {
    fn from(s: NodeStatus) -> Self {
        Self {
            name: s.name,
            host: s.host,
            port: s.port,
            profile: s.profile,
            state: s.state.to_owned(),
            driven_here: s.owner.is_some(),
            owner: s.owner,
            since: s.since,
            last_error: s.last_error,
            last_disconnect_at: s.last_disconnect_at,
            last_disconnect_reason: s.last_disconnect_reason,
            reconnects: s.reconnects,
            queued_commands: s.queued,
        }
    }
}

/// The node list.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    /// Every configured node, in configuration order (empty: the bridge is off).
    pub items: Vec<NodeDto>,
}

/// List the FreeSWITCH nodes and their links (platform `nodes.read`).
#[utoipa::path(
    tag = "nodes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every node", body = NodeList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `nodes.read` missing", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/freeswitch/nodes")]
pub async fn list_nodes(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<NodeList>> {
    authorize_platform(&caller.ctx().actor, Permission::NodesRead)?;
    Ok(web::Json(NodeList {
        items: merged(&state).await?,
    }))
}

/// Every configured node: this switchboard node's own view of the links it drives, the
/// drivers' reported state of the others.
pub async fn merged(state: &AppState) -> Result<Vec<NodeDto>, sea_orm::DbErr> {
    let local = state.bridge.nodes();
    if local.iter().all(|n| n.owner.is_some()) {
        return Ok(local.into_iter().map(NodeDto::from).collect());
    }
    let rows = switchboard_domain::cluster::links::list(&state.db).await?;
    Ok(local
        .into_iter()
        .map(|n| {
            if n.owner.is_some() {
                return NodeDto::from(n);
            }
            let row = rows.iter().find(|r| r.name == n.name);
            let mut dto = NodeDto::from(n);
            if let Some(row) = row.filter(|r| r.owner.is_some()) {
                dto.state = row.state.clone();
                dto.since = row.state_since;
                dto.owner = row.owner.clone();
                dto.last_error = row.last_error.clone();
            }
            dto
        })
        .collect())
}
