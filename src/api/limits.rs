//! Request limits applied by the `Caller` extractor: each account's request budget, charged
//! once a credential has authenticated, and backoff on failed authentications by client
//! address and by username. Failures never spend an account's budget, so nobody can exhaust
//! another tenant's budget by sending its SID with a wrong secret.

use crate::error::Error;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Request rate limits per account (keyed by the SID of the account whose auth token or key
/// was presented, so an account's keys and auth token share one budget). The configured rate
/// is the cluster's: with several nodes on one database each node allows its share, the rate
/// divided by the live nodes (a load balancer spreading a client's requests evenly then gives
/// it the configured rate in all).
pub struct AccountBudget {
    per_second: u32,
    burst: u32,
    /// The limiter for the node count it was built for.
    current: RwLock<(usize, Arc<DefaultKeyedRateLimiter<String>>)>,
}

/// The limiter of one node's share: `per_second` and `burst` divided by `nodes` (at least 1).
fn share(per_second: u32, burst: u32, nodes: usize) -> DefaultKeyedRateLimiter<String> {
    let nodes = u32::try_from(nodes.max(1)).unwrap_or(u32::MAX);
    let rate = NonZeroU32::new(per_second.div_ceil(nodes)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_second).div_ceil(nodes)).unwrap_or(rate);
    RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
}

