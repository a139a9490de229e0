//! Group commit for new messages: concurrent API requests hand their message to one writer
//! task, which commits everything waiting in one transaction and then answers each request.
//! A request is answered only after its row is committed and durable, so a 201 still means
//! durable, but the database sees one commit per batch instead of one per message, and on
//! SQLite the next batch commits while the disk syncs the last one (`store::Durable`).

use super::handoff::Handoff;
use crate::domain::message::{IdempotencyKey, Media, Message};
use crate::domain::time::now_micros;
use crate::domain::usage::Money;
use crate::error::{Error, Result};
use crate::store::messages::Claimed;
use crate::store::queue::{due_at_once, BirthClaim, Terms};
use crate::store::rows::Admission;
use crate::store::{Backend, Durable, Store, WriteSession};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// A new message, its media, what it will cost (for spend caps), its idempotency key, and who
/// waits for it.
type Job = (
    Message,
    Vec<Media>,
    Money,
    Option<IdempotencyKey>,
    oneshot::Sender<Result<Written>>,
);

/// What the writer did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Committed, durable.
    New,
    /// Not written: its idempotency key belongs to the earlier message `sid`, created by the
    /// same request (`same_request`) or by a different one.
    Existing { sid: String, same_request: bool },
}

fn answer(admission: &Admission) -> Result<Written> {
    match admission {
        Admission::Accepted => Ok(Written::New),
        Admission::Duplicate { sid, same_request } => Ok(Written::Existing {
            sid: sid.clone(),
            same_request: *same_request,
        }),
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
    waiting: Arc<Waiting>,
}

/// Where the writer hands the messages it claims as it writes them (see `super::handoff`).
#[derive(Clone)]
struct Handing {
    handoff: Arc<Handoff>,
    /// The dispatcher's lease, in microseconds.
    lease: i64,
}

/// API requests waiting for their message to be written, when the last one arrived, and a
/// signal when none wait.
struct Waiting {
    requests: AtomicUsize,
    /// Microseconds from `epoch` to the last request's arrival.
    last_arrival: AtomicU64,
    epoch: tokio::time::Instant,
    none: Notify,
}

impl Default for Waiting {
    fn default() -> Self {
        Waiting {
            requests: AtomicUsize::new(0),
            last_arrival: AtomicU64::new(0),
            epoch: tokio::time::Instant::now(),
            none: Notify::new(),
        }
    }
}

/// How long no request may have arrived for the API to count as paused. Under load the
/// requests of one group are all answered together and none waits for a moment, but the next
/// ones arrive within microseconds; a pause means the clients have stopped sending.
const QUIET: Duration = Duration::from_millis(20);

impl Waiting {
    fn arrive(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let since_epoch = self.epoch.elapsed().as_micros() as u64;
        self.last_arrival.fetch_max(since_epoch, Ordering::SeqCst);
    }

    async fn lull(&self, at_most: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let none = self.none.notified();
            if self.requests.load(Ordering::SeqCst) == 0 {
                let last =
                    self.epoch + Duration::from_micros(self.last_arrival.load(Ordering::SeqCst));
                let quiet_from = last + QUIET;
                if tokio::time::Instant::now() >= quiet_from {
                    return true;
                }
                if quiet_from > deadline {
                    tokio::time::sleep_until(deadline).await;
                    return false;
                }
                tokio::time::sleep_until(quiet_from).await;
                continue;
            }
            tokio::select! {
                _ = none => {}
                _ = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }
}

/// Counts a request as waiting until dropped (however the request ends).
struct WaitingRequest<'a>(&'a Waiting);

impl<'a> WaitingRequest<'a> {
    fn new(waiting: &'a Waiting) -> Self {
        waiting.arrive();
        WaitingRequest(waiting)
    }
}

impl Drop for WaitingRequest<'_> {
    fn drop(&mut self) {
        if self.0.requests.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

impl MessageWriter {
    /// Starts the writer when a Tokio runtime is running (otherwise writes go straight to the
    /// store, one transaction each).
    pub fn start(store: Store, handoff: Arc<Handoff>, lease: i64) -> MessageWriter {
        let handing = Handing { handoff, lease };
        let queue = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|handle| {
                let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
                if store.backend() == Backend::Postgres {
                    // PostgreSQL connections belong to the runtime that opened them: stay on it.
                    handle.spawn(run(store.clone(), rx, handing));
                    return Some(tx);
                }
                // On SQLite the writer gets a thread of its own (see `run_on_own_thread`).
                let writer_store = store.clone();
                match super::run_on_own_thread("message-writer", move || {
                    run(writer_store, rx, handing)
                }) {
                    Ok(()) => Some(tx),
                    Err(err) => {
                        tracing::error!(%err, "the message writer could not start");
                        None
                    }
                }
            });
        MessageWriter {
            queue,
            store,
            waiting: Arc::default(),
        }
    }

    /// Waits until no API request waits for a write and none arrived for `QUIET` (true), or
    /// `at_most` (false). The dispatcher calls it before a round: its transactions hold the
    /// one write connection for several ms, and every request arriving meanwhile would wait
    /// behind them. Bounded, so a steady stream of requests slows dispatching down but never
    /// stops it.
    pub async fn lull(&self, at_most: Duration) -> bool {
        self.waiting.lull(at_most).await
    }

    /// Commits one new API message (with its media); returns once it is durable. A
    /// recipient who opted out of its sender or service gets 21610 and nothing is written;
    /// so does a message whose idempotency key an earlier one has (`Written::Existing`).
    pub async fn write(
        &self,
        message: Message,
        media: Vec<Media>,
        estimate: Money,
        key: Option<IdempotencyKey>,
    ) -> Result<Written> {
        let _waiting = WaitingRequest::new(&self.waiting);
        let Some(queue) = &self.queue else {
            let batch = [(message, media)];
            let mut session = None;
            let (admission, durable) =
                write_alone(&self.store, &mut session, &batch[0], estimate, key).await?;
            durable.wait().await?;
            return answer(&admission);
        };
        let (done, wait) = oneshot::channel();
        queue
            .send((message, media, estimate, key, done))
            .await
            .map_err(|_| Error::internal("message writer stopped"))?;
        wait.await
            .map_err(|_| Error::internal("message writer dropped a message"))?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>, handing: Handing) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // Held while groups keep coming (see `WriteSession`).
    let mut session: Option<WriteSession> = None;
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut batch: Vec<(Message, Vec<Media>)> = Vec::with_capacity(jobs.len());
        let mut estimates: Vec<Money> = Vec::with_capacity(jobs.len());
        let mut keys = Vec::with_capacity(jobs.len());
        let mut waiters = Vec::with_capacity(jobs.len());
        for (message, media, estimate, key, done) in jobs.drain(..) {
            batch.push((message, media));
            estimates.push(estimate);
            keys.push(Terms {
                idempotency: key,
                ..Terms::default()
            });
            waiters.push(done);
        }
        metrics::histogram!(crate::telemetry::WRITE_GROUP_SIZE).record(batch.len() as f64);
        let started = std::time::Instant::now();
        let birth = handing.handoff.birth_claim(handing.lease, now_micros());
        let claim = birth.map(|(claim, _)| claim);
        let result = match write_group(&store, &mut session, &batch, &estimates, &keys, claim).await
        {
            Ok(written) => {
                metrics::histogram!(crate::telemetry::COMMIT_DURATION)
                    .record(started.elapsed().as_secs_f64());
                // The batch is not needed again: its messages move to the handoff.
                let handed = birth.map(|(claim, claimed_at)| {
                    (
                        born_claimed(std::mem::take(&mut batch), &written.0, claim.count),
                        claimed_at,
                    )
                });
                GroupResult::Whole(written, handed)
            }
            Err(err) => {
                // One bad message (or one conflict too many) must not fail the requests of
                // others, maybe other tenants', that were grouped with it: each is tried alone.
                tracing::warn!(%err, messages = batch.len(), "a message group failed; writing its messages one by one");
                session = None;
                let mut members = Vec::with_capacity(batch.len());
                for (i, item) in batch.iter().enumerate() {
                    let estimate = estimates.get(i).copied().unwrap_or(0);
                    let key = keys.get(i).and_then(|t| t.idempotency.clone());
                    let written = write_alone(&store, &mut session, item, estimate, key).await;
                    if written.is_err() {
                        session = None;
                    }
                    members.push(written);
                }
                GroupResult::Members(members)
            }
        };
        if rx.is_empty() || session.as_ref().is_some_and(|s| s.others_wait()) {
            session = None;
        }
        // The batch is answered once its commit is durable, while this loop already commits
        // the next one.
        tokio::spawn(answer_when_durable(
            result,
            waiters,
            store.clone(),
            handing.clone(),
        ));
    }
}

