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
/// on one account is slowed before any password is checked).
pub struct RateLimits {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl RateLimits {
    pub fn new(per_second: u32, burst: u32) -> RateLimits {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        RateLimits {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    fn check(&self, key: &str) -> Result<(), Error> {
        self.limiter
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
                limits.limiter.retain_recent();
                limits.limiter.shrink_to_fit();
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
            limits.check(&username)?;
        }
        let principal = state.app.authenticate(&username, &password).await?;
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
