//! Messages claimed as they are written. The API's group writer writes each new message that
//! is due at once already leased to this node's dispatcher (`store::queue::BirthClaim`) and,
//! once the row is durable, hands it over here in memory: the dispatcher takes it from here
//! instead of finding and claiming it in the database, which on PostgreSQL rewrote every
//! message's row once more (the largest statement of the pipeline's, measured).
//!
//! Nothing is held only here: every message handed over is a durable row under a lease with
//! this node's token. If the node dies, another claims the messages when the lease runs out,
//! as it would any claim of a dead node; messages this node will not dispatch (it stops, or
//! one waited here past half its lease) are released in the database at once.
//!
//! The dispatcher still claims from the database: scheduled, deferred and retried messages,
//! what other nodes or a full handoff left unclaimed. It does so whenever nothing waits here,
//! and at least every `DATABASE_TURN` while something does, so neither kind starves.

use crate::store::messages::Claimed;
use crate::store::queue::BirthClaim;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most messages waiting here, whatever their age (memory).
const CAPACITY: usize = 65_536;

/// How often, at least, the dispatcher claims from the database while messages wait here
/// (and the webhook sender while callbacks wait in `super::callback_handoff`).
pub const DATABASE_TURN: Duration = Duration::from_millis(100);

/// The rules both handoffs follow (this one and `super::callback_handoff`): whether the
/// taker is behind, so that new work waits in the database instead: `CAPACITY`-like room is
/// gone, or the oldest item waiting (its lease started at `oldest`) has waited a quarter of
/// its lease of `lease` microseconds.
pub(super) fn taker_is_behind(oldest: Option<Instant>, room: usize, lease: i64) -> bool {
    let quarter = Duration::from_micros(lease.max(0) as u64 / 4);
    room == 0 || oldest.is_some_and(|at| at.elapsed() >= quarter)
}

/// When an item whose lease of `lease` microseconds started at `claimed_at` must have gone
/// out: half its lease (the other half covers the answer and its record).
pub(super) fn half_lease_after(claimed_at: Instant, lease: i64) -> Instant {
    claimed_at + Duration::from_micros(lease.max(0) as u64 / 2)
}

/// Whether the taker should claim from the database this round: nothing waits in the
/// handoff, or its last database claim (at `last`) is `DATABASE_TURN` old.
pub(super) fn database_turn_due(nothing_waits: bool, last: Option<Instant>) -> bool {
    nothing_waits || last.is_none_or(|at| at.elapsed() >= DATABASE_TURN)
}

/// A message handed over, when its lease started, and the time by which its dispatch must
/// start (half its lease, as for a database claim: the other half covers the carrier's
/// answer and the record).
struct Handed {
    claimed: Claimed,
    claimed_at: Instant,
    submit_by: Instant,
}

/// What the dispatcher takes from the handoff in one round.
pub struct Taken {
    /// The claim's token, the same for every message claimed as it was written here.
    pub token: i64,
    pub messages: Vec<Claimed>,
    /// When the earliest of `messages` must have been submitted.
    pub submit_by: Instant,
    /// Messages that waited past their time: to release, not to send.
    pub stale: Vec<String>,
}

/// The handoff between the group writer and the dispatcher of one process.
pub struct Handoff {
    /// The fencing token of every claim made as messages are written here.
    token: i64,
    /// A dispatcher runs in this process and takes what is handed over.
    open: AtomicBool,
    /// It can send what it takes: every SMPP route has a session bound here. A node without
    /// would defer the messages to one with (its bind slots are the cluster's), so it leaves
    /// them to the database's claims.
    sending: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Each account's messages, oldest first.
    by_account: HashMap<String, VecDeque<Handed>>,
    /// The accounts with messages waiting, in the order they take their turns: a round
    /// takes one message of each in turn, so one account's burst does not hold up another's
    /// messages (as the database's claims take accounts in turns).
    turns: VecDeque<String>,
    waiting: usize,
    database_claimed_at: Option<Instant>,
}

