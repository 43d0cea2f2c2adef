//! One module per resource. [`configure`] registers every route; the server and the OpenAPI
//! generator both call it, so the document cannot drift from the routes.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod bindings_views;
pub mod call_flows;
pub mod calling_settings;
pub mod calls;
pub mod devices;
pub mod domains;
pub mod events;
pub mod extension_groups;
pub mod extensions;
pub mod freeswitch;
pub mod freeswitch_nodes;
pub mod gateways;
pub mod health;
pub mod history;
pub mod hotdesk;
pub mod import;
pub mod locations;
pub mod me;
pub mod numbers;
pub mod occupancy;
pub mod outbound_routes;
pub mod presence;
pub mod provision;
pub mod provisioning;
pub mod registrations;
pub mod roles;
pub mod signin;
pub mod users;
pub mod voicemail;

use actix_web::dev::HttpServiceFactory;
use utoipa_actix_web::OpenApiFactory;
use utoipa_actix_web::service_config::ServiceConfig;

/// Where routes are registered: utoipa's `ServiceConfig`, which also collects every route's
/// OpenAPI path (the document, built once at start), or actix's own (the server's workers: a
/// worker that collected the paths too would spend megabytes of memory on a copy it drops).
pub trait Routes {
    /// Registers a route.
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static;
}

impl Routes for ServiceConfig<'_> {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        ServiceConfig::service(self, factory)
    }
}

impl Routes for actix_web::web::ServiceConfig {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        actix_web::web::ServiceConfig::service(self, factory)
    }
}

/// Registers every route of the application (the OpenAPI document is built from this).
pub fn configure(cfg: &mut ServiceConfig) {
    configure_freeswitch(cfg);
    configure_api(cfg);
}

/// FreeSWITCH's hot path (every REGISTER, every call). The server registers it first and
/// outside the API's middleware: actix tries routes in order, each pattern with parameters is
/// a regex match (registered last, this static path spent a third of its CPU matching the
/// API's routes), and request ids, tracing spans and per-route HTTP metrics cost more than
/// the answer itself (the directory counts its answers in `/metrics`).
pub fn configure_freeswitch<C: Routes>(cfg: &mut C) {
    cfg.service(freeswitch::xml_curl)
        .service(freeswitch::cdr)
        .service(provision::fetch);
}

