//! Bind throttling for `warbler smsc`: once an address has failed to bind a few times in a
//! row, each further bind from it waits (one at a time, the wait doubling) before its
//! credentials are even compared, so guessing a password is slow however many connections
//! the guesser opens. An address with no recent failures binds at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The longest wait between two bind attempts from one address.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failed binds in a row an address may make before its attempts are slowed.
    pub failures_before_backoff: u32,
    /// The wait after the first slowed failure; it doubles with each further one.
    pub backoff: Duration,
}

struct Record {
    failures: u32,
    last_failure: Instant,
    /// When this address's next attempt may be checked.
    next_attempt: Instant,
    /// One attempt per address at a time.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Record {
    fn new(now: Instant) -> Record {
        Record {
            failures: 0,
            last_failure: now,
            next_attempt: now,
            turn: Arc::default(),
        }
    }
}

pub struct BindThrottle {
    settings: ThrottleSettings,
    addresses: Mutex<HashMap<IpAddr, Record>>,
}

impl BindThrottle {
    pub fn new(settings: ThrottleSettings) -> BindThrottle {
        BindThrottle {
            settings,
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for `address`'s turn, then runs `check` (does the bind carry the right
    /// credentials?) and records its outcome.
    pub async fn attempt(&self, address: IpAddr, check: impl FnOnce() -> bool) -> bool {
        // Even an address with no failures takes turns, or a thousand connections opened at
        // once would all be checked before the first failure was recorded.
        let turn = self
            .lock()
            .entry(address)
            .or_insert_with(|| Record::new(Instant::now()))
            .turn
            .clone();
        let _turn = turn.lock().await;
        let next_attempt = self.lock().get(&address).map(|record| record.next_attempt);
        if let Some(next_attempt) = next_attempt {
            tokio::time::sleep_until(next_attempt).await;
        }
        self.record(address, check())
    }

    fn record(&self, address: IpAddr, ok: bool) -> bool {
        let mut addresses = self.lock();
        if ok {
            addresses.remove(&address);
            return true;
        }
        let now = Instant::now();
        addresses.retain(|_, record| {
            now.duration_since(record.last_failure) < FORGET_AFTER
                || Arc::strong_count(&record.turn) > 1
        });
        let record = addresses.entry(address).or_insert_with(|| Record::new(now));
        record.failures += 1;
        record.last_failure = now;
        record.next_attempt = now + self.backoff_after(record.failures);
        false
    }

    /// The wait before the next attempt after `failures` failures in a row.
    fn backoff_after(&self, failures: u32) -> Duration {
        let Some(slowed) = failures.checked_sub(self.settings.failures_before_backoff) else {
            return Duration::ZERO;
        };
        self.settings
            .backoff
            .checked_mul(1u32.checked_shl(slowed).unwrap_or(u32::MAX))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_failures_before_backoff_up_to_a_minute() {
        let throttle = BindThrottle::new(ThrottleSettings {
            failures_before_backoff: 3,
            backoff: Duration::from_secs(1),
        });
        let waits: Vec<u64> = (1..=12)
            .map(|failures| throttle.backoff_after(failures).as_secs())
            .collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(throttle.backoff_after(u32::MAX), MAX_BACKOFF);
    }
}
