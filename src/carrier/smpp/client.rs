//! One SMPP route: its sessions kept bound (reconnecting with backoff), the choice of a
//! session per message, and the submit of a message's parts in order.

use super::route::{BindMode, LongMessage, SmppRouteConfig};
use super::session::{BindKind, Delivery, OpenError, RequestError, Session};
use super::text::{concat_udh, encode_body, encode_whole};
use crate::domain::time::now_micros;
use rusmpp::pdus::SubmitSm;
use rusmpp::tlvs::MessageSubmissionRequestTlvValue;
use rusmpp::types::{AnyOctetString, COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, MessagePayload, Npi, RegisteredDelivery, Ton};
use rusmpp::{CommandStatus, Pdu};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Counters of one route, for logs, the benchmark and tests.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub binds: AtomicU64,
    pub bind_failures: AtomicU64,
    pub submits: AtomicU64,
    pub throttled: AtomicU64,
    pub timeouts: AtomicU64,
    pub rejected: AtomicU64,
    /// Submits written whose session closed before their response: each is submitted again,
    /// and so may reach the handset twice.
    pub unanswered_at_close: AtomicU64,
    /// Delivery receipts the SMSC sent.
    pub receipts: AtomicU64,
    /// Sessions opened again after one closed.
    pub reconnects: AtomicU64,
}

/// What became of one message's submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageResult {
    /// Every part accepted; the SMSC's ids in part order.
    Accepted(Vec<String>),
    /// Try again later; the parts accepted so far (part number from 1, id) are kept so the
    /// retry resumes after them.
    Deferred {
        retry_in: Duration,
        accepted: Vec<(u8, String)>,
        reason: String,
    },
    /// Refused for good.
    Rejected { status: u32 },
    /// Not (wholly) submitted: `Outgoing::not_after` passed first. The parts accepted so far
    /// are kept, as for `Deferred`.
    Abandoned { accepted: Vec<(u8, String)> },
}

/// A message as the route submits it.
pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub body: &'a str,
    /// Reference number for concatenation, stable across retries of the same message.
    pub reference: u16,
    /// Parts accepted in an earlier attempt (part number, id).
    pub already: &'a [(u8, String)],
    /// No part is written to the SMSC after this instant (the dispatcher's claim may have
    /// passed to another node).
    pub not_after: std::time::Instant,
}

pub struct SmppRoute {
    pub config: Arc<SmppRouteConfig>,
    /// Per bind slot: whether this node holds it (and so keeps it bound).
    holds: Vec<watch::Sender<bool>>,
    /// The session supervisors; they end after unbinding at shutdown.
    supervisors: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The transmitting sessions (transceivers or transmitters), one slot per bind.
    slots: Vec<watch::Receiver<Option<Arc<Session>>>>,
    next_slot: AtomicUsize,
    /// Unix microseconds until which the route sends nothing (after a throttling answer).
    paused_until: AtomicI64,
    pub stats: Arc<RouteStats>,
}

/// Connects the TCP (and, when configured, TLS) stream to the SMSC and binds it.
async fn open(
    config: &SmppRouteConfig,
    kind: BindKind,
    deliveries: mpsc::Sender<Delivery>,
) -> Result<Arc<Session>, OpenError> {
    let address = format!("{}:{}", config.host, config.port);
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address))
        .await
        .map_err(|_| OpenError::Connect(format!("{address}: timed out")))?
        .map_err(|err| OpenError::Connect(format!("{address}: {err}")))?;
    let _ = tcp.set_nodelay(true);
    if config.tls {
        let stream = super::tls::connect(&config.host, tcp)
            .await
            .map_err(|err| OpenError::Connect(format!("{address}: TLS: {err}")))?;
        Session::bind(stream, config, kind, deliveries).await
    } else {
        Session::bind(tcp, config, kind, deliveries).await
    }
}