/// The JSON API, the health probes and everything under the API's middleware.
pub fn configure_api<C: Routes>(cfg: &mut C) {
    cfg.service(health::live).service(health::ready);
    cfg.service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::set_password);
    cfg.service(me::me)
        .service(me::sessions)
        .service(me::revoke_session)
        .service(me::change_password);
    cfg.service(history::list_my_calls)
        .service(history::get_my_call)
        .service(history::get_my_recording)
        .service(history::export_calls)
        .service(history::list_calls)
        .service(history::get_call)
        .service(history::get_recording);
    cfg.service(voicemail::list_my_boxes)
        .service(voicemail::put_my_box)
        .service(voicemail::get_box)
        .service(voicemail::put_box)
        .service(voicemail::list_emails)
        .service(voicemail::retry_email)
        .service(voicemail::list_greetings)
        .service(voicemail::get_greeting)
        .service(voicemail::put_greeting)
        .service(voicemail::delete_greeting)
        .service(voicemail::list_my_greetings)
        .service(voicemail::put_my_greeting)
        .service(voicemail::delete_my_greeting);
    cfg.service(voicemail::list_my_messages)
        .service(voicemail::get_my_message)
        .service(voicemail::get_my_audio)
        .service(voicemail::update_my_message)
        .service(voicemail::delete_my_message)
        .service(voicemail::move_my_message)
        .service(voicemail::list_messages)
        .service(voicemail::get_message)
        .service(voicemail::get_audio)
        .service(voicemail::update_message)
        .service(voicemail::delete_message)
        .service(voicemail::move_message);
    cfg.service(domains::create_domain)
        .service(domains::list_domains)
        .service(domains::get_domain)
        .service(domains::update_domain)
        .service(domains::delete_domain);
    cfg.service(users::create_user)
        .service(users::list_users)
        .service(users::get_user)
        .service(users::update_user)
        .service(users::delete_user)
        .service(users::reset_password)
        .service(users::get_user_roles)
        .service(users::put_user_roles)
        .service(users::get_platform_roles)
        .service(users::put_platform_roles);
    cfg.service(roles::permissions)
        .service(roles::list_roles)
        .service(roles::get_role)
        .service(roles::create_role)
        .service(roles::update_role)
        .service(roles::delete_role);
    cfg.service(api_keys::create_domain_key)
        .service(api_keys::list_domain_keys)
        .service(api_keys::get_domain_key)
        .service(api_keys::revoke_domain_key)
        .service(api_keys::create_platform_key)
        .service(api_keys::list_platform_keys)
        .service(api_keys::get_platform_key)
        .service(api_keys::revoke_platform_key);
    cfg.service(extensions::create_extension)
        .service(extensions::list_extensions)
        .service(extensions::get_extension)
        .service(extensions::update_extension)
        .service(extensions::delete_extension)
        .service(extensions::rotate_extension_secret)
        .service(extensions::read_extension_secret);
    cfg.service(provisioning::list_phone_models)
        .service(provisioning::list_built_in_templates)
        .service(provisioning::list_templates)
        .service(provisioning::create_template)
        .service(provisioning::get_template)
        .service(provisioning::update_template)
        .service(provisioning::delete_template)
        .service(provisioning::list_layouts)
        .service(provisioning::create_layout)
        .service(provisioning::get_layout)
        .service(provisioning::update_layout)
        .service(provisioning::delete_layout)
        .service(provisioning::clone_layout)
        .service(provisioning::get_group_choices)
        .service(provisioning::put_group_choices)
        .service(provisioning::get_settings)
        .service(provisioning::update_settings)
        .service(provisioning::preview)
        .service(provisioning::get_credential)
        .service(provisioning::rotate_credential)
        .service(provisioning::phone_choices);
    cfg.service(extension_groups::create_extension_group)
        .service(extension_groups::list_extension_groups)
        .service(extension_groups::get_extension_group)
        .service(extension_groups::update_extension_group)
        .service(extension_groups::delete_extension_group);
    cfg.service(devices::create_device)
        .service(devices::list_devices)
        .service(devices::get_device)
        .service(devices::update_device)
        .service(devices::delete_device)
        .service(devices::rotate_device_secret)
        .service(devices::read_device_secret);
    cfg.service(locations::create_location)
        .service(locations::list_locations)
        .service(locations::get_location)
        .service(locations::update_location)
        .service(locations::delete_location);
    cfg.service(gateways::create_domain_gateway)
        .service(gateways::list_domain_gateways)
        .service(gateways::get_domain_gateway)
        .service(gateways::update_domain_gateway)
        .service(gateways::delete_domain_gateway)
        .service(gateways::create_platform_gateway)
        .service(gateways::list_platform_gateways)
        .service(gateways::get_platform_gateway)
        .service(gateways::update_platform_gateway)
        .service(gateways::delete_platform_gateway)
        .service(gateways::grant_gateway)
        .service(gateways::revoke_gateway);
    cfg.service(call_flows::create_ring_group)
        .service(call_flows::list_ring_groups)
        .service(call_flows::get_ring_group)
        .service(call_flows::update_ring_group)
        .service(call_flows::delete_ring_group)
        .service(call_flows::create_ivr_menu)
        .service(call_flows::list_ivr_menus)
        .service(call_flows::get_ivr_menu)
        .service(call_flows::update_ivr_menu)
        .service(call_flows::delete_ivr_menu)
        .service(call_flows::create_time_condition)
        .service(call_flows::list_time_conditions)
        .service(call_flows::get_time_condition)
        .service(call_flows::update_time_condition)
        .service(call_flows::delete_time_condition)
        .service(call_flows::set_time_condition_override)
        .service(call_flows::import_call_flows);
    cfg.service(outbound_routes::create_outbound_route)
        .service(outbound_routes::list_outbound_routes)
        .service(outbound_routes::get_outbound_route)
        .service(outbound_routes::update_outbound_route)
        .service(outbound_routes::delete_outbound_route);
    cfg.service(calls::explain_call);
    cfg.service(import::import_rows);
    cfg.service(numbers::import_numbers)
        .service(numbers::create_number)
        .service(numbers::list_numbers)
        .service(numbers::get_number)
        .service(numbers::update_number)
        .service(numbers::delete_number)
        .service(numbers::list_domain_numbers)
        .service(numbers::get_domain_number)
        .service(numbers::update_domain_number);
    cfg.service(calling_settings::get_calling_settings)
        .service(calling_settings::update_calling_settings);
    cfg.service(bindings_views::extension_ring_plan)
        .service(bindings_views::device_identity);
    cfg.service(presence::list_presence)
        .service(presence::set_my_presence);
    cfg.service(events::domain_events)
        .service(events::create_stream_ticket);
    cfg.service(hotdesk::get_session)
        .service(hotdesk::put_session)
        .service(hotdesk::delete_session)
        .service(hotdesk::put_my_session)
        .service(hotdesk::delete_my_session);
    cfg.service(occupancy::list_active_sessions)
        .service(occupancy::list_sign_ins)
        .service(occupancy::end_in_bulk)
        .service(occupancy::find_my_phone);
    cfg.service(signin::sign_in_to_location)
        .service(signin::sign_out_of_location)
        .service(signin::put_my_location)
        .service(signin::delete_my_location);
    cfg.service(audit::domain_audit)
        .service(audit::platform_audit);
    cfg.service(registrations::list_registrations);
    cfg.service(freeswitch_nodes::list_nodes)
        .service(freeswitch_nodes::create_node)
        .service(freeswitch_nodes::get_node)
        .service(freeswitch_nodes::update_node)
        .service(freeswitch_nodes::delete_node);
}
