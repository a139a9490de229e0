//! WAL checkpoints (SQLite files only): copies the write-ahead log into the database file
//! while the API's writes pause, and at least every `CHECKPOINT_AT_LEAST` under load. Claims
//! nothing; woken by its timer.

use crate::service::App;

/// How often the WAL is checkpointed while the API is paused, the longest a checkpoint waits
/// for such a pause, and which of them run on the write connection (see `Store::checkpoint`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
const CHECKPOINT_AT_LEAST: std::time::Duration = std::time::Duration::from_secs(10);
const WRITER_CHECKPOINT_EVERY: u64 = 16;

impl App {
    /// Checkpoints a SQLite file's WAL until `shutdown` fires: every `CHECKPOINT_EVERY` while
    /// the API is paused (`MessageWriter::lull`), and at least every `CHECKPOINT_AT_LEAST`
    /// under load. A checkpoint syncs the database file, and the disk then syncs the WAL for
    /// the API's commits more slowly: during a burst they would stretch the commits that meet
    /// them, while the WAL, growing for a few seconds, costs nothing.
    pub async fn run_checkpoints(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.store.has_wal() {
            return;
        }
        for round in 1u64.. {
            tokio::select! {
                _ = async {
                    tokio::time::sleep(CHECKPOINT_EVERY).await;
                    self.writer.lull(CHECKPOINT_AT_LEAST).await;
                } => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(err) = self
                .store
                .checkpoint(round % WRITER_CHECKPOINT_EVERY == 0)
                .await
            {
                tracing::warn!(%err, "WAL checkpoint failed");
            }
        }
    }
}
