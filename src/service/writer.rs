//! Group commit for new messages: concurrent API requests hand their message to one writer
//! task, which commits everything waiting in one transaction and then answers each request.
//! A request is answered only after its row is committed and durable, so a 201 still means
//! durable, but the database sees one commit per batch instead of one per message, and on
//! SQLite the next batch commits while the disk syncs the last one (`store::Durable`).

use crate::domain::message::{Media, Message};
use crate::domain::time::now_micros;
use crate::domain::usage::Money;
use crate::error::{Error, Result};
use crate::store::messages::Admission;
use crate::store::{Backend, Store};
use tokio::sync::{mpsc, oneshot};

/// Most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// A new message, its media, what it will cost (for spend caps), and who waits for it.
type Job = (Message, Vec<Media>, Money, oneshot::Sender<Result<()>>);

fn refusal(admission: &Admission) -> Result<()> {
    match admission {
        Admission::Accepted => Ok(()),
        Admission::OptedOut => Err(Error::invalid(
            21610,
            "Attempt to send to unsubscribed recipient",
        )),
        Admission::OverCap(reason) => Err(Error::CapReached {
            message: format!("{reason} (a cap set by the parent account)"),
        }),
    }
}

#[derive(Clone)]
pub struct MessageWriter {
    queue: Option<mpsc::Sender<Job>>,
    store: Store,
}

impl MessageWriter {
    /// Starts the writer when a Tokio runtime is running (otherwise writes go straight to the
    /// store, one transaction each).
    pub fn start(store: Store) -> MessageWriter {
        let queue = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|handle| {
                let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
                if store.backend() == Backend::Postgres {
                    // PostgreSQL connections belong to the runtime that opened them: stay on it.
                    handle.spawn(run(store.clone(), rx));
                    return Some(tx);
                }
                // On SQLite the writer gets a thread of its own (see `run_on_own_thread`).
                let writer_store = store.clone();
                match super::run_on_own_thread("message-writer", move || run(writer_store, rx)) {
                    Ok(()) => Some(tx),
                    Err(err) => {
                        tracing::error!(%err, "the message writer could not start");
                        None
                    }
                }
            });
        MessageWriter { queue, store }
    }

    /// Commits one new API message (with its media); returns once it is durable. A
    /// recipient who opted out of its sender or service gets 21610 and nothing is written.
    pub async fn write(&self, message: Message, media: Vec<Media>, estimate: Money) -> Result<()> {
        let Some(queue) = &self.queue else {
            let admissions = self
                .store
                .insert_new_messages(&[(message, media)], &[estimate], now_micros())
                .await?;
            return match admissions.first() {
                Some(admission) => refusal(admission),
                None => Err(Error::internal("the message was not written")),
            };
        };
        let (done, wait) = oneshot::channel();
        queue
            .send((message, media, estimate, done))
            .await
            .map_err(|_| Error::internal("message writer stopped"))?;
        wait.await
            .map_err(|_| Error::internal("message writer dropped a message"))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<(Message, Vec<Media>)> = jobs
            .iter()
            .map(|(m, media, _, _)| (m.clone(), media.clone()))
            .collect();
        let estimates: Vec<Money> = jobs.iter().map(|(_, _, estimate, _)| *estimate).collect();
        let result = store
            .insert_new_messages_deferred(&batch, &estimates, now_micros())
            .await;
        let waiters: Vec<_> = jobs.drain(..).map(|(_, _, _, done)| done).collect();
        // The batch is answered once its commit is durable, while this loop already commits
        // the next one.
        tokio::spawn(async move {
            let result = match result {
                Ok((admissions, durable)) => durable.wait().await.map(|()| admissions),
                Err(err) => Err(err),
            };
            for (i, done) in waiters.into_iter().enumerate() {
                let answer = match &result {
                    Ok(admissions) => match admissions.get(i) {
                        Some(admission) => refusal(admission),
                        None => Err(Error::internal("the message was not written")),
                    },
                    Err(err) => Err(err.clone()),
                };
                let _ = done.send(answer);
            }
        });
    }
}
