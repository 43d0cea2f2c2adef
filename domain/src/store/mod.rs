//! sea-orm entities and the queries over them.
//!
//! Tenant-owned tables are only ever queried with their Domain id; the services module is the
//! only caller.

pub mod api_keys;
pub mod audit_log;
pub mod auth_failures;
pub mod call_flows;
pub mod call_legs;
pub mod calling_settings;
pub mod calls;
pub mod change_counters;
pub mod change_log;
pub mod devices;
pub mod domains;
pub mod extension_group_layouts;
pub mod extension_group_templates;
pub mod extension_groups;
pub mod extensions;
pub mod freeswitch_links;
pub mod freeswitch_node_domains;
pub mod freeswitch_nodes;
pub mod gateway_grants;
pub mod gateways;
pub mod hotdesk_sessions;
pub mod location_extensions;
pub mod location_sign_ins;
pub mod locations;
pub mod model_layouts;
pub mod numbers;
pub mod outbound_route_gateways;
pub mod outbound_routes;
pub mod password_tokens;
pub mod presence_notes;
pub mod provisioning_settings;
pub mod provisioning_templates;
pub mod refresh_tokens;
pub mod registrations;
pub mod role_assignments;
pub mod roles;
pub mod search;
pub mod server_settings;
pub mod sessions;
pub mod stream_tickets;
pub mod users;
pub mod voicemail_boxes;
pub mod voicemail_emails;
