//! One module per resource. [`configure`] registers every route; the server and the OpenAPI
//! generator both call it, so the document cannot drift from the routes.

pub mod health;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route of the application.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::live).service(health::ready);
}
