//! The rows a Domain's routing is compiled from (besides its bindings): calling settings,
//! Outbound Routes with their gateways, the gateways it may use, and its Numbers.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::destination::Destination;
use super::outbound::{
    CompiledRoute, DialPattern, GatewayRef, Numbering, OutboundPlan, TollClass,
    freeswitch_gateway_name,
};
use crate::store::{calling_settings, gateways, outbound_route_gateways, outbound_routes};

/// A Number of the Domain, as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFacts {
    /// Id.
    pub id: Uuid,
    /// E.164.
    pub number: String,
    /// Where it goes (none: nowhere yet, the call ends as unallocated).
    pub destination: Option<Destination>,
}

/// Everything routing is compiled from, besides the bindings.
#[derive(Debug, Clone, Default)]
pub struct RoutingRows {
    /// The calling settings (numbering, default caller ID), if saved.
    pub settings: Option<calling_settings::Model>,
    /// Outbound Routes.
    pub routes: Vec<outbound_routes::Model>,
    /// Their gateways.
    pub route_gateways: Vec<outbound_route_gateways::Model>,
    /// Gateways the Domain may use: its own and those granted to it (enabled or not).
    pub gateways: Vec<gateways::Model>,
    /// Its Numbers.
    pub numbers: Vec<NumberFacts>,
    /// Its ring groups, IVR menus and time conditions.
    pub flows: Vec<crate::store::call_flows::Model>,
}

/// Splits a stored pattern list (one per line, or comma-separated).
pub fn split_patterns(stored: &str) -> impl Iterator<Item = &str> {
    stored
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Compiles the outbound side of a Domain and its Numbers by E.164.
pub fn compile(rows: &RoutingRows) -> (OutboundPlan, HashMap<String, NumberFacts>) {
    let gateways: HashMap<Uuid, &gateways::Model> =
        rows.gateways.iter().map(|g| (g.id, g)).collect();
    let mut by_route: HashMap<Uuid, Vec<&outbound_route_gateways::Model>> = HashMap::new();
    for rg in &rows.route_gateways {
        by_route.entry(rg.route_id).or_default().push(rg);
    }
    let mut routes: Vec<&outbound_routes::Model> =
        rows.routes.iter().filter(|r| r.enabled).collect();
    routes.sort_by_key(|r| (r.position, r.created_at, r.id));
    let compiled = routes
        .into_iter()
        .filter_map(|r| {
            let toll_class = TollClass::parse(&r.toll_class).ok()?;
            let mut listed = by_route.remove(&r.id).unwrap_or_default();
            listed.sort_by_key(|rg| (rg.position, rg.gateway_id));
            let (mut usable, mut unusable) = (Vec::new(), Vec::new());
            for rg in listed {
                let Some(g) = gateways.get(&rg.gateway_id) else {
                    unusable.push(GatewayRef {
                        id: rg.gateway_id,
                        name: "(not available to this Domain)".into(),
                        freeswitch_name: freeswitch_gateway_name(rg.gateway_id),
                    });
                    continue;
                };
                let gw = GatewayRef {
                    id: g.id,
                    name: g.name.clone(),
                    freeswitch_name: freeswitch_gateway_name(g.id),
                };
                if g.enabled {
                    usable.push(gw)
                } else {
                    unusable.push(gw)
                }
            }
            Some(CompiledRoute {
                id: r.id,
                name: r.name.clone(),
                patterns: split_patterns(&r.patterns)
                    .filter_map(|p| DialPattern::parse(p).ok())
                    .collect(),
                strip_digits: usize::try_from(r.strip_digits).unwrap_or(0),
                prepend: r.prepend.clone(),
                toll_class,
                gateways: usable,
                unusable_gateways: unusable,
            })
        })
        .collect();
    let owned: HashSet<String> = rows.numbers.iter().map(|n| n.number.clone()).collect();
    let s = rows.settings.as_ref();
    let plan = OutboundPlan {
        routes: compiled,
        numbering: s.map_or_else(Numbering::default, |s| Numbering {
            country_code: s.country_code.clone(),
            national_prefix: s.national_prefix.clone(),
            international_prefix: s.international_prefix.clone(),
        }),
        owned_numbers: owned,
        default_name: s.and_then(|s| s.outbound_caller_id_name.clone()),
        default_number: s.and_then(|s| s.outbound_caller_id_number.clone()),
        present_any: s.is_some_and(|s| s.present_any_caller_id),
    };
    let numbers = rows
        .numbers
        .iter()
        .map(|n| (n.number.clone(), n.clone()))
        .collect();
    (plan, numbers)
}
