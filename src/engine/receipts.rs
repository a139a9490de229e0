//! Delivery receipts: applies the receipts that came due (a carrier's `deliver_sm` receipt,
//! or the simulated carrier's scheduled one) to their messages, one batch per dispatcher round.
//! Reads `carrier_receipts` rows that came due (the simulated carrier writes its own receipts
//! there too) and deletes each in the transaction that applies it. Writes message
//! statuses, events and the status callbacks they queue. Run by the dispatcher loop.

use crate::error::Result;
use crate::service::App;

use super::dispatcher::BATCH;

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
