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

    /// Registers a group of routes that only paths [`Under`] its prefix are matched against.
    fn group<G: Group>(&mut self, under: Under, group: G) -> &mut Self;
}

impl Routes for ServiceConfig<'_> {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        ServiceConfig::service(self, factory)
    }

    fn group<G: Group>(&mut self, under: Under, group: G) -> &mut Self {
        // An empty prefix: the paths (and the document's) stay whole.
        let scope = utoipa_actix_web::scope::scope("")
            .guard(under)
            .configure(|cfg| group.register(cfg));
        ServiceConfig::service(self, scope)
    }
}

impl Routes for actix_web::web::ServiceConfig {
    fn service<F>(&mut self, factory: F) -> &mut Self
    where
        F: HttpServiceFactory + OpenApiFactory + 'static,
    {
        actix_web::web::ServiceConfig::service(self, factory)
    }

    fn group<G: Group>(&mut self, under: Under, group: G) -> &mut Self {
        // A scope does not fall back to the application's default service: a path under the
        // prefix that no route of the group matches gets the same 404 / 405 as anywhere else.
        let scope = actix_web::web::scope("")
            .guard(under)
            .configure(|cfg| group.register(cfg))
            .default_service(actix_web::web::to(crate::startup::fallback));
        actix_web::web::ServiceConfig::service(self, scope)
    }
}

/// Routes registered together behind one [`Under`] guard ([`Routes::group`]).
pub trait Group {
    /// Registers the group's routes.
    fn register<C: Routes>(self, cfg: &mut C);
}

/// A guard that lets in the paths that begin with these segments (`*`: any one segment), e.g.
/// `["api", "v1", "domains", "*", "devices"]` for `/api/v1/domains/{domain_id}/devices` and
/// everything below it. A string comparison, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Under(pub &'static [&'static str]);

impl Under {
    /// True when `path` begins with the segments.
    pub fn admits(&self, path: &str) -> bool {
        let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
        self.0
            .iter()
            .all(|want| segments.next().is_some_and(|s| *want == "*" || s == *want))
    }
}

impl actix_web::guard::Guard for Under {
    fn check(&self, ctx: &actix_web::guard::GuardContext<'_>) -> bool {
        self.admits(ctx.head().uri.path())
    }
}

