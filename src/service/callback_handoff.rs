//! Status callbacks claimed as they are written, on PostgreSQL. The transactions that record
//! a message's new status (the dispatcher's outcomes, the receipts) write each callback that
//! is its message's only pending webhook already leased to this node's webhook sender
//! (`store::webhooks::CallbackBirthClaim`) and, once committed, hand it over here in memory: the
//! sender takes it from here instead of finding and claiming it in the database, which
//! rewrote every callback's row once more (the largest claim left on PostgreSQL, measured).
//!
//! As with messages (`super::handoff`), nothing is held only here: a callback handed over is
//! a durable row under a lease with this node's token. If the node dies, another node claims
//! it when the lease runs out; one this node will not send (its sender stops, or it waited
//! here past half its lease) is released in the database at once. The sender still claims
//! from the database (retries, inbound and other webhooks, what other nodes left) whenever
//! nothing waits here, and at least every `super::handoff::DATABASE_TURN` while something
//! does; both handoffs share their rules (`super::handoff::taker_is_behind` and the rest).

use super::handoff::{database_turn_due, half_lease_after, taker_is_behind};
use crate::store::webhooks::CallbackBirthClaim;
use crate::store::webhooks::Webhook;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Most callbacks waiting here, whatever their age (memory).
const CAPACITY: usize = 16_384;

/// A callback handed over, and the time by which it must have gone out (half its lease: the
/// other half covers the request, renewed while it lasts, and the settlement).
struct Handed {
    webhook: Webhook,
    claimed_at: Instant,
    send_by: Instant,
}

/// What the sender takes from the handoff in one round.
pub struct Taken {
    /// The claim's token, the same for every callback claimed as it was written here.
    pub token: i64,
    pub webhooks: Vec<Webhook>,
    /// Callbacks that waited past their time: to release, not to send.
    pub stale: Vec<String>,
}

/// The handoff between the status writers and the webhook sender of one process.
pub struct CallbackHandoff {
    token: i64,
    /// A webhook sender runs in this process and takes what is handed over.
    open: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// In the order they were handed (a message has at most one here: only the head of its
    /// callbacks is claimed as it is written).
    waiting: VecDeque<Handed>,
    database_claimed_at: Option<Instant>,
    /// Callbacks handed over since the process started (for tests and metrics).
    handed: u64,
}

impl Default for CallbackHandoff {
    fn default() -> Self {
        CallbackHandoff {
            token: crate::store::leases::new_claim_token(),
            open: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }
}

impl CallbackHandoff {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn token(&self) -> i64 {
        self.token
    }

    /// The webhook sender starts taking what is handed over.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// The sender stops: nothing more is claimed as it is written, and the ids of the
    /// callbacks still waiting come back, to release.
    pub fn close(&self) -> Vec<String> {
        self.open.store(false, Ordering::SeqCst);
        self.state()
            .waiting
            .drain(..)
            .map(|handed| handed.webhook.id)
            .collect()
    }

    /// The claim for the next status write, with the time its lease starts, or `None` when
    /// no sender runs here or it is behind: the oldest callback waiting has waited a quarter
    /// of its lease (new ones then wait in the database, where a claim finds them in due
    /// order), or `CAPACITY` wait. `lease` is in microseconds, `now` this process's clock.
    pub fn birth_claim(&self, lease: i64, now: i64) -> Option<(CallbackBirthClaim, Instant)> {
        if !self.open.load(Ordering::SeqCst) {
            return None;
        }
        let state = self.state();
        let oldest = state.waiting.front().map(|handed| handed.claimed_at);
        if taker_is_behind(oldest, CAPACITY.saturating_sub(state.waiting.len()), lease) {
            return None;
        }
        Some((
            CallbackBirthClaim {
                token: self.token,
                lease,
                now,
            },
            Instant::now(),
        ))
    }