impl AccountBudget {
    pub fn new(per_second: u32, burst: u32) -> AccountBudget {
        AccountBudget {
            per_second,
            burst,
            current: RwLock::new((1, Arc::new(share(per_second, burst, 1)))),
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

    /// Spends one request of `account_sid`'s budget, or refuses it with 429.
    pub fn charge(&self, account_sid: &str, nodes: usize) -> Result<(), Error> {
        self.limiter(nodes)
            .check_key(&account_sid.to_string())
            .map_err(|_| Error::TooManyRequests)
    }

    fn forget_idle(&self) {
        let limiter = match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(_) => return,
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// Failed authentications a key (an address or a username) may make before backoff starts.
/// The first failure past them blocks the key for `FIRST_BACKOFF`, each later one (after the
/// window ended) for twice as long as the last, up to `LONGEST_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const LONGEST_BACKOFF: Duration = Duration::from_secs(300);
/// A key's failures are forgotten after this long without one.
const FAILURES_KEPT: Duration = Duration::from_secs(900);
/// Keys tracked at most; past it the ones out of backoff are dropped first.
const MAX_TRACKED: usize = 100_000;

/// Exponential backoff on failures, per key. Time is passed in, so tests need no sleeping.
pub struct Backoff<K> {
    allowed: u32,
    entries: Mutex<HashMap<K, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub fn new(allowed: u32) -> Backoff<K> {
        Backoff {
            allowed,
            entries: Mutex::default(),
        }
    }

    /// Whether `key` is inside a backoff window at `now`.
    pub fn blocked(&self, key: &K, now: Instant) -> bool {
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries
            .get(key)
            .and_then(|failures| failures.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a failure of `key`; returns the backoff window it starts, if it starts one.
    pub fn fail(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().ok()?;
        if entries.len() >= MAX_TRACKED && !entries.contains_key(key) {
            entries.retain(|_, f| f.blocked_until.is_some_and(|until| now < until));
            if entries.len() >= MAX_TRACKED {
                entries.clear();
            }
        }
        let fresh = Failures {
            count: 0,
            last: now,
            blocked_until: None,
        };
        let failures = entries.entry(key.clone()).or_insert(fresh);
        if now.saturating_duration_since(failures.last) > FAILURES_KEPT {
            *failures = fresh;
        }
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        let over = failures.count.checked_sub(self.allowed)?.checked_sub(1)?;
        let window = FIRST_BACKOFF
            .saturating_mul(1 << over.min(20))
            .min(LONGEST_BACKOFF);
        failures.blocked_until = Some(now + window);
        Some(window)
    }

    /// Forgets `key`'s failures.
    pub fn forgive(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    fn forget_idle(&self, now: Instant) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, f| now.saturating_duration_since(f.last) <= FAILURES_KEPT);
            entries.shrink_to_fit();
        }
    }
}

/// Backoff on failed authentications.
///
/// - By client address: an address in backoff gets 429 for every request, before its
///   credentials are looked at (no database read, no secret check), and each such request
///   counts as a failure, so an address that keeps flooding stays blocked for longer. This is
///   what stops a flood, and it only touches the flooding address.
/// - By username: once a username has failed too often (from any addresses), a failed attempt
///   on it is answered 429 instead of 401 while its window lasts, and does not lengthen it. A
///   correct secret is still accepted, from any address, and clears the username's failures:
///   failures keyed on a username must not lock its owner out. Secrets are 128 random bits, so
///   slowing guesses is not what protects them; what this adds is that failures spread over
///   many addresses are answered 429 and logged.
pub struct FailedAuthLimits {
    pub by_address: Backoff<IpAddr>,
    pub by_username: Backoff<String>,
}

impl FailedAuthLimits {
    pub fn new(allowed: u32) -> FailedAuthLimits {
        FailedAuthLimits {
            by_address: Backoff::new(allowed),
            by_username: Backoff::new(allowed),
        }
    }
}

/// Every limit of the HTTP layer; `None` where the configuration turned one off.
pub struct Limits {
    pub budget: Option<AccountBudget>,
    pub failed_auth: Option<FailedAuthLimits>,
}

impl Limits {
    /// Forgets idle keys now and then so the tables stay small.
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
                if let Some(budget) = &limits.budget {
                    budget.forget_idle();
                }
                if let Some(failed) = &limits.failed_auth {
                    failed.by_address.forget_idle(Instant::now());
                    failed.by_username.forget_idle(Instant::now());
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests one account gets through at once (its burst).
    fn burst_allowed(budget: &AccountBudget, account: &str, nodes: usize) -> usize {
        (0..1000)
            .take_while(|_| budget.charge(account, nodes).is_ok())
            .count()
    }

    #[test]
    fn each_node_allows_its_share_of_the_cluster_budget() {
        // One token a second at most: no refill lands while the bursts are counted, however
        // slow the machine (at 100 a second one did, in CI, and the count read 201).
        let budget = AccountBudget::new(1, 200);
        assert_eq!(
            burst_allowed(&budget, "AC1", 1),
            200,
            "one node: the whole budget"
        );
        assert_eq!(
            burst_allowed(&budget, "AC2", 3),
            67,
            "three live nodes: a third each (rounded up)"
        );
        // The limiter follows the node count back down.
        assert_eq!(burst_allowed(&budget, "AC3", 2), 100);
        assert_eq!(burst_allowed(&budget, "AC3", 2), 0, "the budget is spent");
    }

    #[test]
    fn backoff_starts_after_the_allowed_failures_and_doubles() {
        let backoff = Backoff::new(3);
        let start = Instant::now();
        let key = "10.0.0.1".to_string();
        for _ in 0..3 {
            assert_eq!(backoff.fail(&key, start), None);
        }
        assert!(!backoff.blocked(&key, start), "the allowed failures");
        assert_eq!(backoff.fail(&key, start), Some(Duration::from_secs(1)));
        assert!(backoff.blocked(&key, start + Duration::from_millis(999)));
        assert!(!backoff.blocked(&key, start + Duration::from_secs(1)));
        let later = start + Duration::from_secs(1);
        assert_eq!(backoff.fail(&key, later), Some(Duration::from_secs(2)));
        assert_eq!(backoff.fail(&key, later), Some(Duration::from_secs(4)));
        for _ in 0..20 {
            backoff.fail(&key, later);
        }
        assert_eq!(backoff.fail(&key, later), Some(LONGEST_BACKOFF), "capped");
        assert!(
            !backoff.blocked(&"10.0.0.2".to_string(), later),
            "another key is untouched"
        );
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while_or_when_forgiven() {
        let backoff = Backoff::new(1);
        let start = Instant::now();
        let key = "AC1".to_string();
        backoff.fail(&key, start);
        assert!(backoff.fail(&key, start).is_some());
        let quiet = start + FAILURES_KEPT + Duration::from_secs(1);
        assert_eq!(backoff.fail(&key, quiet), None, "counting starts over");
        backoff.forgive(&key);
        assert_eq!(backoff.fail(&key, quiet), None);
        assert!(backoff.fail(&key, quiet).is_some());
        backoff.forgive(&key);
        assert!(!backoff.blocked(&key, quiet), "forgiven");
    }
}