/// `group!(cfg, ["api", "v1", "me"], |g| { g.service(…); })`: registers the routes the block
/// names as one [`Routes::group`].
macro_rules! group {
    ($cfg:expr, [$($segment:literal),+], |$g:ident| $body:block) => {{
        struct These;
        impl Group for These {
            fn register<C: Routes>(self, $g: &mut C) $body
        }
        $cfg.group(Under(&[$($segment),+]), These);
    }};
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
///
/// Routes are grouped by the resource their path names (`/api/v1/domains/{domain_id}/devices…`,
/// `/api/v1/me…`): actix tries routes one after the other and each pattern with parameters is a
/// regex match, so with 190 routes a request late in the list spent a sixth of a busy node's
/// CPU matching paths. A group is entered only by paths under its prefix (a string comparison,
/// [`Under`]), and holds every route under it, so a request tests a few prefixes and then its
/// own resource's handful of routes. The OpenAPI document is the same (the groups add no path).
pub fn configure_api<C: Routes>(cfg: &mut C) {
    cfg.service(health::live);
    cfg.service(health::ready);
    group!(cfg, ["api", "v1", "auth"], |g| {
        g.service(auth::login)
            .service(auth::refresh)
            .service(auth::logout)
            .service(auth::set_password);
    });
    group!(cfg, ["api", "v1", "me"], |g| {
        g.service(me::me)
            .service(me::sessions)
            .service(me::revoke_session)
            .service(me::change_password)
            .service(history::list_my_calls)
            .service(history::get_my_call)
            .service(history::get_my_recording)
            .service(voicemail::list_my_boxes)
            .service(voicemail::put_my_box)
            .service(voicemail::list_my_greetings)
            .service(voicemail::put_my_greeting)
            .service(voicemail::delete_my_greeting)
            .service(voicemail::list_my_messages)
            .service(voicemail::get_my_message)
            .service(voicemail::get_my_audio)
            .service(voicemail::update_my_message)
            .service(voicemail::delete_my_message)
            .service(voicemail::move_my_message)
            .service(presence::set_my_presence)
            .service(hotdesk::put_my_session)
            .service(hotdesk::delete_my_session)
            .service(occupancy::find_my_phone)
            .service(signin::put_my_location)
            .service(signin::delete_my_location);
    });
    group!(cfg, ["api", "v1", "domains", "*", "calls.csv"], |g| {
        g.service(history::export_calls);
    });
    group!(cfg, ["api", "v1", "domains", "*", "calls"], |g| {
        g.service(history::list_calls)
            .service(history::get_call)
            .service(history::get_recording)
            .service(calls::explain_call);
    });
    group!(cfg, ["api", "v1", "domains", "*", "extensions"], |g| {
        g.service(voicemail::get_box)
            .service(voicemail::put_box)
            .service(voicemail::list_emails)
            .service(voicemail::retry_email)
            .service(voicemail::list_greetings)
            .service(voicemail::get_greeting)
            .service(voicemail::put_greeting)
            .service(voicemail::delete_greeting)
            .service(voicemail::list_messages)
            .service(voicemail::get_message)
            .service(voicemail::get_audio)
            .service(voicemail::update_message)
            .service(voicemail::delete_message)
            .service(voicemail::move_message)
            .service(extensions::create_extension)
            .service(extensions::list_extensions)
            .service(extensions::get_extension)
            .service(extensions::update_extension)
            .service(extensions::delete_extension)
            .service(extensions::rotate_extension_secret)
            .service(extensions::read_extension_secret)
            .service(bindings_views::extension_ring_plan)
            .service(signin::sign_in_to_location)
            .service(signin::sign_out_of_location);
    });
    cfg.service(domains::create_domain);
    cfg.service(domains::list_domains);
    cfg.service(domains::get_domain);
    cfg.service(domains::update_domain);
    cfg.service(domains::delete_domain);
    group!(cfg, ["api", "v1", "domains", "*", "users"], |g| {
        g.service(users::create_user)
            .service(users::list_users)
            .service(users::get_user)
            .service(users::update_user)
            .service(users::delete_user)
            .service(users::reset_password)
            .service(users::get_user_roles)
            .service(users::put_user_roles);
    });
    group!(cfg, ["api", "v1", "users"], |g| {
        g.service(users::get_platform_roles)
            .service(users::put_platform_roles);
    });
    cfg.service(roles::permissions);
    group!(cfg, ["api", "v1", "domains", "*", "roles"], |g| {
        g.service(roles::list_roles)
            .service(roles::get_role)
            .service(roles::create_role)
            .service(roles::update_role)
            .service(roles::delete_role);
    });
    group!(cfg, ["api", "v1", "domains", "*", "api-keys"], |g| {
        g.service(api_keys::create_domain_key)
            .service(api_keys::list_domain_keys)
            .service(api_keys::get_domain_key)
            .service(api_keys::revoke_domain_key);
    });
    group!(cfg, ["api", "v1", "api-keys"], |g| {
        g.service(api_keys::create_platform_key)
            .service(api_keys::list_platform_keys)
            .service(api_keys::get_platform_key)
            .service(api_keys::revoke_platform_key);
    });
    cfg.service(provisioning::list_phone_models);
    cfg.service(provisioning::list_built_in_templates);
    group!(cfg, ["api", "v1", "domains", "*", "provisioning"], |g| {
        g.service(provisioning::list_templates)
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
            .service(provisioning::get_settings)
            .service(provisioning::update_settings);
    });
    group!(
        cfg,
        ["api", "v1", "domains", "*", "extension-groups"],
        |g| {
            g.service(provisioning::get_group_choices)
                .service(provisioning::put_group_choices)
                .service(extension_groups::create_extension_group)
                .service(extension_groups::list_extension_groups)
                .service(extension_groups::get_extension_group)
                .service(extension_groups::update_extension_group)
                .service(extension_groups::delete_extension_group);
        }
    );
    group!(cfg, ["api", "v1", "domains", "*", "devices"], |g| {
        g.service(provisioning::preview)
            .service(provisioning::get_credential)
            .service(provisioning::rotate_credential)
            .service(provisioning::phone_choices)
            .service(devices::create_device)
            .service(devices::list_devices)
            .service(devices::get_device)
            .service(devices::update_device)
            .service(devices::delete_device)
            .service(devices::rotate_device_secret)
            .service(devices::read_device_secret)
            .service(bindings_views::device_identity)
            .service(hotdesk::get_session)
            .service(hotdesk::put_session)
            .service(hotdesk::delete_session);
    });
    group!(cfg, ["api", "v1", "domains", "*", "locations"], |g| {
        g.service(locations::create_location)
            .service(locations::list_locations)
            .service(locations::get_location)
            .service(locations::update_location)
            .service(locations::delete_location);
    });
    group!(cfg, ["api", "v1", "domains", "*", "gateways"], |g| {
        g.service(gateways::create_domain_gateway)
            .service(gateways::list_domain_gateways)
            .service(gateways::get_domain_gateway)
            .service(gateways::update_domain_gateway)
            .service(gateways::delete_domain_gateway);
    });
    group!(cfg, ["api", "v1", "gateways"], |g| {
        g.service(gateways::create_platform_gateway)
            .service(gateways::list_platform_gateways)
            .service(gateways::get_platform_gateway)
            .service(gateways::update_platform_gateway)
            .service(gateways::delete_platform_gateway)
            .service(gateways::grant_gateway)
            .service(gateways::revoke_gateway);
    });
    group!(cfg, ["api", "v1", "domains", "*", "ring-groups"], |g| {
        g.service(call_flows::create_ring_group)
            .service(call_flows::list_ring_groups)
            .service(call_flows::get_ring_group)
            .service(call_flows::update_ring_group)
            .service(call_flows::delete_ring_group);
    });
    group!(cfg, ["api", "v1", "domains", "*", "ivr-menus"], |g| {
        g.service(call_flows::create_ivr_menu)
            .service(call_flows::list_ivr_menus)
            .service(call_flows::get_ivr_menu)
            .service(call_flows::update_ivr_menu)
            .service(call_flows::delete_ivr_menu);
    });
    group!(cfg, ["api", "v1", "domains", "*", "time-conditions"], |g| {
        g.service(call_flows::create_time_condition)
            .service(call_flows::list_time_conditions)
            .service(call_flows::get_time_condition)
            .service(call_flows::update_time_condition)
            .service(call_flows::delete_time_condition)
            .service(call_flows::set_time_condition_override);
    });
    group!(cfg, ["api", "v1", "domains", "*", "call-flows"], |g| {
        g.service(call_flows::import_call_flows);
    });
    group!(cfg, ["api", "v1", "domains", "*", "outbound-routes"], |g| {
        g.service(outbound_routes::create_outbound_route)
            .service(outbound_routes::list_outbound_routes)
            .service(outbound_routes::get_outbound_route)
            .service(outbound_routes::update_outbound_route)
            .service(outbound_routes::delete_outbound_route);
    });
    group!(cfg, ["api", "v1", "domains", "*", "import"], |g| {
        g.service(import::import_rows);
    });
    group!(cfg, ["api", "v1", "numbers"], |g| {
        g.service(numbers::import_numbers)
            .service(numbers::create_number)
            .service(numbers::list_numbers)
            .service(numbers::get_number)
            .service(numbers::update_number)
            .service(numbers::delete_number);
    });
    group!(cfg, ["api", "v1", "domains", "*", "numbers"], |g| {
        g.service(numbers::list_domain_numbers)
            .service(numbers::get_domain_number)
            .service(numbers::update_domain_number);
    });
    group!(
        cfg,
        ["api", "v1", "domains", "*", "calling-settings"],
        |g| {
            g.service(calling_settings::get_calling_settings)
                .service(calling_settings::update_calling_settings);
        }
    );
    group!(cfg, ["api", "v1", "domains", "*", "presence"], |g| {
        g.service(presence::list_presence);
    });
    group!(cfg, ["api", "v1", "domains", "*", "events"], |g| {
        g.service(events::domain_events)
            .service(events::create_stream_ticket);
    });
    group!(cfg, ["api", "v1", "domains", "*", "hotdesk"], |g| {
        g.service(occupancy::list_active_sessions)
            .service(occupancy::end_in_bulk);
    });
    group!(
        cfg,
        ["api", "v1", "domains", "*", "location-sign-ins"],
        |g| {
            g.service(occupancy::list_sign_ins);
        }
    );
    group!(cfg, ["api", "v1", "domains", "*", "audit"], |g| {
        g.service(audit::domain_audit);
    });
    cfg.service(audit::platform_audit);
    group!(cfg, ["api", "v1", "domains", "*", "registrations"], |g| {
        g.service(registrations::list_registrations);
    });
    group!(cfg, ["api", "v1", "freeswitch"], |g| {
        g.service(freeswitch_nodes::list_nodes)
            .service(freeswitch_nodes::create_node)
            .service(freeswitch_nodes::get_node)
            .service(freeswitch_nodes::update_node)
            .service(freeswitch_nodes::delete_node);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each route's paths with the group it was registered in.
    #[derive(Default)]
    struct Recorder {
        group: Option<Under>,
        routes: Vec<(Option<Under>, String)>,
    }

    impl Routes for Recorder {
        fn service<F>(&mut self, factory: F) -> &mut Self
        where
            F: HttpServiceFactory + OpenApiFactory + 'static,
        {
            for path in factory.paths().paths.keys() {
                self.routes.push((self.group, path.clone()));
            }
            self
        }

        fn group<G: Group>(&mut self, under: Under, group: G) -> &mut Self {
            assert!(self.group.is_none(), "groups are not nested");
            self.group = Some(under);
            group.register(self);
            self.group = None;
            self
        }
    }

    /// A concrete path a route's pattern matches: each `{parameter}` becomes a value.
    fn example(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|s| if s.starts_with('{') { "0193a5b2" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn a_group_admits_exactly_the_paths_under_its_prefix() {
        let devices = Under(&["api", "v1", "domains", "*", "devices"]);
        for path in [
            "/api/v1/domains/d1/devices",
            "/api/v1/domains/d1/devices/x",
            "/api/v1/domains/d1/devices/x/secret",
        ] {
            assert!(devices.admits(path), "{path}");
        }
        for path in [
            "/api/v1/domains/d1",
            "/api/v1/domains/d1/devices-x",
            "/api/v1/domains/d1/extensions",
            "/api/v1/domainsx/d1/devices",
            "/api/v2/domains/d1/devices",
            "/",
            "",
        ] {
            assert!(!devices.admits(path), "{path}");
        }
    }

    /// Once a group's guard lets a request in, only the group's routes are tried: every route
    /// a path under its prefix could reach must be in it, and each route in a group must be
    /// reachable through its guard.
    #[test]
    fn every_route_is_reached_through_its_own_group_only() {
        let mut recorder = Recorder::default();
        configure_api(&mut recorder);
        configure_freeswitch(&mut recorder);
        let groups: Vec<Under> = recorder.routes.iter().filter_map(|(g, _)| *g).collect();
        assert!(groups.len() > 100, "most routes are grouped");
        assert!(recorder.routes.len() > 150);
        for (group, pattern) in &recorder.routes {
            let path = example(pattern);
            match group {
                Some(g) => {
                    assert!(
                        g.admits(&path),
                        "{pattern} is registered in {g:?}, which refuses it"
                    );
                    for other in groups.iter().filter(|o| *o != g) {
                        assert!(
                            !other.admits(&path),
                            "{pattern} is in {g:?}, but {other:?} takes its requests too"
                        );
                    }
                }
                None => {
                    for g in &groups {
                        assert!(
                            !g.admits(&path),
                            "{pattern} is outside {g:?}, whose guard takes its requests"
                        );
                    }
                }
            }
        }
    }
}
