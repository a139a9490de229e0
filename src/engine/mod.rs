//! The engine: what runs in the background, beside the API. Every piece of work it does is a
//! row in the database first (a queued message, a due receipt, an outbox row), so a crash
//! loses nothing and, on PostgreSQL, several nodes split the work by claiming rows under
//! leases. A message's path, table by table:
//!
//! ```text
//! API create ──(group commit, service::writer)──▶ messages (queued / scheduled)
//!   ▶ dispatcher: claim (lease) → decide → carrier submit → outcome, events, usage,
//!     status callbacks ──▶ webhook_outbox
//!   ▶ carrier answers: submit_sm_resp (in the round) / deliver_sm receipt (engine::smpp)
//!     ──▶ carrier_receipts ──▶ receipts round: delivered / undelivered ──▶ webhook_outbox
//!   ▶ webhook sender: claim (lease) → POST, signed → done / retry / alert;
//!     inbound webhooks' TwiML replies ──▶ messages
//! ```
//!
//! One file per loop, each headed by what it claims, what it writes and what wakes it:
//! - [`dispatcher`]: the dispatcher loop (dispatch rounds, then [`receipts`], rentals and the
//!   inbound-parts sweep of [`smpp`]), on its own thread on SQLite;
//! - [`checkpoints`]: WAL checkpoints (SQLite files), beside the dispatcher;
//! - [`webhooks`]: the webhook sender, which also runs [`triggers`] and [`alarms`] when due,
//!   on its own thread on SQLite;
//! - [`heartbeats`]: node heartbeats and, on PostgreSQL, SMPP bind leases;
//! - [`smpp`]: what SMPP carriers send, stored as it arrives (started with the carrier by
//!   `App::new`, which owns its channel).
//!
//! [`start`] starts them; they stop when the shutdown signal fires, each after its round.

pub mod alarms;
pub mod checkpoints;
pub mod dispatcher;
pub mod heartbeats;
pub mod receipts;
pub mod smpp;
pub mod triggers;
pub mod webhooks;

use crate::service::App;

/// The loops [`start`] started.
pub struct Running {
    workers: tokio::sync::oneshot::Receiver<()>,
    heartbeats: tokio::task::JoinHandle<()>,
    webhooks: tokio::sync::oneshot::Receiver<()>,
}

impl Running {
    /// Waits until every loop has finished its round after the shutdown signal.
    pub async fn stopped(self) {
        let _ = self.workers.await;
        let _ = self.webhooks.await;
        let _ = self.heartbeats.await;
    }
}

/// Starts the dispatcher (with its checkpoints), the webhook sender and the heartbeats; they
/// run until `shutdown` turns true.
pub fn start(app: &App, shutdown: tokio::sync::watch::Receiver<bool>) -> std::io::Result<Running> {
    let workers = app.spawn_workers(shutdown.clone())?;
    let heartbeats = {
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { app.run_heartbeats(shutdown).await })
    };
    let webhooks = app.spawn_webhooks(shutdown)?;
    Ok(Running {
        workers,
        heartbeats,
        webhooks,
    })
}

impl App {
    /// Starts `run_workers`; the receiver resolves when they stop. On SQLite they get a thread
    /// of their own (`run_on_own_thread`), as the message writer does. On PostgreSQL they stay on the server's runtime, which owns the pool's
    /// connections.
    pub fn spawn_workers(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (finished, stopped) = tokio::sync::oneshot::channel();
        let app = self.clone();
        let run = move || async move {
            tokio::join!(
                app.run_workers(shutdown.clone()),
                app.run_checkpoints(shutdown)
            );
            let _ = finished.send(());
        };
        if self.store.backend() == crate::store::Backend::Postgres {
            tokio::spawn(run());
            return Ok(stopped);
        }
        // One server per SQLite file (see `spawn_webhooks`): taken before the dispatcher ends
        // the claims an earlier server left (`Store::end_claims_of_earlier_servers`).
        self.store.hold_webhook_outbox()?;
        crate::service::run_on_own_thread("dispatcher", run)?;
        Ok(stopped)
    }

    /// Starts `run_webhooks`; the receiver resolves when it stops. On SQLite it gets a thread
    /// of its own, as the dispatcher does: its reads are native (`Store::read_rows`) and hold
    /// the thread they run on, which then must not be one the API's requests wait for.
    pub fn spawn_webhooks(
        &self,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
        let (finished, stopped) = tokio::sync::oneshot::channel();
        let app = self.clone();
        let run = move || async move {
            app.run_webhooks(shutdown).await;
            let _ = finished.send(());
        };
        if self.store.backend() == crate::store::Backend::Postgres {
            tokio::spawn(run());
            return Ok(stopped);
        }
        // Its claims live in this process's memory: no other process may send them too.
        self.store.hold_webhook_outbox()?;
        crate::service::run_on_own_thread("webhooks", run)?;
        Ok(stopped)
    }
}
