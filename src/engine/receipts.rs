//! Delivery receipts: applies the receipts that came due (a carrier's `deliver_sm` receipt,
//! or the simulated carrier's scheduled one) to their messages, one batch per dispatcher round
//! (or per `RECEIPTS_WAIT_WHILE_BEHIND` while the dispatcher is behind).
//! Reads `carrier_receipts` rows that came due (the simulated carrier writes its own receipts
//! there too) and deletes each in the transaction that applies it. Writes message
//! statuses, events and the status callbacks they queue. Run by the dispatcher loop, which
//! puts receipts after sending while it is behind (`ReceiptRounds`).

use crate::error::Result;
use crate::service::App;

use super::dispatcher::BATCH;
use std::time::{Duration, Instant};

/// While the dispatcher is behind, how long receipts wait between two of their rounds.
const RECEIPTS_WAIT_WHILE_BEHIND: Duration = Duration::from_millis(100);

/// When the dispatcher loop applies receipts. A round writes statuses and callbacks for
/// messages already sent, on SQLite holding the one write connection that the API's inserts
/// and the dispatcher's records wait for. While the dispatcher is behind (its last round took
/// all it was allowed), messages waiting to be sent come first: receipts get one round (a
/// dispatcher round's batch) per `RECEIPTS_WAIT_WHILE_BEHIND`, and a round after every
/// dispatch round again once the dispatcher has caught up. Nothing waits only in memory: the
/// receipts wait as `carrier_receipts` rows.
#[derive(Debug, Default)]
pub struct ReceiptRounds {
    last: Option<Instant>,
}

impl ReceiptRounds {
    /// Whether a receipt round runs now, after a dispatch round that was (`behind`) or was
    /// not full; counts it as run if so.
    pub fn due(&mut self, behind: bool, now: Instant) -> bool {
        let waited_enough = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= RECEIPTS_WAIT_WHILE_BEHIND);
        if behind && !waited_enough {
            return false;
        }
        self.last = Some(now);
        true
    }
}

impl App {
    /// Applies the delivery receipts due at `now`. Returns how many changed a message.
    pub async fn apply_receipts(&self, now: i64) -> Result<usize> {
        self.apply_receipts_limited(now, BATCH).await
    }

    /// `apply_receipts`, at most `limit` of them.
    pub(crate) async fn apply_receipts_limited(&self, now: i64, limit: i64) -> Result<usize> {
        let birth = self.callback_birth_claim();
        let applied = self
            .store
            .apply_due_receipts(now, limit, birth.map(|(claim, _)| claim))
            .await?;
        self.hand_callbacks(applied.callbacks, birth.map(|(_, at)| at))
            .await;
        self.observe_changes(&applied.changes).await;
        Ok(applied.changes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_wait_while_the_dispatcher_is_behind_but_never_longer_than_the_bound() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut rounds = ReceiptRounds::default();
        // Keeping up: a receipt round after every dispatch round.
        assert!(rounds.due(false, at(0)));
        assert!(rounds.due(false, at(1)));
        // Behind: none until the bound has passed since the last one, then one.
        assert!(!rounds.due(true, at(2)));
        assert!(!rounds.due(true, at(100)));
        assert!(rounds.due(true, at(101)));
        assert!(!rounds.due(true, at(150)));
        assert!(!rounds.due(true, at(200)));
        assert!(rounds.due(true, at(201)));
        // Caught up: at once again, however recent the last round.
        assert!(rounds.due(false, at(202)));
        // The first round of a loop that starts behind is not held back.
        assert!(ReceiptRounds::default().due(true, at(0)));
    }
}