/// The messages of a group that its `BirthClaim` claimed: the first `count` accepted ones
/// due at once, in the order the store wrote them (`store::queue::BirthClaim`).
fn born_claimed(
    batch: Vec<(Message, Vec<Media>)>,
    admissions: &[Admission],
    count: usize,
) -> Vec<Claimed> {
    batch
        .into_iter()
        .zip(admissions)
        .filter(|((m, _), a)| **a == Admission::Accepted && due_at_once(m))
        .take(count)
        .map(|((m, _), _)| Claimed {
            message: m,
            attempts: 0,
            pace_slot: None,
            // The API's messages never are (`Terms::opt_out_exempt`).
            opt_out_exempt: false,
        })
        .collect()
}

/// How a group was written: in one transaction (with the messages it claimed for this node's
/// dispatcher, and when), or (after that failed) one by one.
enum GroupResult {
    Whole(
        (Vec<Admission>, Durable),
        Option<(Vec<Claimed>, std::time::Instant)>,
    ),
    Members(Vec<Result<(Admission, Durable)>>),
}

async fn answer_when_durable(
    result: GroupResult,
    waiters: Vec<oneshot::Sender<Result<Written>>>,
    store: Store,
    handing: Handing,
) {
    match result {
        GroupResult::Whole((admissions, durable), handed) => {
            let durable = durable.wait().await;
            // The dispatcher gets the messages once their rows are durable, as a claim from
            // the database would; if it stopped meanwhile they are released for any other.
            if let (Ok(()), Some((claimed, claimed_at))) = (&durable, handed) {
                if let Err(back) = handing.handoff.hand(claimed, claimed_at, handing.lease) {
                    let sids: Vec<&str> = back.iter().map(|c| c.message.sid.as_str()).collect();
                    if let Err(err) = store
                        .release_message_claims(handing.handoff.token(), &sids, now_micros())
                        .await
                    {
                        tracing::warn!(%err, "releasing messages claimed for a stopped dispatcher failed; they are claimed again after their lease");
                    }
                }
            }
            for (i, done) in waiters.into_iter().enumerate() {
                let written = match (&durable, admissions.get(i)) {
                    (Err(err), _) => Err(err.clone()),
                    (Ok(()), Some(admission)) => answer(admission),
                    (Ok(()), None) => Err(Error::internal("the message was not written")),
                };
                let _ = done.send(written);
            }
        }
        GroupResult::Members(members) => {
            for (member, done) in members.into_iter().zip(waiters) {
                let written = match member {
                    Ok((admission, durable)) => {
                        durable.wait().await.and_then(|()| answer(&admission))
                    }
                    Err(err) => Err(err),
                };
                let _ = done.send(written);
            }
        }
    }
}

