//! The `Caller` extractor: HTTP Basic credentials, rate limited per username, checked by the
//! service.

use super::ApiState;
use crate::error::Error;
use crate::service::Principal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Per-credential request rate limits (keyed by the Basic username, so a brute-force attempt
/// on one account is slowed before any password is checked). The configured rate is the
/// cluster's: with several nodes on one database each node allows its share, the rate divided
/// by the live nodes (a load balancer spreading a client's requests evenly then gives it the
/// configured rate in all).
pub struct RateLimits {
    per_second: u32,
    burst: u32,
    /// The limiter for the node count it was built for.
    current: std::sync::RwLock<(usize, Arc<DefaultKeyedRateLimiter<String>>)>,
}

/// The limiter of one node's share: `per_second` and `burst` divided by `nodes` (at least 1).
fn share(per_second: u32, burst: u32, nodes: usize) -> DefaultKeyedRateLimiter<String> {
    let nodes = u32::try_from(nodes.max(1)).unwrap_or(u32::MAX);
    let rate = NonZeroU32::new(per_second.div_ceil(nodes)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_second).div_ceil(nodes)).unwrap_or(rate);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

impl RateLimits {
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        RateLimits {
            per_second,
            burst,
            current: std::sync::RwLock::new((1, Arc::new(share(per_second, burst, 1)))),
        }
    }

    /// The limiter for `nodes` live nodes, rebuilt when their number changed.
    fn limiter(&self, nodes: usize) -> Arc<DefaultKeyedRateLimiter<String>> {
        if let Ok(current) = self.current.read() {
            if current.0 == nodes {
                return current.1.clone();
            }
        }
        let rebuilt = Arc::new(share(self.per_second, self.burst, nodes));
        if let Ok(mut current) = self.current.write() {
            *current = (nodes, rebuilt.clone());
        }
        rebuilt
    }

    fn check(&self, key: &str, nodes: usize) -> Result<(), Error> {
        self.limiter(nodes)
            .check_key(&key.to_string())
            .map_err(|_| Error::TooManyRequests)
    }

    /// Forgets idle keys now and then so the table stays small.
    pub fn spawn_cleanup(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limits) = weak.upgrade() else { break };
                let limiter = match limits.current.read() {
                    Ok(current) => current.1.clone(),
                    Err(_) => continue,
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
}

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Error> {
        let (username, password) = basic_credentials(parts).ok_or(Error::Unauthenticated)?;
        if let Some(limits) = &state.limits {
            limits.check(&username, state.app.node.live_nodes())?;
        }
        let principal = state.app.authenticate(&username, &password).await?;
        if let Some(slot) = parts.extensions.get::<super::observe::RequestAccount>() {
            slot.set(&principal.account.sid);
        }
        Ok(Caller(principal))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests one key gets through at once (its burst).
    fn burst_allowed(limits: &RateLimits, key: &str, nodes: usize) -> usize {
        (0..1000)
            .take_while(|_| limits.check(key, nodes).is_ok())
            .count()
    }

    #[test]
    fn each_node_allows_its_share_of_the_cluster_budget() {
        let limits = RateLimits::new(100, 200);
        assert_eq!(
            burst_allowed(&limits, "AC1", 1),
            200,
            "one node: the whole budget"
        );
        assert_eq!(
            burst_allowed(&limits, "AC2", 3),
            67,
            "three live nodes: a third each (rounded up)"
        );
        // The limiter follows the node count back down.
        assert_eq!(burst_allowed(&limits, "AC3", 2), 100);
        assert_eq!(burst_allowed(&limits, "AC3", 2), 0, "the budget is spent");
    }
}