    /// Hands over callbacks claimed as they were written, once committed; `claimed_at` is
    /// when their lease started. They come back when the sender has stopped meanwhile: then
    /// the caller releases them.
    pub fn hand(
        &self,
        webhooks: Vec<Webhook>,
        claimed_at: Instant,
        lease: i64,
    ) -> std::result::Result<(), Vec<Webhook>> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(webhooks);
        }
        let send_by = half_lease_after(claimed_at, lease);
        let mut state = self.state();
        state.handed += webhooks.len() as u64;
        state
            .waiting
            .extend(webhooks.into_iter().map(|webhook| Handed {
                webhook,
                claimed_at,
                send_by,
            }));
        Ok(())
    }

    /// Whether the sender should claim from the database this round (`database_turn_due`).
    pub fn database_turn(&self) -> bool {
        let state = self.state();
        database_turn_due(state.waiting.is_empty(), state.database_claimed_at)
    }

    /// The sender claimed from the database.
    pub fn database_claimed(&self) {
        self.state().database_claimed_at = Some(Instant::now());
    }

    /// Up to `limit` callbacks, oldest first; those past their time are set aside.
    pub fn take(&self, limit: usize) -> Option<Taken> {
        let now = Instant::now();
        let mut state = self.state();
        if state.waiting.is_empty() {
            return None;
        }
        let mut webhooks = Vec::new();
        let mut stale = Vec::new();
        while webhooks.len() < limit {
            let Some(handed) = state.waiting.pop_front() else {
                break;
            };
            if handed.send_by <= now {
                stale.push(handed.webhook.id);
            } else {
                webhooks.push(handed.webhook);
            }
        }
        Some(Taken {
            token: self.token,
            webhooks,
            stale,
        })
    }

    /// Callbacks handed over since the process started.
    pub fn handed(&self) -> u64 {
        self.state().handed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::handoff::DATABASE_TURN;
    use crate::store::rows::WebhookKind;
    use std::time::Duration;

    fn webhook(id: &str) -> Webhook {
        Webhook {
            id: id.into(),
            kind: WebhookKind::Status,
            account_sid: "AC1".into(),
            message_sid: format!("SM{id}"),
            url: "http://127.0.0.1:9/cb".into(),
            method: "POST".into(),
            fallback_url: None,
            fallback_method: None,
            message_status: Some("sent".into()),
            error_code: None,
            done_date: None,
            payload: None,
            attempts: 0,
            created_at: 0,
        }
    }

    fn ids(webhooks: &[Webhook]) -> Vec<&str> {
        webhooks.iter().map(|w| w.id.as_str()).collect()
    }

    #[test]
    fn nothing_is_claimed_at_birth_unless_a_sender_takes_it() {
        let handoff = CallbackHandoff::default();
        assert!(handoff.birth_claim(1_000_000, 5).is_none(), "closed");
        assert!(handoff
            .hand(vec![webhook("a")], Instant::now(), 1_000_000)
            .is_err_and(|back| back.len() == 1));
        handoff.open();
        let (claim, _) = handoff.birth_claim(1_000_000, 5).unwrap();
        assert_eq!(
            claim,
            CallbackBirthClaim {
                token: handoff.token(),
                lease: 1_000_000,
                now: 5
            }
        );
        handoff
            .hand(vec![webhook("a"), webhook("b")], Instant::now(), 1_000_000)
            .unwrap();
        assert_eq!(handoff.handed(), 2);
        assert_eq!(handoff.close(), vec!["a".to_string(), "b".to_string()]);
        assert!(handoff.birth_claim(1_000_000, 5).is_none());
        assert!(handoff.take(10).is_none(), "closing emptied it");
    }

    #[test]
    fn callbacks_are_taken_in_order_and_the_stale_set_aside() {
        let handoff = CallbackHandoff::default();
        handoff.open();
        let long_ago = Instant::now() - Duration::from_secs(10);
        // A lease of 2 s: these had to go out within 1 s of their claim.
        handoff
            .hand(vec![webhook("old")], long_ago, 2_000_000)
            .unwrap();
        handoff
            .hand(
                vec![webhook("a"), webhook("b"), webhook("c")],
                Instant::now(),
                2_000_000,
            )
            .unwrap();
        let taken = handoff.take(2).unwrap();
        assert_eq!(taken.token, handoff.token());
        assert_eq!(taken.stale, vec!["old".to_string()]);
        assert_eq!(ids(&taken.webhooks), vec!["a", "b"]);
        let rest = handoff.take(10).unwrap();
        assert_eq!(ids(&rest.webhooks), vec!["c"]);
        assert!(rest.stale.is_empty());
        assert!(handoff.take(10).is_none());
    }

    #[test]
    fn a_sender_behind_gets_no_more_until_it_catches_up() {
        let handoff = CallbackHandoff::default();
        handoff.open();
        // Waited 3 s of a 10 s lease: past a quarter.
        handoff
            .hand(
                vec![webhook("a")],
                Instant::now() - Duration::from_secs(3),
                10_000_000,
            )
            .unwrap();
        assert!(handoff.birth_claim(10_000_000, 0).is_none());
        assert!(!handoff.database_turn() || handoff.take(0).is_some());
        handoff.take(10).unwrap();
        assert!(handoff.birth_claim(10_000_000, 0).is_some());
    }

    #[test]
    fn the_database_gets_its_turn_while_callbacks_wait() {
        let handoff = CallbackHandoff::default();
        handoff.open();
        assert!(handoff.database_turn(), "nothing waits");
        handoff
            .hand(vec![webhook("a")], Instant::now(), 10_000_000)
            .unwrap();
        assert!(
            handoff.database_turn(),
            "never claimed from the database yet"
        );
        handoff.database_claimed();
        assert!(!handoff.database_turn(), "claimed just now");
        handoff.state().database_claimed_at = Some(Instant::now() - DATABASE_TURN);
        assert!(handoff.database_turn());
    }
}
