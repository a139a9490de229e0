//! The `Caller` extractor: HTTP Basic credentials, checked by the service, with the request
//! limits of `limits` around the check.

use super::ApiState;
use crate::domain::sid::{self, SidKind};
use crate::error::Error;
use crate::service::Principal;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Error> {
        let (username, password) = basic_credentials(parts).ok_or(Error::Unauthenticated)?;
        // Known when the server is run with `into_make_service_with_connect_info`.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| address_key(info.0.ip()));
        let failed_auth = state.limits.failed_auth.as_ref();
        let now = Instant::now();
        if let (Some(failed_auth), Some(address)) = (failed_auth, address) {
            if failed_auth.by_address.blocked(&address, now) {
                // Sending on while told to back off counts as failing: the window grows.
                failed_auth.by_address.fail(&address, now);
                return Err(Error::TooManyRequests);
            }
        }
        match state.app.authenticate(&username, &password).await {
            Ok(principal) => {
                if let Some(failed_auth) = failed_auth {
                    failed_auth.by_username.forgive(&username);
                }
                if let Some(slot) = parts.extensions.get::<super::observe::RequestAccount>() {
                    slot.set(&principal.account.sid);
                }
                if let Some(budget) = &state.limits.budget {
                    budget.charge(&principal.account.sid, state.app.node.live_nodes())?;
                }
                Ok(Caller(principal))
            }
            Err(Error::Unauthenticated) => {
                let Some(failed_auth) = failed_auth else {
                    return Err(Error::Unauthenticated);
                };
                if let Some(address) = address {
                    if let Some(window) = failed_auth.by_address.fail(&address, now) {
                        tracing::warn!(%address, ?window, "failed authentications: address backing off");
                    }
                }
                // Only SIDs can authenticate: anything else needs no tracking (and could be long).
                if !is_credential_sid(&username) {
                    return Err(Error::Unauthenticated);
                }
                if failed_auth.by_username.blocked(&username, now) {
                    return Err(Error::TooManyRequests);
                }
                if let Some(window) = failed_auth.by_username.fail(&username, now) {
                    tracing::warn!(%username, ?window, "failed authentications: username backing off");
                }
                Err(Error::Unauthenticated)
            }
            Err(other) => Err(other),
        }
    }
}

fn is_credential_sid(username: &str) -> bool {
    sid::is_valid(SidKind::Account, username) || sid::is_valid(SidKind::ApiKey, username)
}

/// The key failures are counted under: the address, or for IPv6 its /64 (one host usually
/// holds a whole /64, and would otherwise get a fresh allowance per address).
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

fn basic_credentials(parts: &Parts) -> Option<(String, String)> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The console's login form, counted in the same backoff windows as the API's Basic
/// credentials (one allowance in all, whichever door is knocked on).
pub(super) struct ConsoleLogins(pub std::sync::Arc<super::limits::Limits>);

impl crate::console::LoginLimiter for ConsoleLogins {
    fn blocked(&self, address: Option<IpAddr>, username: &str) -> bool {
        let Some(failed_auth) = &self.0.failed_auth else {
            return false;
        };
        let now = Instant::now();
        address.is_some_and(|a| failed_auth.by_address.blocked(&address_key(a), now))
            || (is_credential_sid(username)
                && failed_auth.by_username.blocked(&username.to_string(), now))
    }

    fn failed(&self, address: Option<IpAddr>, username: &str) {
        let Some(failed_auth) = &self.0.failed_auth else {
            return;
        };
        let now = Instant::now();
        if let Some(address) = address {
            failed_auth.by_address.fail(&address_key(address), now);
        }
        if is_credential_sid(username) {
            failed_auth.by_username.fail(&username.to_string(), now);
        }
    }

    fn succeeded(&self, username: &str) {
        if let Some(failed_auth) = &self.0.failed_auth {
            failed_auth.by_username.forgive(&username.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_per_ipv4_address_and_per_ipv6_64() {
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(address_key(v4), v4);
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(
            address_key(mapped),
            v4,
            "an IPv4-mapped address is the IPv4 one"
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
    }
}