/// Writes one message in a transaction of its own. If that fails, the message may still have
/// been committed (an error after the commit reached the database, or an earlier attempt of
/// its group that committed before failing to say so): a message found stored under its SID
/// counts as written, so its request hears 201 for it, not an error that invites a resend.
async fn write_alone(
    store: &Store,
    session: &mut Option<WriteSession>,
    item: &(Message, Vec<Media>),
    estimate: Money,
    key: Option<IdempotencyKey>,
) -> Result<(Admission, Durable)> {
    let written = write_group(
        store,
        session,
        std::slice::from_ref(item),
        &[estimate],
        &[Terms {
            idempotency: key,
            ..Terms::default()
        }],
        // Alone after its group failed: written unclaimed, for the database's claims.
        None,
    )
    .await;
    match written {
        Ok((admissions, durable)) => match admissions.into_iter().next() {
            Some(admission) => Ok((admission, durable)),
            None => Err(Error::internal("the message was not written")),
        },
        Err(err) => {
            *session = None;
            let (message, _) = item;
            match store.message(&message.account_sid, &message.sid).await {
                Ok(Some(_)) => {
                    tracing::warn!(%err, sid = %message.sid, "the write of a message failed after its commit");
                    Ok((Admission::Accepted, store.durable()))
                }
                _ => Err(err),
            }
        }
    }
}