impl State {
    fn oldest(&self) -> Option<Instant> {
        self.by_account
            .values()
            .filter_map(|queue| queue.front().map(|handed| handed.claimed_at))
            .min()
    }
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff {
            token: crate::store::leases::new_claim_token(),
            open: AtomicBool::new(false),
            sending: AtomicBool::new(true),
            state: Mutex::default(),
        }
    }
}

impl Handoff {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn token(&self) -> i64 {
        self.token
    }

    /// The dispatcher starts taking what is handed over.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Whether the dispatcher can send what it takes now (see `Handoff::sending`).
    pub fn set_sending(&self, sending: bool) {
        self.sending.store(sending, Ordering::Relaxed);
    }

    /// The dispatcher stops: nothing more is claimed as it is written, and the SIDs of the
    /// messages still waiting come back, to release.
    pub fn close(&self) -> Vec<String> {
        self.open.store(false, Ordering::SeqCst);
        let mut state = self.state();
        state.turns.clear();
        state.waiting = 0;
        state
            .by_account
            .drain()
            .flat_map(|(_, queue)| queue.into_iter().map(|h| h.claimed.message.sid))
            .collect()
    }

    /// The claim for the next group the writer writes, with the time its lease starts, or
    /// `None` when no dispatcher runs here, it cannot send (`set_sending`), or it is behind:
    /// the oldest message waiting has
    /// waited a quarter of its lease (then new messages wait in the database, where a claim
    /// finds them in due order), or `CAPACITY` wait. `lease` is the dispatcher's lease, in
    /// microseconds, and `now` this process's clock.
    pub fn birth_claim(&self, lease: i64, now: i64) -> Option<(BirthClaim, Instant)> {
        if !self.open.load(Ordering::SeqCst) || !self.sending.load(Ordering::Relaxed) {
            return None;
        }
        let state = self.state();
        let room = CAPACITY.saturating_sub(state.waiting);
        if taker_is_behind(state.oldest(), room, lease) {
            return None;
        }
        Some((
            BirthClaim {
                token: self.token,
                lease_until: now + lease,
                count: room,
            },
            Instant::now(),
        ))
    }

    /// Hands over messages claimed as they were written, once their rows are durable;
    /// `claimed_at` is when their lease started. They come back when the dispatcher has
    /// stopped meanwhile: then the caller releases them.
    pub fn hand(
        &self,
        messages: Vec<Claimed>,
        claimed_at: Instant,
        lease: i64,
    ) -> std::result::Result<(), Vec<Claimed>> {
        if !self.open.load(Ordering::SeqCst) {
            return Err(messages);
        }
        let submit_by = half_lease_after(claimed_at, lease);
        let mut state = self.state();
        state.waiting += messages.len();
        for claimed in messages {
            let account = claimed.message.account_sid.clone();
            let handed = Handed {
                claimed,
                claimed_at,
                submit_by,
            };
            // An account is in `turns` exactly while it has messages here.
            match state.by_account.get_mut(&account) {
                Some(queue) => queue.push_back(handed),
                None => {
                    state
                        .by_account
                        .insert(account.clone(), VecDeque::from([handed]));
                    state.turns.push_back(account);
                }
            }
        }
        Ok(())
    }

    /// Whether the dispatcher should claim from the database this round: nothing waits here,
    /// or its last database claim is `DATABASE_TURN` old.
    pub fn database_turn(&self) -> bool {
        let state = self.state();
        database_turn_due(state.waiting == 0, state.database_claimed_at)
    }

    /// The dispatcher claimed from the database.
    pub fn database_claimed(&self) {
        self.state().database_claimed_at = Some(Instant::now());
    }

