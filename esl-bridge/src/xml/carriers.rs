//! Gateways (trunks) as FreeSWITCH reads them from the directory.
//!
//! Every gateway lives under one pseudo-domain, [`CARRIERS_DOMAIN`] (`.invalid` is reserved:
//! no tenant's SIP domain can take it):
//! - `purpose=gateways` (sofia loading gateways for a profile whose `<domain name="all"
//!   parse="true"/>`): a `<user>` holding `<gateways>`, one `<gateway>` per enabled gateway,
//!   named [`freeswitch_gateway_name`] (stable across renames) with its plain password;
//! - `purpose=network-list` (FreeSWITCH building the `switchboard-carriers` ACL of `acl.conf`,
//!   which the SIP profile applies to inbound calls): one `<user id=<gateway> cidr=…>` per
//!   address of each enabled gateway, so a carrier's INVITE is let in without a digest
//!   challenge, into the `public` context, with `sip_acl_token` naming the gateway;
//! - the `public` dialplan context accepts a call only with that token and from that address.

use std::collections::HashMap;
use std::net::IpAddr;

use switchboard_domain::routing::outbound::freeswitch_gateway_name;
use switchboard_domain::store::gateways;
use uuid::Uuid;

use super::escape_into;

/// The pseudo-domain gateways and their addresses live under.
pub const CARRIERS_DOMAIN: &str = "carriers.switchboard.invalid";
/// The ACL list of `acl.conf` that the SIP profile's `apply-inbound-acl` names.
pub const CARRIERS_ACL: &str = "switchboard-carriers";

/// One gateway, ready for FreeSWITCH.
#[derive(Debug, Clone)]
pub struct Carrier {
    /// The row.
    pub gateway: gateways::Model,
    /// Its plain password.
    pub password: Option<String>,
    /// The addresses its proxy resolves to (each its /32 or /128), then the other addresses
    /// and networks the gateway lists.
    pub addresses: Vec<ipnet::IpNet>,
}

impl Carrier {
    /// Whether a call from `ip` comes from this carrier.
    pub fn sends_from(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|n| n.contains(&ip))
    }
}

/// Every gateway, by FreeSWITCH name.
#[derive(Debug, Clone, Default)]
pub struct Carriers {
    by_name: HashMap<String, Carrier>,
}

impl Carriers {
    /// Indexes gateways.
    pub fn of(carriers: impl IntoIterator<Item = Carrier>) -> Self {
        Self {
            by_name: carriers
                .into_iter()
                .map(|c| (freeswitch_gateway_name(c.gateway.id), c))
                .collect(),
        }
    }

    /// The enabled gateway of an ACL token (`<freeswitch name>@<carriers domain>`).
    pub fn by_token(&self, token: &str) -> Option<&Carrier> {
        let (name, domain) = token.split_once('@')?;
        if !domain.eq_ignore_ascii_case(CARRIERS_DOMAIN) {
            return None;
        }
        self.by_name.get(name).filter(|c| c.gateway.enabled)
    }

    /// The gateway of an id.
    pub fn by_id(&self, id: Uuid) -> Option<&Carrier> {
        self.by_name.get(&freeswitch_gateway_name(id))
    }

    fn enabled(&self) -> Vec<(&String, &Carrier)> {
        let mut out: Vec<_> = self
            .by_name
            .iter()
            .filter(|(_, c)| c.gateway.enabled)
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// The `<domain>` element with every enabled gateway (inside `purpose=gateways`); empty
    /// when there is none.
    pub fn gateways_domain(&self) -> String {
        if self.enabled().is_empty() {
            return String::new();
        }
        let mut out = String::with_capacity(1024);
        out.push_str("    <domain name=\"");
        out.push_str(CARRIERS_DOMAIN);
        out.push_str("\">\n      <user id=\"switchboard-gateways\">\n        <gateways>\n");
        for (name, c) in self.enabled() {
            let g = &c.gateway;
            out.push_str("          <gateway name=\"");
            escape_into(&mut out, name);
            out.push_str("\">\n");
            let mut p = |k: &str, v: &str| {
                out.push_str("            <param name=\"");
                escape_into(&mut out, k);
                out.push_str("\" value=\"");
                escape_into(&mut out, v);
                out.push_str("\"/>\n");
            };
            p("proxy", &g.proxy);
            if let Some(realm) = &g.realm {
                p("realm", realm);
            }
            // sofia insists on a user name and password even for a gateway that does not
            // register or authenticate; the values are only sent when challenged.
            p("username", g.username.as_deref().unwrap_or("switchboard"));
            p("password", c.password.as_deref().unwrap_or("unused"));
            p("register", if g.register { "true" } else { "false" });
            p("register-transport", &g.transport);
            p("expire-seconds", &g.expire_secs.to_string());
            p(
                "caller-id-in-from",
                if g.caller_id_in_from { "true" } else { "false" },
            );
            if let Some(from) = &g.from_domain {
                p("from-domain", from);
            }
            if let Some(ping) = g.ping_secs {
                p("ping", &ping.to_string());
            }
            p("retry-seconds", "30");
            // Calls the carrier sends to our registration land in `public` like the others.
            p("context", "public");
            out.push_str("          </gateway>\n");
        }
        out.push_str("        </gateways>\n      </user>\n    </domain>\n");
        out
    }

    /// The `purpose=network-list` answer: each enabled gateway's addresses.
    pub fn network_list_document(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<document type=\"freeswitch/xml\">\n  <section name=\"directory\">\n    <domain name=\"");
        out.push_str(CARRIERS_DOMAIN);
        out.push_str("\">\n");
        for (name, c) in self.enabled() {
            for net in &c.addresses {
                let cidr = net.to_string();
                out.push_str("      <user id=\"");
                escape_into(&mut out, name);
                out.push_str("\" cidr=\"");
                escape_into(&mut out, &cidr);
                out.push_str("\"/>\n");
            }
        }
        out.push_str("    </domain>\n  </section>\n</document>\n");
        out
    }
}

/// The host of a proxy (`host`, `host:port`, `[v6]:port`).
pub fn proxy_host(proxy: &str) -> &str {
    if let Some(rest) = proxy.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if proxy.matches(':').count() > 1 {
        return proxy;
    }
    proxy.split(':').next().unwrap_or(proxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_hosts_lose_their_port() {
        assert_eq!(proxy_host("127.0.0.2:5080"), "127.0.0.2");
        assert_eq!(proxy_host("sip.example"), "sip.example");
        assert_eq!(proxy_host("[2001:db8::1]:5060"), "2001:db8::1");
        assert_eq!(proxy_host("2001:db8::1"), "2001:db8::1");
    }
}