/// Times a group is tried when it conflicts with another node's transaction.
const GROUP_ATTEMPTS: u32 = 5;

/// Commits one group in a transaction of `session`, opening the session if needed. A group
/// that hits a deadlock or serialization failure (several nodes writing the same counters on
/// PostgreSQL) was rolled back whole: it is tried again, after a short random pause, rather
/// than failing every request in it.
async fn write_group(
    store: &Store,
    session: &mut Option<WriteSession>,
    batch: &[(Message, Vec<Media>)],
    estimates: &[Money],
    terms: &[Terms],
    claim: Option<BirthClaim>,
) -> Result<(Vec<Admission>, Durable)> {
    let mut attempt = 1;
    loop {
        let open = match session {
            Some(open) => open,
            None => session.insert(store.write_session().await?),
        };
        match open
            .insert_new_messages(batch, estimates, terms, now_micros(), claim)
            .await
        {
            Err(err) if err.is_transient() && attempt < GROUP_ATTEMPTS => {
                tracing::warn!(%err, attempt, "message group conflicted with another transaction; trying again");
                *session = None;
                let pause = rand::random::<u64>() % (5 * u64::from(attempt)) + 1;
                tokio::time::sleep(Duration::from_millis(pause)).await;
                attempt += 1;
            }
            written => return written,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lull_comes_when_the_last_waiting_request_ends_or_at_the_bound() {
        let waiting = Arc::new(Waiting::default());
        tokio::time::advance(QUIET).await;
        let started = tokio::time::Instant::now();
        assert!(waiting.lull(Duration::from_millis(100)).await, "none wait");
        assert_eq!(started.elapsed(), Duration::ZERO);

        // A request answered at once: the API counts as paused only `QUIET` after it came.
        drop(WaitingRequest::new(&waiting));
        let started = tokio::time::Instant::now();
        assert!(waiting.lull(Duration::from_millis(100)).await);
        assert_eq!(started.elapsed(), QUIET);
        drop(WaitingRequest::new(&waiting));
        assert!(
            !waiting.lull(QUIET / 2).await,
            "no pause within a bound shorter than QUIET"
        );

        let first = WaitingRequest::new(&waiting);
        let started = tokio::time::Instant::now();
        assert!(!waiting.lull(Duration::from_millis(100)).await);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(100),
            "gives up at the bound"
        );
        drop(first);

        // Two requests end 10 ms and 30 ms from now: the lull comes with the second.
        let ends = |after: u64| {
            let waiting = waiting.clone();
            let (held, hold) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let _request = WaitingRequest::new(&waiting);
                let _ = held.send(());
                tokio::time::sleep(Duration::from_millis(after)).await;
            });
            hold
        };
        let (a, b) = (ends(10), ends(30));
        let _ = (a.await, b.await);
        let started = tokio::time::Instant::now();
        assert!(waiting.lull(Duration::from_millis(100)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }
}
