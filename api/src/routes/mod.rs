//! One module per resource. [`configure`] registers every route; the server and the OpenAPI
//! generator both call it, so the document cannot drift from the routes.

pub mod auth;
pub mod health;
pub mod me;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route of the application.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::live).service(health::ready);
    cfg.service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::set_password);
    cfg.service(me::me)
        .service(me::sessions)
        .service(me::revoke_session)
        .service(me::change_password);
}
