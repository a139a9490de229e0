//! One bound SMPP session on the ESME side: a reader task, a writer task, a keep-alive task,
//! windowed requests correlated by sequence number, and the SMSC's own operations
//! (`deliver_sm`, `data_sm`) handed to the caller with a responder, so they are acknowledged
//! only after the caller has committed them.

use super::codec::{self, FrameError};
use super::route::SmppRouteConfig;
use rusmpp::pdus::{BindReceiver, BindTransceiver, BindTransmitter};
use rusmpp::types::COctetString;
use rusmpp::values::{InterfaceVersion, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

/// What a session is bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Transceiver,
    Transmitter,
    Receiver,
}

/// Why a request got no usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No response within the timeout: the SMSC may or may not have acted on it.
    #[error("no response within the timeout")]
    Timeout,
    /// The session was closed before the request could be written.
    #[error("session closed")]
    Closed,
    /// The session closed after the request was written, before its response: the SMSC may
    /// or may not have acted on it (a resent submit may be a duplicate).
    #[error("session closed before the response")]
    ClosedInFlight,
    /// Not written: its deadline passed while it waited for its turn.
    #[error("deadline passed before the request could be written")]
    TooLate,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("bind refused with status {0:?}")]
    Refused(CommandStatus),
    #[error("bind: {0}")]
    Bind(RequestError),
    #[error("bad route configuration: {0}")]
    Config(String),
}

/// An operation the SMSC sent (`deliver_sm` or `data_sm`), with the means to answer it.
pub struct Delivery {
    /// The route's name.
    pub route: Arc<str>,
    pub command: Command,
    /// TLVs left out because they did not decode (see `codec::salvage_operation`).
    pub skipped_tlvs: Vec<codec::SkippedTlv>,
    pub responder: Responder,
}

/// Answers one SMSC operation on the session it came from.
pub struct Responder {
    out: mpsc::Sender<Vec<u8>>,
    response_id: CommandId,
    sequence_number: u32,
}

impl Responder {
    /// Sends the response: `EsmeRok` once the operation is committed, or an error status
    /// (`EsmeRxTAppn` asks the SMSC to try again later).
    pub async fn respond(self, status: CommandStatus) {
        let pdu = match (self.response_id, status) {
            (CommandId::DeliverSmResp, CommandStatus::EsmeRok) => {
                Some(Pdu::DeliverSmResp(Default::default()))
            }
            (CommandId::DataSmResp, CommandStatus::EsmeRok) => Some(Pdu::DataSmResp(
                rusmpp::pdus::DataSmResp::builder()
                    .message_id(COctetString::from_str("0").unwrap_or_default())
                    .build(),
            )),
            _ => None,
        };
        let command = match pdu {
            Some(pdu) => Command::new(status, self.sequence_number, pdu),
            None => codec::bare_response(self.response_id, status, self.sequence_number),
        };
        let _ = self.out.send(codec::encode(&command)).await;
    }
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Command>>>>;

/// Bytes read from the socket at most at once.
const READ_BUFFER: usize = 64 * 1024;
/// Queued frames are joined into one write up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// One bound session.
pub struct Session {
    pub kind: BindKind,
    route: Arc<str>,
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_sequence: AtomicU32,
    window: Semaphore,
    response_timeout: Duration,
    closed: watch::Receiver<bool>,
    close: watch::Sender<bool>,
    /// Set by `unbind`: no `submit_sm` is written any more (see there).
    draining: AtomicBool,
    /// The route's `max_submits_per_sec`, per session.
    limiter: Option<governor::DefaultDirectRateLimiter>,
}

/// `COctetString` from configuration already validated for length and ASCII.
fn c_string<const MIN: usize, const MAX: usize>(
    value: &str,
) -> Result<COctetString<MIN, MAX>, OpenError> {
    COctetString::from_str(value).map_err(|err| OpenError::Config(format!("{value:?}: {err}")))
}

impl Session {
    /// Opens a session over `stream` (already connected, TLS or not) and binds it.
    pub async fn bind<S>(
        stream: S,
        config: &SmppRouteConfig,
        kind: BindKind,
        deliveries: mpsc::Sender<Delivery>,
    ) -> Result<Arc<Session>, OpenError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, mut writer) = tokio::io::split(stream);
        // One read takes every PDU the SMSC has sent so far, not two reads (length, rest) per
        // PDU: under load receipts and responses arrive back to back.
        let mut reader = tokio::io::BufReader::with_capacity(READ_BUFFER, reader);
        let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(1024);
        let (close, closed) = watch::channel(false);
        let session = Arc::new(Session {
            kind,
            route: Arc::from(config.name.as_str()),
            out: out.clone(),
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_sequence: AtomicU32::new(1),
            window: Semaphore::new(config.window.max(1) as usize),
            response_timeout: Duration::from_millis(config.response_timeout_ms.max(1)),
            closed,
            close,
            draining: AtomicBool::new(false),
            limiter: std::num::NonZeroU32::new(config.max_submits_per_sec)
                // No burst: the carrier's contract is a rate, not an average.
                .map(|rate| {
                    governor::RateLimiter::direct(
                        governor::Quota::per_second(rate).allow_burst(std::num::NonZeroU32::MIN),
                    )
                }),
        });

