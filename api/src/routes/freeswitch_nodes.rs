//! The FreeSWITCH nodes and the state of the bridge's Event Socket link to each (platform
//! scope): the configured ones (`[[freeswitch.nodes]]`) and those registered here at run time.

use actix_web::http::header;
use actix_web::web::Json;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::identity::authz::authorize_platform;
use switchboard_domain::identity::permissions::Permission;
use switchboard_domain::services::freeswitch_nodes::{self, NodeView};
use switchboard_esl_bridge::link::NodeStatus;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// A FreeSWITCH node and its link.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDto {
    /// The registered node's id; `null` for a node of the configuration file.
    pub id: Option<Uuid>,
    /// `config` (the configuration file) or `api` (registered here).
    #[schema(example = "api")]
    pub source: &'static str,
    /// The Domains it serves; `null`: every Domain.
    pub domains: Option<Vec<Uuid>>,
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
            id: None,
            source: "config",
            domains: None,
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
    let views = freeswitch_nodes::list(&state.db, caller.ctx()).await?;
    let mut items = merged(&state).await?;
    for item in &mut items {
        if let Some(view) = views.iter().find(|v| v.name == item.name) {
            item.id = Some(view.id);
            item.source = "api";
            item.domains.clone_from(&view.domains);
        }
    }
    Ok(web::Json(NodeList { items }))
}

/// A node to register, or a change to one: omitted fields stay. On registration `name`,
/// `host` and `password` are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeInput {
    /// 1–64 letters, digits, `.`, `_` or `-`; unique among every node, the configured ones
    /// included.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "fs2")]
    pub name: Option<String>,
    /// Host of its Event Socket (`event_socket.conf.xml` `listen-ip`).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "10.0.0.12")]
    pub host: Option<String>,
    /// Port of its Event Socket (default 8021).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = u16, example = 8021)]
    pub port: Option<i64>,
    /// Its Event Socket password (write-only; stored encrypted with the secrets key).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, write_only)]
    pub password: Option<String>,
    /// The sofia profile phones register on (default `internal`).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "internal")]
    pub profile: Option<String>,
    /// The Domains whose changes it takes; `null` (the default): every Domain.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub domains: Option<Option<Vec<Uuid>>>,
}

impl From<NodeInput> for freeswitch_nodes::NodeInput {
    fn from(i: NodeInput) -> Self {
        Self {
            name: i.name,
            host: i.host,
            port: i.port,
            password: i.password,
            profile: i.profile,
            domains: i.domains,
        }
    }
}

/// A registered node with its link as the cluster knows it.
async fn registered(state: &AppState, view: NodeView) -> Result<NodeDto, sea_orm::DbErr> {
    let known = merged(state).await?;
    let link = known.into_iter().find(|n| n.name == view.name);
    Ok(match link {
        Some(mut dto) => {
            // What is stored; the link takes a changed address or profile in a moment.
            dto.id = Some(view.id);
            dto.source = "api";
            dto.domains = view.domains;
            dto.host = view.host;
            dto.port = view.port;
            dto.profile = view.profile;
            dto
        }
        // Its link starts in a moment (every node hears the change and reconciles).
        None => NodeDto {
            id: Some(view.id),
            source: "api",
            domains: view.domains,
            name: view.name,
            host: view.host,
            port: view.port,
            profile: view.profile,
            state: "standby".to_owned(),
            owner: None,
            driven_here: false,
            since: view.updated_at,
            last_error: None,
            last_disconnect_at: None,
            last_disconnect_reason: None,
            reconnects: 0,
            queued_commands: 0,
        },
    })
}

/// Register a FreeSWITCH node (platform `nodes.write`): every switchboard node starts a link
/// to it at once, one of them drives it.
#[utoipa::path(
    tag = "nodes",
    security(("bearer" = [])),
    request_body = NodeInput,
    responses(
        (status = 201, description = "Registered; its link starts", body = NodeDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `nodes.write` missing", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name_taken`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, an unknown Domain", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/freeswitch/nodes")]
pub async fn create_node(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<NodeInput>,
) -> ApiResult<HttpResponse> {
    let view = freeswitch_nodes::create(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        body.into_inner().into(),
        &crate::fs_nodes::configured_names(&state.config),
    )
    .await?;
    let id = view.id;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/freeswitch/nodes/{id}")))
        .json(registered(&state, view).await?))
}

/// Read a registered FreeSWITCH node and its link (platform `nodes.read`).
#[utoipa::path(
    tag = "nodes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The registered node's id")),
    responses(
        (status = 200, description = "The node", body = NodeDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `nodes.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such registered node", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/freeswitch/nodes/{id}")]
pub async fn get_node(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<NodeDto>> {
    let view = freeswitch_nodes::get(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(registered(&state, view).await?))
}

/// Change a registered FreeSWITCH node (platform `nodes.write`): its link restarts with the
/// new address, password, profile or Domains on whichever switchboard node drives it.
#[utoipa::path(
    tag = "nodes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The registered node's id")),
    request_body = NodeInput,
    responses(
        (status = 200, description = "Changed", body = NodeDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `nodes.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such registered node", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name_taken`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, an unknown Domain", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/freeswitch/nodes/{id}")]
pub async fn update_node(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<NodeInput>,
) -> ApiResult<web::Json<NodeDto>> {
    let view = freeswitch_nodes::update(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        path.into_inner(),
        body.into_inner().into(),
        &crate::fs_nodes::configured_names(&state.config),
    )
    .await?;
    Ok(web::Json(registered(&state, view).await?))
}

/// Remove a registered FreeSWITCH node (platform `nodes.write`): every switchboard node
/// closes its link to it.
#[utoipa::path(
    tag = "nodes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The registered node's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `nodes.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such registered node", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/freeswitch/nodes/{id}")]
pub async fn delete_node(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    freeswitch_nodes::delete(&state.db, &state.events, caller.ctx(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every configured node: this switchboard node's own view of the links it drives, the
/// drivers' reported state of the others.
pub async fn merged(state: &AppState) -> Result<Vec<NodeDto>, sea_orm::DbErr> {
    let local = state.bridge.nodes();
    let configured = crate::fs_nodes::configured_names(&state.config);
    let mark = |mut dto: NodeDto| {
        if !configured.contains(&dto.name) {
            dto.source = "api";
        }
        dto
    };
    if local.iter().all(|n| n.owner.is_some()) {
        return Ok(local.into_iter().map(NodeDto::from).map(mark).collect());
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
            mark(dto)
        })
        .collect())
}
