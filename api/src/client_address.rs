//! Who the client is, address-wise, when switchboard may sit behind reverse proxies.
//!
//! The direct peer is the client unless it is one of `http.trusted_proxies`. Only then are the
//! forwarding headers read (`X-Forwarded-For`, or without it `Forwarded`), from the right:
//! every proxy appends the address it received from, so hops are skipped while they are
//! trusted proxies and the first one that is not is the client. Whatever lies to its left was
//! written by the client itself and is never believed.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address as the per-address limits and the audit log should see it.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = req
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|state| state.trusted_proxies.clone())
        .unwrap_or_default();
    Some(resolve(peer, req, &trusted))
}

/// [`client_ip`] as text.
pub fn client_ip_text(req: &HttpRequest) -> Option<String> {
    client_ip(req).map(|ip| ip.to_string())
}

fn resolve(peer: IpAddr, req: &HttpRequest, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(req);
    rightmost_untrusted(peer, &hops, is_trusted)
}

/// The hops the forwarding headers name, left (the original client) to right (the last proxy
/// before the peer). `None` is a hop that is not an address (`unknown`, an obfuscated name).
fn forwarded_hops(req: &HttpRequest) -> Vec<Option<IpAddr>> {
    let headers = req.headers();
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !xff.is_empty() {
        return xff
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect();
    }
    headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_hop(v.trim()))
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, _port) = hop.rsplit_once(':')?;
    host.parse().ok()
}

fn rightmost_untrusted(
    peer: IpAddr,
    hops: &[Option<IpAddr>],
    is_trusted: impl Fn(&IpAddr) -> bool,
) -> IpAddr {
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = *ip,
            Some(ip) => return *ip,
            // Not an address: nothing to its left can be trusted either; the last proxy that
            // handed it over is the best we know.
            None => return client,
        }
    }
    client
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "198.51.100.9"))
            .to_http_request();
        assert_eq!(
            resolve(ip("203.0.113.5"), &req, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.5")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &req, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real one.
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "1.2.3.4, 198.51.100.9, 10.0.0.7"))
            .to_http_request();
        assert_eq!(resolve(ip("10.0.0.1"), &req, &trusted), ip("198.51.100.9"));
        let req = TestRequest::default()
            .insert_header((
                "forwarded",
                "for=1.2.3.4, for=\"[2001:db8::5]:4711\";proto=https",
            ))
            .to_http_request();
        assert_eq!(resolve(ip("10.0.0.1"), &req, &trusted), ip("2001:db8::5"));
        // Only proxies: the leftmost of them.
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "10.0.0.9"))
            .to_http_request();
        assert_eq!(resolve(ip("10.0.0.1"), &req, &trusted), ip("10.0.0.9"));
        // No header: the proxy itself.
        let req = TestRequest::default().to_http_request();
        assert_eq!(resolve(ip("10.0.0.1"), &req, &trusted), ip("10.0.0.1"));
        // Garbage stops the walk at the last proxy.
        let req = TestRequest::default()
            .insert_header(("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.7"))
            .to_http_request();
        assert_eq!(resolve(ip("10.0.0.1"), &req, &trusted), ip("10.0.0.7"));
        assert_eq!(parse_hop("192.0.2.1:80"), Some(ip("192.0.2.1")));
    }
}