        // Writer: frames in order; a write error closes the session. The frames already
        // queued behind the first go out with it in one write (one segment for the SMSC to
        // read instead of one per PDU); nothing waits for more to come.
        let writer_session = Arc::downgrade(&session);
        let mut writer_closed = session.closed.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(WRITE_BATCH);
            loop {
                tokio::select! {
                    frame = out_rx.recv() => {
                        let Some(frame) = frame else { break };
                        let written = match out_rx.try_recv() {
                            Err(_) => writer.write_all(&frame).await,
                            Ok(next) => {
                                batch.clear();
                                batch.extend_from_slice(&frame);
                                batch.extend_from_slice(&next);
                                while batch.len() < WRITE_BATCH {
                                    match out_rx.try_recv() {
                                        Ok(frame) => batch.extend_from_slice(&frame),
                                        Err(_) => break,
                                    }
                                }
                                writer.write_all(&batch).await
                            }
                        };
                        if written.is_err() {
                            break;
                        }
                    }
                    _ = until_true(&mut writer_closed) => {
                        // Flush what is queued (say, an unbind) before closing the socket.
                        while let Ok(frame) = out_rx.try_recv() {
                            let _ = writer.write_all(&frame).await;
                        }
                        break;
                    }
                }
            }
            let _ = writer.shutdown().await;
            if let Some(session) = writer_session.upgrade() {
                session.shut();
            }
        });

        // Reader: responses to their waiters, operations to the caller or answered here.
        let reader_session = Arc::downgrade(&session);
        let reader_out = out.clone();
        let mut reader_closed = session.closed.clone();
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    frame = codec::read_frame(&mut reader) => frame,
                    _ = until_true(&mut reader_closed) => break,
                };
                let frame = match frame {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(%err, "smpp: read failed");
                        break;
                    }
                };
                let Some(session) = reader_session.upgrade() else {
                    break;
                };
                match codec::decode_frame(&frame) {
                    Ok(command) => {
                        if !session
                            .incoming(command, Vec::new(), &reader_out, &deliveries)
                            .await
                        {
                            break;
                        }
                    }
                    Err(FrameError::Body {
                        command_id,
                        sequence_number,
                        reason,
                    }) => {
                        tracing::warn!(command_id, sequence_number, %reason, "smpp: undecodable PDU");
                        // A deliver_sm or data_sm is answered with its own response whatever
                        // its TLVs: a generic_nack makes the SMSC resend it forever.
                        match codec::salvage_operation(&frame) {
                            Ok(Some(salvaged)) => {
                                tracing::warn!(
                                    sequence_number,
                                    skipped = ?salvaged.skipped,
                                    "smpp: operation read without its undecodable TLVs"
                                );
                                if !session
                                    .incoming(
                                        salvaged.command,
                                        salvaged.skipped,
                                        &reader_out,
                                        &deliveries,
                                    )
                                    .await
                                {
                                    break;
                                }
                                continue;
                            }
                            Ok(None) => {}
                            Err(codec::Unsalvageable) => {
                                // A permanent error: the SMSC should not send it again.
                                let resp = codec::bare_response(
                                    CommandId::from(codec::response_id(command_id)),
                                    CommandStatus::EsmeRxPAppn,
                                    sequence_number,
                                );
                                let _ = reader_out.send(codec::encode(&resp)).await;
                                continue;
                            }
                        }
                        if command_id & 0x8000_0000 == 0 {
                            let nack =
                                codec::generic_nack(CommandStatus::EsmeRinvcmdlen, sequence_number);
                            let _ = reader_out.send(codec::encode(&nack)).await;
                        } else if let Some(waiter) = session.take_pending(sequence_number) {
                            // A response we cannot read still answers its request: as a
                            // failure, with the status its header carries.
                            let status = codec::header(&frame)
                                .map(|h| CommandStatus::from(h.command_status))
                                .unwrap_or(CommandStatus::EsmeRsyserr);
                            let status = if status == CommandStatus::EsmeRok {
                                CommandStatus::EsmeRsyserr
                            } else {
                                status
                            };
                            let _ = waiter.send(codec::generic_nack(status, sequence_number));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "smpp: bad frame");
                        break;
                    }
                }
            }
            if let Some(session) = reader_session.upgrade() {
                session.shut();
            }
        });

        // Bind.
        let system_id = c_string(&config.system_id)?;
        let password = c_string(&config.password)?;
        let system_type = c_string(&config.system_type)?;
        let address_range = c_string("")?;
        // The three bind PDUs share their fields; only the type differs.
        macro_rules! bind_pdu {
            ($pdu:ident) => {
                $pdu::builder()
                    .system_id(system_id)
                    .password(password)
                    .system_type(system_type)
                    .interface_version(InterfaceVersion::Smpp3_4)
                    .addr_ton(Ton::Unknown)
                    .addr_npi(Npi::Unknown)
                    .address_range(address_range)
                    .build()
                    .into()
            };
        }
        let pdu: Pdu = match kind {
            BindKind::Transceiver => bind_pdu!(BindTransceiver),
            BindKind::Transmitter => bind_pdu!(BindTransmitter),
            BindKind::Receiver => bind_pdu!(BindReceiver),
        };
        let response = match session.request(pdu).await {
            Ok(response) => response,
            Err(err) => {
                session.shut();
                return Err(OpenError::Bind(err));
            }
        };
        if response.status() != CommandStatus::EsmeRok {
            session.shut();
            return Err(OpenError::Refused(response.status()));
        }

        // Keep-alive: an enquire_link when idle; no answer closes the session.
        let keepalive = Arc::downgrade(&session);
        let period = Duration::from_secs(config.enquire_link_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(session) = keepalive.upgrade() else {
                    break;
                };
                if session.is_closed() {
                    break;
                }
                if session.request(Pdu::EnquireLink).await.is_err() {
                    tracing::warn!("smpp: enquire_link unanswered, closing the session");
                    session.shut();
                    break;
                }
            }
        });
        Ok(session)
    }

    /// Handles one decoded PDU from the SMSC. `false` ends the session.
    async fn incoming(
        &self,
        command: Command,
        skipped_tlvs: Vec<codec::SkippedTlv>,
        out: &mpsc::Sender<Vec<u8>>,
        deliveries: &mpsc::Sender<Delivery>,
    ) -> bool {
        let id = command.id();
        let sequence = command.sequence_number();
        if id.is_response() || id == CommandId::GenericNack {
            match self.take_pending(sequence) {
                Some(waiter) => {
                    let _ = waiter.send(command);
                }
                None => tracing::debug!(?id, sequence, "smpp: response nobody waits for"),
            }
            return true;
        }
        match id {
            CommandId::EnquireLink => {
                let resp = Command::new(CommandStatus::EsmeRok, sequence, Pdu::EnquireLinkResp);
                let _ = out.send(codec::encode(&resp)).await;
                true
            }
            CommandId::Unbind => {
                let resp = Command::new(CommandStatus::EsmeRok, sequence, Pdu::UnbindResp);
                let _ = out.send(codec::encode(&resp)).await;
                false
            }
            CommandId::DeliverSm | CommandId::DataSm if self.kind != BindKind::Transmitter => {
                let response_id = if id == CommandId::DeliverSm {
                    CommandId::DeliverSmResp
                } else {
                    CommandId::DataSmResp
                };
                let delivery = Delivery {
                    route: self.route.clone(),
                    command,
                    skipped_tlvs,
                    responder: Responder {
                        out: out.clone(),
                        response_id,
                        sequence_number: sequence,
                    },
                };
                // A full channel slows reading: back-pressure on the SMSC, nothing dropped.
                deliveries.send(delivery).await.is_ok()
            }
            _ => {
                let nack = codec::generic_nack(CommandStatus::EsmeRinvcmdid, sequence);
                let _ = out.send(codec::encode(&nack)).await;
                true
            }
        }
    }

    fn take_pending(&self, sequence: u32) -> Option<oneshot::Sender<Command>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&sequence)
    }

    /// The next sequence number, within 1..=0x7FFFFFFF as SMPP requires.
    fn sequence(&self) -> u32 {
        let n = self.next_sequence.fetch_add(1, Ordering::Relaxed);
        (n % 0x7FFF_FFFF) + 1
    }

    /// Sends a request within the window and waits for its response (any status).
    pub async fn request(&self, pdu: impl Into<Pdu>) -> Result<Command, RequestError> {
        self.request_before(pdu, None).await
    }

    /// `request`, unless `not_after` passes before the PDU can be written (waiting for a
    /// window slot): then nothing is written and the answer is `TooLate`.
    async fn request_before(
        &self,
        pdu: impl Into<Pdu>,
        not_after: Option<std::time::Instant>,
    ) -> Result<Command, RequestError> {
        if self.is_closed() {
            return Err(RequestError::Closed);
        }
        let _permit = self
            .window
            .acquire()
            .await
            .map_err(|_| RequestError::Closed)?;
        if not_after.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
            return Err(RequestError::TooLate);
        }
        let pdu: Pdu = pdu.into();
        let is_submit = matches!(pdu, Pdu::SubmitSm(_));
        let written = std::time::Instant::now();
        let sequence = self.sequence();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(sequence, tx);
        // Checked after the insert, as `unbind` sets the flag before it counts what is in
        // flight: a submit either is counted and awaited there, or sees the flag here.
        if is_submit && self.draining.load(Ordering::SeqCst) {
            self.take_pending(sequence);
            return Err(RequestError::Closed);
        }
        let frame = codec::encode(&Command::new(CommandStatus::EsmeRok, sequence, pdu));
        if self.out.send(frame).await.is_err() {
            self.take_pending(sequence);
            return Err(RequestError::Closed);
        }
        let mut closed = self.closed.clone();
        tokio::select! {
            response = timeout_while_running(self.response_timeout, rx) => match response {
                Ok(Ok(response)) => {
                    if is_submit {
                        metrics::histogram!(
                            crate::telemetry::SMPP_SUBMIT_RESPONSE,
                            "route" => self.route.to_string()
                        )
                        .record(written.elapsed().as_secs_f64());
                    }
                    Ok(response)
                }
                Ok(Err(_)) => Err(RequestError::ClosedInFlight),
                Err(_) => {
                    self.take_pending(sequence);
                    Err(RequestError::Timeout)
                }
            },
            _ = until_true(&mut closed) => {
                self.take_pending(sequence);
                Err(RequestError::ClosedInFlight)
            }
        }
    }

    /// A request counted against the session's submit rate (waits for its turn first),
    /// written only before `not_after` (see `request_before`).
    pub async fn paced_request_before(
        &self,
        pdu: impl Into<Pdu>,
        not_after: std::time::Instant,
    ) -> Result<Command, RequestError> {
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        self.request_before(pdu, Some(not_after)).await
    }

    /// Unbinds politely (waiting briefly for `unbind_resp`), then closes. First no new
    /// `submit_sm` is written (it fails as `Closed`, unwritten, and its message waits for
    /// another session) and those written get their answers: a submit whose response the
    /// close dropped would be retried, and reach the SMSC twice (seen when a node passed a
    /// bind slot to another with submits in flight).
    pub async fn unbind(&self) {
        if !self.is_closed() {
            self.draining.store(true, Ordering::SeqCst);
            let deadline = tokio::time::Instant::now() + self.response_timeout;
            while self.in_flight() > 0
                && !self.is_closed()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), self.request(Pdu::Unbind)).await;
        }
        self.shut();
    }

    /// Closes the session; waiters get [`RequestError::Closed`].
    pub fn shut(&self) {
        let _ = self.close.send(true);
        self.window.close();
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves once the session has closed.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = until_true(&mut closed).await;
    }

    /// Requests awaiting their response.
    pub fn in_flight(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// Lateness of a timer past which the process is taken to have been stopped (SIGSTOP, a VM
/// pause, a long swap-in) rather than busy.
const STALL: Duration = Duration::from_millis(200);
/// Most the timeout of one request is stretched by stalls.
const MOST_STALL_FORGIVEN: Duration = Duration::from_secs(60);

/// `tokio::time::timeout`, counting only time the process was running. When a process stopped
/// for a while continues, its overdue timers fire before its reader has read the responses
/// that arrived meanwhile: a plain timeout would call an answered `submit_sm` unanswered and
/// the message would be submitted again. A timer that fires late by more than `STALL` extends
/// the wait by its lateness instead.
async fn timeout_while_running<F: std::future::Future>(
    timeout: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::pin!(future);
    let mut deadline = tokio::time::Instant::now() + timeout;
    let mut forgiven = Duration::ZERO;
    loop {
        match tokio::time::timeout_at(deadline, &mut future).await {
            Ok(output) => return Ok(output),
            Err(elapsed) => {
                let late = tokio::time::Instant::now().saturating_duration_since(deadline);
                if late <= STALL || forgiven >= MOST_STALL_FORGIVEN {
                    return Err(elapsed);
                }
                forgiven += late;
                deadline = tokio::time::Instant::now() + late.min(timeout);
            }
        }
    }
}

/// Resolves once the flag is true (or its sender is gone). The borrow it waits on is
/// dropped here, so callers stay `Send`.
pub async fn until_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::pdus::{BindTransceiverResp, DeliverSm, SubmitSm, SubmitSmResp};
    use rusmpp::types::OctetString;
    use tokio::io::DuplexStream;

    fn c<const MIN: usize, const MAX: usize>(value: &str) -> COctetString<MIN, MAX> {
        COctetString::from_str(value).unwrap()
    }

    /// A transceiver session over an in-memory pipe, bound by the test's SMSC end.
    async fn bound_session() -> (Arc<Session>, DuplexStream, mpsc::Receiver<Delivery>) {
        // A window wide enough for every request of a test to be written before any answer.
        let (esme, mut smsc) = tokio::io::duplex(1 << 20);
        let (deliveries, delivered) = mpsc::channel(1024);
        let binding = tokio::spawn(async move {
            let config = SmppRouteConfig {
                system_id: "test".into(),
                password: "secret".into(),
                window: 256,
                ..SmppRouteConfig::default()
            };
            Session::bind(esme, &config, BindKind::Transceiver, deliveries).await
        });
        let bind = codec::read_frame(&mut smsc).await.unwrap().unwrap();
        let sequence = codec::header(&bind).unwrap().sequence_number;
        let resp = BindTransceiverResp::builder().system_id(c("smsc")).build();
        smsc.write_all(&codec::encode(&Command::new(
            CommandStatus::EsmeRok,
            sequence,
            resp,
        )))
        .await
        .unwrap();
        let session = binding.await.unwrap().unwrap();
        (session, smsc, delivered)
    }

    #[tokio::test]
    async fn operations_that_arrive_in_one_segment_are_each_handed_over_and_answered_in_order() {
        let (_session, mut smsc, mut delivered) = bound_session().await;
        // Forty deliver_sm in a single write, as a busy SMSC's receipts reach the socket.
        let mut burst = Vec::new();
        for sequence in 100..140u32 {
            let pdu = DeliverSm::builder()
                .source_addr(c("14155550199"))
                .destination_addr(c("14155550100"))
                .short_message(OctetString::from_str(&format!("part {sequence}")).unwrap())
                .build();
            burst.extend(codec::encode(&Command::new(
                CommandStatus::EsmeRok,
                sequence,
                pdu,
            )));
        }
        smsc.write_all(&burst).await.unwrap();
        for sequence in 100..140u32 {
            let delivery = tokio::time::timeout(Duration::from_secs(5), delivered.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(delivery.command.sequence_number(), sequence);
            let Some(Pdu::DeliverSm(pdu)) = delivery.command.pdu() else {
                panic!("not a deliver_sm: {:?}", delivery.command);
            };
            assert_eq!(
                pdu.short_message().as_ref(),
                format!("part {sequence}").as_bytes()
            );
            delivery.responder.respond(CommandStatus::EsmeRok).await;
        }
        for sequence in 100..140u32 {
            let frame = codec::read_frame(&mut smsc).await.unwrap().unwrap();
            let head = codec::header(&frame).unwrap();
            assert_eq!(head.command_id, u32::from(CommandId::DeliverSmResp));
            assert_eq!(head.sequence_number, sequence);
        }
    }

    #[tokio::test]
    async fn submits_written_together_arrive_whole_and_each_gets_its_own_response() {
        let (session, mut smsc, _delivered) = bound_session().await;
        let submits = (0..200).map(|i| {
            let session = session.clone();
            async move {
                let pdu = SubmitSm::builder()
                    .source_addr(c("14155550100"))
                    .destination_addr(c(&format!("1415555{i:04}")))
                    .short_message(OctetString::from_str("hello").unwrap())
                    .build();
                (i, session.request(pdu).await)
            }
        });
        let answering = tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < 200 {
                let frame = codec::read_frame(&mut smsc).await.unwrap().unwrap();
                let command = codec::decode_frame(&frame).unwrap();
                let Some(Pdu::SubmitSm(pdu)) = command.pdu() else {
                    panic!("not a submit_sm: {command:?}");
                };
                let to = pdu.destination_addr.as_ref();
                let to = String::from_utf8(to.strip_suffix(b"\0").unwrap_or(to).to_vec()).unwrap();
                seen.push((command.sequence_number(), to));
            }
            // Answered in reverse: each answer must still reach its own request.
            for (sequence, to) in seen.iter().rev() {
                let resp = SubmitSmResp::builder()
                    .message_id(c(&format!("id-{to}")))
                    .build();
                smsc.write_all(&codec::encode(&Command::new(
                    CommandStatus::EsmeRok,
                    *sequence,
                    resp,
                )))
                .await
                .unwrap();
            }
            (smsc, seen)
        });
        let answers = futures_util::future::join_all(submits).await;
        let (_smsc, seen) = answering.await.unwrap();
        let mut sequences: Vec<u32> = seen.iter().map(|(sequence, _)| *sequence).collect();
        sequences.sort_unstable();
        sequences.dedup();
        assert_eq!(sequences.len(), 200);
        for (i, answer) in answers {
            let Some(Pdu::SubmitSmResp(resp)) = answer.unwrap().pdu().cloned() else {
                panic!("not a submit_sm_resp");
            };
            let id = resp.message_id().as_ref();
            assert_eq!(
                id.strip_suffix(b"\0").unwrap_or(id),
                format!("id-1415555{i:04}").as_bytes()
            );
        }
    }

    /// A runtime that stops for 400 ms right after a request with a 100 ms timeout was written
    /// (as a SIGSTOP does), and whose answer is read just after the overdue timer fired.
    async fn answer_after_a_stall(plain: bool) -> bool {
        let (answer, answered) = oneshot::channel::<()>();
        let waiter = tokio::spawn(async move {
            if plain {
                tokio::time::timeout(Duration::from_millis(100), answered)
                    .await
                    .is_ok()
            } else {
                timeout_while_running(Duration::from_millis(100), answered)
                    .await
                    .is_ok()
            }
        });
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(400));
        tokio::time::sleep(Duration::from_millis(1)).await;
        let _ = answer.send(());
        waiter.await.unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stall_does_not_count_against_a_response_timeout() {
        // The setup does reproduce the hazard: a plain timeout gives up on the answer.
        assert!(!answer_after_a_stall(true).await);
        assert!(answer_after_a_stall(false).await);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn silence_still_times_out() {
        let (_answer, answered) = oneshot::channel::<()>();
        let started = std::time::Instant::now();
        assert!(timeout_while_running(Duration::from_millis(50), answered)
            .await
            .is_err());
        assert!(started.elapsed() < Duration::from_millis(1000));
    }
}