/// Keeps one session of `kind` bound while this node holds its bind slot (`held`) and until
/// shutdown: reconnects with jittered exponential backoff (1 s doubling to 60 s), unbinds on
/// shutdown or when the slot passes to another node.
async fn supervise(
    config: Arc<SmppRouteConfig>,
    kind: BindKind,
    slot: watch::Sender<Option<Arc<Session>>>,
    deliveries: mpsc::Sender<Delivery>,
    stats: Arc<RouteStats>,
    mut shutdown: watch::Receiver<bool>,
    mut held: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            break;
        }
        if !*held.borrow() {
            tokio::select! {
                _ = super::session::until_true(&mut held) => continue,
                _ = super::session::until_true(&mut shutdown) => break,
            }
        }
        match open(&config, kind, deliveries.clone()).await {
            Ok(session) => {
                stats.binds.fetch_add(1, Ordering::Relaxed);
                tracing::info!(route = %config.name, ?kind, "smpp: bound");
                backoff = Duration::from_secs(1);
                slot.send_replace(Some(session.clone()));
                tokio::select! {
                    _ = session.closed() => {
                        stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(route = %config.name, ?kind, "smpp: session closed, reconnecting");
                    }
                    _ = super::session::until_true(&mut shutdown) => {
                        slot.send_replace(None);
                        session.unbind().await;
                        break;
                    }
                    _ = until_false(&mut held) => {
                        tracing::info!(route = %config.name, ?kind, "smpp: bind slot passed to another node, unbinding");
                        slot.send_replace(None);
                        session.unbind().await;
                        continue;
                    }
                }
                slot.send_replace(None);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = super::session::until_true(&mut shutdown) => break,
                }
            }
            Err(err) => {
                stats.bind_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(route = %config.name, ?kind, %err, "smpp: bind failed");
                let jitter = rand::random::<f64>() * 0.5 + 0.75;
                let wait = backoff.mul_f64(jitter);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = super::session::until_true(&mut shutdown) => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Resolves once `flag` is false (or its sender is gone).
async fn until_false(flag: &mut watch::Receiver<bool>) {
    loop {
        if !*flag.borrow_and_update() {
            return;
        }
        if flag.changed().await.is_err() {
            return;
        }
    }
}

impl SmppRoute {
    /// Starts the route's sessions. Operations the SMSC sends (receipts, MO) go to
    /// `deliveries`, tagged with nothing: each route gets its own channel. With `leased`, a
    /// bind slot binds only once this node holds it (`hold_slots`): the route's `binds` are
    /// then the cluster's; otherwise every slot binds at once. The sessions run on `runtime`.
    pub fn start(
        config: SmppRouteConfig,
        deliveries: mpsc::Sender<Delivery>,
        shutdown: watch::Receiver<bool>,
        leased: bool,
        runtime: &tokio::runtime::Handle,
    ) -> SmppRoute {
        let config = Arc::new(config);
        let stats = Arc::new(RouteStats::default());
        let mut slots = Vec::new();
        let mut supervisors = Vec::new();
        let mut holds = Vec::new();
        for _ in 0..config.binds.max(1) {
            let (hold, held) = watch::channel(!leased);
            holds.push(hold);
            let transmit_kind = match config.bind_mode {
                BindMode::Transceiver => BindKind::Transceiver,
                BindMode::TransmitterReceiver => BindKind::Transmitter,
            };
            let (tx, rx) = watch::channel(None);
            slots.push(rx);
            supervisors.push(runtime.spawn(supervise(
                config.clone(),
                transmit_kind,
                tx,
                deliveries.clone(),
                stats.clone(),
                shutdown.clone(),
                held.clone(),
            )));
            if config.bind_mode == BindMode::TransmitterReceiver {
                let (tx, _rx) = watch::channel(None);
                supervisors.push(runtime.spawn(supervise(
                    config.clone(),
                    BindKind::Receiver,
                    tx,
                    deliveries.clone(),
                    stats.clone(),
                    shutdown.clone(),
                    held,
                )));
            }
        }
        SmppRoute {
            config,
            holds,
            supervisors: std::sync::Mutex::new(supervisors),
            slots,
            next_slot: AtomicUsize::new(0),
            paused_until: AtomicI64::new(0),
            stats,
        }
    }

    /// Waits (at most `timeout`) for the supervisors to finish after shutdown was signalled:
    /// each unbinds its session first.
    pub async fn join(&self, timeout: Duration) {
        let handles: Vec<_> = self
            .supervisors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .drain(..)
            .collect();
        let _ = tokio::time::timeout(timeout, futures_util::future::join_all(handles)).await;
    }

    /// Binds exactly the slots in `held` (this node's leases), unbinding the others.
    pub fn hold_slots(&self, held: &[u32]) {
        for (slot, hold) in self.holds.iter().enumerate() {
            let keep = held.contains(&(slot as u32));
            hold.send_if_modified(|current| {
                let changed = *current != keep;
                *current = keep;
                changed
            });
        }
    }

    /// Sessions currently bound for sending.
    pub fn bound(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.borrow().as_ref().is_some_and(|s| !s.is_closed()))
            .count()
    }

    /// Waits until at least one session is bound, or the timeout passes.
    pub async fn wait_bound(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.bound() == 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// A bound session, round robin.
    /// Requests awaiting their response over the route's sessions (the windows in use).
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|slot| slot.borrow().clone())
            .map(|session| session.in_flight())
            .sum()
    }

    fn session(&self) -> Option<Arc<Session>> {
        let n = self.slots.len();
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let slot = self.slots[(start + i) % n].borrow();
            slot.as_ref().filter(|s| !s.is_closed()).cloned()
        })
    }

    fn pause_remaining(&self) -> Option<Duration> {
        let until = self.paused_until.load(Ordering::Relaxed);
        let now = now_micros();
        (until > now).then(|| Duration::from_micros((until - now) as u64))
    }

    /// Builds the `submit_sm`s of a message, one per part (one in all for `message_payload`).
    fn build_parts(&self, message: &Outgoing<'_>) -> Result<Vec<SubmitSm>, String> {
        let config = &self.config;
        let address = |value: &str| -> Result<COctetString<1, 21>, String> {
            COctetString::from_str(value.trim_start_matches('+'))
                .map_err(|err| format!("address {value:?}: {err}"))
        };
        let base = || -> Result<_, String> {
            Ok(SubmitSm::builder()
                .source_addr_ton(Ton::from(config.source_ton))
                .source_addr_npi(Npi::from(config.source_npi))
                .source_addr(address(message.from)?)
                .dest_addr_ton(Ton::from(config.dest_ton))
                .dest_addr_npi(Npi::from(config.dest_npi))
                .destination_addr(address(message.to)?)
                .registered_delivery(RegisteredDelivery::from(0x01u8)))
        };
        if config.long_message == LongMessage::Payload {
            let (coding, bytes) = encode_whole(message.body, config.data_coding);
            let single = bytes.len() <= 140;
            let mut submit = base()?
                .esm_class(EsmClass::from(0u8))
                .data_coding(DataCoding::from(coding));
            if single {
                submit = submit.short_message(
                    OctetString::from_vec(bytes).map_err(|err| format!("body: {err}"))?,
                );
            } else {
                submit = submit.push_tlv(MessageSubmissionRequestTlvValue::MessagePayload(
                    MessagePayload::new(AnyOctetString::from_vec(bytes)),
                ));
            }
            return Ok(vec![submit.build()]);
        }
        let encoded = encode_body(message.body, config.data_coding);
        let total = encoded.parts.len();
        let mut parts = Vec::with_capacity(total);
        for (index, bytes) in encoded.parts.into_iter().enumerate() {
            let number = (index + 1) as u8;
            let mut submit = base()?.data_coding(DataCoding::from(encoded.data_coding));
            let short_message = if total > 1 && config.long_message == LongMessage::Udh {
                submit = submit.esm_class(EsmClass::from(0x40u8));
                let mut with_header =
                    concat_udh(message.reference as u8, total as u8, number).to_vec();
                with_header.extend(bytes);
                with_header
            } else {
                submit = submit.esm_class(EsmClass::from(0u8));
                if total > 1 {
                    submit = submit
                        .push_tlv(MessageSubmissionRequestTlvValue::SarMsgRefNum(
                            message.reference,
                        ))
                        .push_tlv(MessageSubmissionRequestTlvValue::SarTotalSegments(
                            total as u8,
                        ))
                        .push_tlv(MessageSubmissionRequestTlvValue::SarSegmentSeqnum(number));
                }
                bytes
            };
            submit = submit.short_message(
                OctetString::from_vec(short_message).map_err(|err| format!("body: {err}"))?,
            );
            parts.push(submit.build());
        }
        Ok(parts)
    }

    /// Submits one message's parts in order on one session, skipping parts accepted in an
    /// earlier attempt. A part that is throttled stops the message there: later parts wait
    /// for the retry, so parts are never reordered.
    pub async fn submit(&self, message: &Outgoing<'_>) -> MessageResult {
        let pause = Duration::from_millis(self.config.throttle_pause_ms.max(1));
        let mut accepted: Vec<(u8, String)> = message.already.to_vec();
        let deferred = |accepted: Vec<(u8, String)>, retry_in: Duration, reason: &str| {
            MessageResult::Deferred {
                retry_in,
                accepted,
                reason: reason.to_string(),
            }
        };
        if let Some(remaining) = self.pause_remaining() {
            return deferred(accepted, remaining, "route paused after throttling");
        }
        let parts = match self.build_parts(message) {
            Ok(parts) => parts,
            Err(reason) => {
                tracing::warn!(route = %self.config.name, %reason, "smpp: cannot build submit_sm");
                return MessageResult::Rejected {
                    status: u32::from(CommandStatus::EsmeRinvdstadr),
                };
            }
        };
        let Some(session) = self.session() else {
            return deferred(accepted, Duration::from_secs(1), "no bound session");
        };
        for (index, part) in parts.into_iter().enumerate() {
            let number = (index + 1) as u8;
            if accepted.iter().any(|(n, _)| *n == number) {
                continue;
            }
            self.stats.submits.fetch_add(1, Ordering::Relaxed);
            let response = match session
                .paced_request_before(Pdu::SubmitSm(part), message.not_after)
                .await
            {
                Ok(response) => response,
                Err(RequestError::TooLate) => return MessageResult::Abandoned { accepted },
                Err(RequestError::Timeout) => {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                    return deferred(accepted, pause, "submit_sm unanswered");
                }
                Err(RequestError::Closed) => {
                    return deferred(accepted, Duration::from_secs(1), "session closed");
                }
                Err(RequestError::ClosedInFlight) => {
                    self.stats
                        .unanswered_at_close
                        .fetch_add(1, Ordering::Relaxed);
                    return deferred(
                        accepted,
                        Duration::from_secs(1),
                        "session closed before the submit_sm_resp",
                    );
                }
            };
            match response.status() {
                CommandStatus::EsmeRok => {
                    let id = match response.pdu() {
                        Some(Pdu::SubmitSmResp(resp)) => resp.message_id().to_string(),
                        _ => String::new(),
                    };
                    accepted.push((number, id));
                }
                CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful => {
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    let until = now_micros() + pause.as_micros() as i64;
                    self.paused_until.fetch_max(until, Ordering::Relaxed);
                    return deferred(accepted, pause, "throttled by the SMSC");
                }
                status if is_transient(status) => {
                    return deferred(accepted, pause, "temporary SMSC error");
                }
                status => {
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    return MessageResult::Rejected {
                        status: u32::from(status),
                    };
                }
            }
        }
        accepted.sort_by_key(|(n, _)| *n);
        MessageResult::Accepted(accepted.into_iter().map(|(_, id)| id).collect())
    }
}

/// Statuses that say "not now" rather than "never".
fn is_transient(status: CommandStatus) -> bool {
    matches!(
        status,
        CommandStatus::EsmeRsyserr
            | CommandStatus::EsmeRxTAppn
            | CommandStatus::EsmeRinvbndsts
            | CommandStatus::EsmeRbindfail
    )
}

/// The Twilio error code a permanent `submit_sm_resp` status becomes.
pub fn error_code_for_status(status: u32) -> i64 {
    match CommandStatus::from(status) {
        // Invalid destination address: the handset is unknown.
        CommandStatus::EsmeRinvdstadr => 30005,
        // The SMSC's own content or policy refusal.
        CommandStatus::EsmeRxPAppn | CommandStatus::EsmeRxRAppn => 30007,
        _ => 30008,
    }
}