    /// Up to `limit` messages, a message of each account in turn, each account's oldest
    /// first; those past their submit time are set aside.
    pub fn take(&self, limit: usize) -> Option<Taken> {
        let now = Instant::now();
        let mut state = self.state();
        if state.waiting == 0 {
            return None;
        }
        let mut messages = Vec::new();
        let mut stale = Vec::new();
        let mut submit_by: Option<Instant> = None;
        while messages.len() < limit {
            let Some(account) = state.turns.pop_front() else {
                break;
            };
            let Some(queue) = state.by_account.get_mut(&account) else {
                continue;
            };
            let handed = queue.pop_front();
            if queue.is_empty() {
                state.by_account.remove(&account);
            } else {
                state.turns.push_back(account);
            }
            let Some(handed) = handed else {
                continue;
            };
            state.waiting -= 1;
            if handed.submit_by <= now {
                stale.push(handed.claimed.message.sid);
                continue;
            }
            submit_by = Some(submit_by.map_or(handed.submit_by, |t| t.min(handed.submit_by)));
            messages.push(handed.claimed);
        }
        Some(Taken {
            token: self.token,
            messages,
            submit_by: submit_by.unwrap_or(now),
            stale,
        })
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.state().waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(sid: &str) -> Claimed {
        claimed_of("AC1", sid)
    }

    fn claimed_of(account: &str, sid: &str) -> Claimed {
        use crate::domain::message::{Direction, Message, MessageStatus};
        let message = Message {
            sid: sid.to_string(),
            account_sid: account.into(),
            messaging_service_sid: None,
            direction: Direction::OutboundApi,
            from: Some("+14155550100".into()),
            to: "+14155550101".into(),
            body: "hi".into(),
            encoding: "GSM".into(),
            num_segments: 1,
            num_media: 0,
            status: MessageStatus::Queued,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: "USD".into(),
            status_callback: None,
            validity_period: 14_400,
            send_at: None,
            date_created: 0,
            date_updated: 0,
            date_sent: None,
        };
        Claimed {
            message,
            attempts: 0,
            pace_slot: None,
            opt_out_exempt: false,
        }
    }

    #[test]
    fn nothing_is_claimed_at_birth_unless_a_dispatcher_takes_it() {
        let handoff = Handoff::default();
        assert!(handoff.birth_claim(1_000_000, 5).is_none(), "closed");
        assert!(handoff
            .hand(vec![claimed("SM1")], Instant::now(), 1_000_000)
            .is_err_and(|back| back.len() == 1));
        handoff.open();
        let (claim, _) = handoff.birth_claim(1_000_000, 5).expect("open");
        assert_eq!(claim.token, handoff.token());
        assert_eq!(claim.lease_until, 1_000_005);
        assert_eq!(claim.count, CAPACITY);
        assert!(handoff
            .hand(
                vec![claimed("SM1"), claimed("SM2")],
                Instant::now(),
                1_000_000
            )
            .is_ok());
        assert_eq!(
            handoff.birth_claim(1_000_000, 5).map(|(c, _)| c.count),
            Some(CAPACITY - 2)
        );
        assert_eq!(handoff.close(), vec!["SM1".to_string(), "SM2".to_string()]);
        assert!(handoff.birth_claim(1_000_000, 5).is_none(), "closed again");
    }

    #[test]
    fn a_dispatcher_that_cannot_send_gets_no_new_messages() {
        let handoff = Handoff::default();
        handoff.open();
        handoff.set_sending(false);
        assert!(handoff.birth_claim(1_000_000, 0).is_none());
        handoff.set_sending(true);
        assert!(handoff.birth_claim(1_000_000, 0).is_some());
    }

    #[test]
    fn a_full_handoff_claims_nothing_more() {
        let handoff = Handoff::default();
        handoff.open();
        let many: Vec<Claimed> = (0..CAPACITY).map(|i| claimed(&format!("SM{i}"))).collect();
        assert!(handoff.hand(many, Instant::now(), 1_000_000).is_ok());
        assert!(handoff.birth_claim(1_000_000, 0).is_none());
        let taken = handoff.take(10).expect("waiting");
        assert_eq!(taken.messages.len(), 10);
        assert_eq!(
            handoff.birth_claim(1_000_000, 0).map(|(c, _)| c.count),
            Some(10)
        );
    }

    #[test]
    fn messages_go_oldest_first_and_those_past_half_their_lease_are_set_aside() {
        let handoff = Handoff::default();
        handoff.open();
        let long_ago = Instant::now() - Duration::from_secs(10);
        // A lease of 10 s from 10 s ago: half of it is over.
        assert!(handoff
            .hand(vec![claimed("SM-old")], long_ago, 10_000_000)
            .is_ok());
        let fresh = Instant::now();
        assert!(handoff
            .hand(
                vec![claimed("SM1"), claimed("SM2"), claimed("SM3")],
                fresh,
                10_000_000
            )
            .is_ok());
        let taken = handoff.take(2).expect("waiting");
        assert_eq!(taken.token, handoff.token());
        assert_eq!(taken.stale, vec!["SM-old".to_string()]);
        let sids: Vec<&str> = taken
            .messages
            .iter()
            .map(|c| c.message.sid.as_str())
            .collect();
        assert_eq!(sids, ["SM1", "SM2"]);
        assert_eq!(taken.submit_by, fresh + Duration::from_secs(5));
        assert_eq!(handoff.waiting(), 1);
        let rest = handoff.take(10).expect("one left");
        assert_eq!(rest.messages.len(), 1);
        assert!(handoff.take(10).is_none());
    }

    #[test]
    fn accounts_take_turns() {
        let handoff = Handoff::default();
        handoff.open();
        let at = Instant::now();
        assert!(handoff
            .hand(
                vec![
                    claimed_of("AC1", "SM1"),
                    claimed_of("AC1", "SM2"),
                    claimed_of("AC1", "SM3")
                ],
                at,
                30_000_000
            )
            .is_ok());
        assert!(handoff
            .hand(vec![claimed_of("AC2", "SM4")], at, 30_000_000)
            .is_ok());
        let taken = handoff.take(3).expect("waiting");
        let sids: Vec<&str> = taken
            .messages
            .iter()
            .map(|c| c.message.sid.as_str())
            .collect();
        assert_eq!(
            sids,
            ["SM1", "SM4", "SM2"],
            "AC2's message does not wait for AC1's"
        );
        let rest = handoff.take(3).expect("one left");
        assert_eq!(rest.messages[0].message.sid, "SM3");
        assert_eq!(handoff.waiting(), 0);
    }

    #[test]
    fn a_dispatcher_a_quarter_lease_behind_gets_no_new_messages() {
        let handoff = Handoff::default();
        handoff.open();
        let lease = 8_000_000;
        assert!(handoff
            .hand(
                vec![claimed("SM1")],
                Instant::now() - Duration::from_secs(1),
                lease
            )
            .is_ok());
        assert!(handoff.birth_claim(lease, 0).is_some(), "1 s behind of 8");
        assert!(handoff
            .hand(
                vec![claimed_of("AC2", "SM2")],
                Instant::now() - Duration::from_secs(2),
                lease
            )
            .is_ok());
        assert!(handoff.birth_claim(lease, 0).is_none(), "2 s behind of 8");
        handoff.take(1).expect("waiting");
        handoff.take(1).expect("waiting");
        assert!(handoff.birth_claim(lease, 0).is_some(), "caught up");
    }

    #[test]
    fn the_database_gets_its_turn_while_messages_wait() {
        let handoff = Handoff::default();
        handoff.open();
        assert!(handoff.database_turn(), "nothing waits");
        assert!(handoff
            .hand(vec![claimed("SM1")], Instant::now(), 30_000_000)
            .is_ok());
        assert!(
            handoff.database_turn(),
            "never claimed from the database yet"
        );
        handoff.database_claimed();
        assert!(!handoff.database_turn(), "just claimed");
        handoff.state().database_claimed_at = Some(Instant::now() - DATABASE_TURN);
        assert!(handoff.database_turn(), "its turn came");
    }
}
