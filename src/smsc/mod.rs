//! `warbler smsc`: an SMSC simulator for development, tests and benchmarks. It accepts binds
//! (closing connections that do not bind in time, and slowing addresses that keep failing to),
//! acknowledges submits, sends delivery receipts after a delay, answers magic destinations
//! with each failure class, and injects mobile-originated messages. It speaks through the same
//! codec as warbler's client (`carrier::smpp::codec`).
//!
//! Magic destinations (digits, with or without `+`):
//!
//! | destination | what the SMSC does |
//! |---|---|
//! | `15005551001` | never answers the submit |
//! | `15005551002` | `ESME_RTHROTTLED` the first time a PDU is seen, accepts it when sent again |
//! | `15005551003` | `ESME_RMSGQFUL` the first time a PDU is seen, accepts it when sent again |
//! | `15005551004` | accepts; receipt `REJECTD` |
//! | `15005551005` | refuses the submit: `ESME_RINVDSTADR` |
//! | `15005551006` | accepts; receipt `UNDELIV` |
//! | `15005551007` | accepts; receipt `EXPIRED` |
//! | `15005551008` | sends the receipt `DELIVRD` first, the submit response 200 ms later |
//! | anything else | accepts; receipt `DELIVRD` |

pub mod control;
mod throttle;

pub use throttle::ThrottleSettings;

use crate::carrier::smpp::codec::{self, FrameError};
use crate::carrier::smpp::text::{concat_udh, encode_body, split_udh, DefaultCoding};
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSmResp,
};
use rusmpp::tlvs::{MessageDeliveryRequestTlvValue, TlvValue};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, MessageState, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SmscConfig {
    pub listen: SocketAddr,
    pub system_id: String,
    pub password: String,
    pub receipt_delay: Duration,
    /// How long each submit waits for its response (so that submits are in flight when a
    /// test kills the simulator).
    pub response_delay: Duration,
    /// Write receipt ids in decimal (the submit response gives them in hex), as some SMSCs do.
    pub decimal_receipt_ids: bool,
    /// A connection not bound this long after it opened is closed.
    pub bind_timeout: Duration,
    /// How failed binds slow further binds from the same address.
    pub bind_throttle: ThrottleSettings,
}

/// What the simulator does with a submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Silent,
    ThrottleOnce,
    QueueFullOnce,
    Refuse,
    Receipt(MessageState),
    /// The receipt goes out before the submit response (a race real SMSCs have).
    ReceiptFirst,
}

pub fn fate(destination: &str) -> Fate {
    match destination.trim_start_matches('+') {
        "15005551001" => Fate::Silent,
        "15005551002" => Fate::ThrottleOnce,
        "15005551003" => Fate::QueueFullOnce,
        "15005551004" => Fate::Receipt(MessageState::Rejected),
        "15005551005" => Fate::Refuse,
        "15005551006" => Fate::Receipt(MessageState::Undeliverable),
        "15005551007" => Fate::Receipt(MessageState::Expired),
        "15005551008" => Fate::ReceiptFirst,
        _ => Fate::Receipt(MessageState::Delivered),
    }
}

/// One submit as the simulator saw it (for tests and the control endpoint).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubmitRecord {
    pub source: String,
    pub destination: String,
    pub data_coding: u8,
    pub esm_class: u8,
    /// The message id given, or `None` when refused or unanswered.
    pub message_id: Option<String>,
    pub status: u32,
    /// Concatenation (reference, total, part) from a UDH or the SAR TLVs.
    pub concat: Option<(u16, u8, u8)>,
    /// The body bytes after any UDH (or the `message_payload`), hex.
    pub body_hex: String,
}

/// A response the ESME sent (to a `deliver_sm`, an `enquire_link`…), read from its header.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Answer {
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

/// Counters.
#[derive(Debug, Default, Serialize)]
pub struct SmscStats {
    pub binds: u64,
    pub submits: u64,
    pub receipts_sent: u64,
    pub mo_sent: u64,
    /// Sessions the ESME closed with `unbind`.
    pub unbinds: u64,
    /// Sessions bound now.
    pub bound: u64,
}

struct Peer {
    system_id: String,
    receives: bool,
    out: mpsc::Sender<Vec<u8>>,
    sequence: Arc<AtomicU32>,
}

struct State {
    config: SmscConfig,
    throttle: throttle::BindThrottle,
    next_id: AtomicU64,
    next_peer: AtomicU64,
    peers: Mutex<HashMap<u64, Peer>>,
    seen: Mutex<HashSet<Vec<u8>>>,
    submits: Mutex<Vec<SubmitRecord>>,
    answers: Mutex<Vec<Answer>>,
    /// Operations for a system id that has no receiving session bound right now.
    held: Mutex<VecDeque<(String, Pdu)>>,
    binds: AtomicU64,
    submit_count: AtomicU64,
    receipts_sent: AtomicU64,
    mo_sent: AtomicU64,
    unbinds: AtomicU64,
    mo_reference: AtomicU32,
}

/// A running simulator.
#[derive(Clone)]
pub struct Smsc {
    state: Arc<State>,
    pub local_addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn c_string<const MIN: usize, const MAX: usize>(value: &str) -> COctetString<MIN, MAX> {
    COctetString::from_str(value).unwrap_or_default()
}

/// The first message id of a run: random high bits, so a restarted simulator does not give
/// out the ids of the one before, whose receipts would then name the wrong message.
fn first_message_id() -> u64 {
    (u64::from(rand::random::<u32>() | 1) << 32) + 1
}

/// `YYMMDDhhmm`, UTC.
fn receipt_date() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        now.year() % 100,
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    )
}

impl Smsc {
    /// Listens and serves until [`Smsc::stop`].
    pub async fn start(config: SmscConfig) -> std::io::Result<Smsc> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(State {
            throttle: throttle::BindThrottle::new(config.bind_throttle),
            config,
            next_id: AtomicU64::new(first_message_id()),
            next_peer: AtomicU64::new(1),
            peers: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashSet::new()),
            submits: Mutex::new(Vec::new()),
            answers: Mutex::new(Vec::new()),
            held: Mutex::new(VecDeque::new()),
            binds: AtomicU64::new(0),
            submit_count: AtomicU64::new(0),
            receipts_sent: AtomicU64::new(0),
            mo_sent: AtomicU64::new(0),
            unbinds: AtomicU64::new(0),
            mo_reference: AtomicU32::new(1),
        });
        let accept_state = state.clone();
        let mut accept_stopped = stopped.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, peer)) = accepted else { continue };
                        let _ = socket.set_nodelay(true);
                        tokio::spawn(serve_session(
                            accept_state.clone(),
                            socket,
                            peer.ip(),
                            stopped.clone(),
                        ));
                    }
                    _ = crate::carrier::smpp::session::until_true(&mut accept_stopped) => break,
                }
            }
        });
        Ok(Smsc {
            state,
            local_addr,
            stop: Arc::new(stop),
        })
    }

    /// Stops listening and drops every session at once (no unbind), like a crashed SMSC.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        lock(&self.state.peers).clear();
    }

    pub fn submits(&self) -> Vec<SubmitRecord> {
        lock(&self.state.submits).clone()
    }

    /// Every response the ESMEs sent, in arrival order.
    pub fn answers(&self) -> Vec<Answer> {
        lock(&self.state.answers).clone()
    }

    /// Sends a frame as given (say, a `deliver_sm` a vendor's SMSC got wrong) to a receiving
    /// session, with the session's next sequence number written into its header. The
    /// sequence number, or `None` when no receiving session is bound or the frame is shorter
    /// than a header.
    pub async fn inject_frame(&self, mut frame: Vec<u8>) -> Option<u32> {
        if frame.len() < codec::HEADER_LEN {
            return None;
        }
        let (out, sequence) = {
            let peers = lock(&self.state.peers);
            let peer = peers
                .values()
                .find(|p| p.receives && p.system_id == self.state.config.system_id)?;
            (peer.out.clone(), peer.sequence.clone())
        };
        let seq = sequence.fetch_add(1, Ordering::Relaxed) % 0x7FFF_FFFF + 1;
        frame[12..16].copy_from_slice(&seq.to_be_bytes());
        out.send(frame).await.ok()?;
        Some(seq)
    }

    pub fn stats(&self) -> SmscStats {
        SmscStats {
            binds: self.state.binds.load(Ordering::Relaxed),
            submits: self.state.submit_count.load(Ordering::Relaxed),
            receipts_sent: self.state.receipts_sent.load(Ordering::Relaxed),
            mo_sent: self.state.mo_sent.load(Ordering::Relaxed),
            unbinds: self.state.unbinds.load(Ordering::Relaxed),
            bound: lock(&self.state.peers).len() as u64,
        }
    }

    /// Sessions bound right now.
    pub fn bound_sessions(&self) -> usize {
        lock(&self.state.peers).len()
    }

    /// Sends a mobile-originated message to a receiving session, split into concatenated
    /// parts with a UDH when long. `false` when no receiving session is bound.
    pub async fn inject_mo(&self, from: &str, to: &str, text: &str) -> bool {
        let encoded = encode_body(text, DefaultCoding::Gsm7);
        let total = encoded.parts.len();
        let reference = (self.state.mo_reference.fetch_add(1, Ordering::Relaxed) % 255) as u8;
        let system_id = self.state.config.system_id.clone();
        let mut all_sent = true;
        for (index, part) in encoded.parts.into_iter().enumerate() {
            let (esm, bytes) = if total > 1 {
                let mut with_header = concat_udh(reference, total as u8, index as u8 + 1).to_vec();
                with_header.extend(part);
                (0x40u8, with_header)
            } else {
                (0u8, part)
            };
            let pdu = DeliverSm::builder()
                .source_addr_ton(Ton::International)
                .source_addr_npi(Npi::Isdn)
                .source_addr(c_string(from.trim_start_matches('+')))
                .dest_addr_ton(Ton::International)
                .dest_addr_npi(Npi::Isdn)
                .destination_addr(c_string(to.trim_start_matches('+')))
                .esm_class(EsmClass::from(esm))
                .data_coding(DataCoding::from(encoded.data_coding))
                .short_message(OctetString::from_vec(bytes).unwrap_or_default())
                .build();
            all_sent &= self.state.send_to(&system_id, pdu.into(), false).await;
        }
        if all_sent {
            self.state.mo_sent.fetch_add(1, Ordering::Relaxed);
        }
        all_sent
    }
}

impl State {
    /// Sends an operation to a receiving session of `system_id`; with `hold`, keeps it for
    /// the next such session when none is bound.
    async fn send_to(&self, system_id: &str, pdu: Pdu, hold: bool) -> bool {
        let target = {
            let peers = lock(&self.peers);
            peers
                .values()
                .find(|p| p.receives && p.system_id == system_id)
                .map(|p| (p.out.clone(), p.sequence.clone()))
        };
        match target {
            Some((out, sequence)) => {
                let seq = sequence.fetch_add(1, Ordering::Relaxed) % 0x7FFF_FFFF + 1;
                let frame = codec::encode(&Command::new(CommandStatus::EsmeRok, seq, pdu));
                out.send(frame).await.is_ok()
            }
            None => {
                if hold {
                    lock(&self.held).push_back((system_id.to_string(), pdu));
                }
                false
            }
        }
    }

    async fn flush_held(&self, system_id: &str) {
        let ready: Vec<Pdu> = {
            let mut held = lock(&self.held);
            let (mine, others): (VecDeque<_>, VecDeque<_>) =
                held.drain(..).partition(|(id, _)| id == system_id);
            *held = others;
            mine.into_iter().map(|(_, pdu)| pdu).collect()
        };
        for pdu in ready {
            if self.send_to(system_id, pdu, true).await {
                self.receipts_sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn bind_response(id: CommandId, status: CommandStatus, sequence: u32) -> Command {
    if status != CommandStatus::EsmeRok {
        return codec::bare_response(id, status, sequence);
    }
    let system_id = c_string("warbler-smsc");
    let pdu: Pdu = match id {
        CommandId::BindTransmitterResp => BindTransmitterResp::builder()
            .system_id(system_id)
            .build()
            .into(),
        CommandId::BindReceiverResp => BindReceiverResp::builder()
            .system_id(system_id)
            .build()
            .into(),
        _ => BindTransceiverResp::builder()
            .system_id(system_id)
            .build()
            .into(),
    };
    Command::new(CommandStatus::EsmeRok, sequence, pdu)
}

async fn serve_session(
    state: Arc<State>,
    socket: TcpStream,
    peer: IpAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let bind_deadline = tokio::time::Instant::now() + state.config.bind_timeout;
    let (mut reader, mut writer) = socket.into_split();
    let (out, mut out_rx) = mpsc::channel::<Vec<u8>>(4096);
    let mut writer_stopped = stopped.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = out_rx.recv() => {
                    let Some(frame) = frame else { break };
                    if writer.write_all(&frame).await.is_err() { break; }
                }
                _ = crate::carrier::smpp::session::until_true(&mut writer_stopped) => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    let peer_id = state.next_peer.fetch_add(1, Ordering::Relaxed);
    let sequence = Arc::new(AtomicU32::new(1));
    let mut bound: Option<(CommandId, String)> = None;
    loop {
        let frame = tokio::select! {
            frame = codec::read_frame(&mut reader) => frame,
            _ = crate::carrier::smpp::session::until_true(&mut stopped) => break,
            // Even an ESME that keeps sending enquire_link must bind in time.
            _ = tokio::time::sleep_until(bind_deadline), if bound.is_none() => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        if let Some(head) = codec::header(&frame).filter(|h| h.command_id & 0x8000_0000 != 0) {
            lock(&state.answers).push(Answer {
                command_id: head.command_id,
                command_status: head.command_status,
                sequence_number: head.sequence_number,
            });
        }
        let command = match codec::decode_frame(&frame) {
            Ok(command) => command,
            Err(FrameError::Body {
                command_id,
                sequence_number,
                ..
            }) => {
                if command_id & 0x8000_0000 == 0 {
                    let nack = codec::generic_nack(CommandStatus::EsmeRinvcmdlen, sequence_number);
                    let _ = out.send(codec::encode(&nack)).await;
                }
                continue;
            }
            Err(_) => break,
        };
        let seq = command.sequence_number();
        let reply = |command: Command| codec::encode(&command);
        let bind = match command.pdu() {
            Some(Pdu::BindTransceiver(b)) => Some((
                CommandId::BindTransceiverResp,
                b.system_id.as_str().to_string(),
                b.password.as_str().to_string(),
                true,
            )),
            Some(Pdu::BindTransmitter(b)) => Some((
                CommandId::BindTransmitterResp,
                b.system_id.as_str().to_string(),
                b.password.as_str().to_string(),
                false,
            )),
            Some(Pdu::BindReceiver(b)) => Some((
                CommandId::BindReceiverResp,
                b.system_id.as_str().to_string(),
                b.password.as_str().to_string(),
                true,
            )),
            _ => None,
        };
        if let Some((resp_id, system_id, password, receives)) = bind {
            let credentials_ok = || {
                // Both compared in constant time, whatever matches first.
                let system_id_ok =
                    crate::domain::credential::secrets_match(&state.config.system_id, &system_id);
                let password_ok =
                    crate::domain::credential::secrets_match(&state.config.password, &password);
                system_id_ok && password_ok
            };
            let ok = if bound.is_none() {
                let attempt = state.throttle.attempt(peer, credentials_ok);
                match tokio::time::timeout_at(bind_deadline, attempt).await {
                    Ok(ok) => ok,
                    // Its turn did not come before the bind timeout.
                    Err(_) => break,
                }
            } else {
                false
            };
            let status = if ok {
                CommandStatus::EsmeRok
            } else if bound.is_some() {
                CommandStatus::EsmeRalybnd
            } else {
                CommandStatus::EsmeRbindfail
            };
            let _ = out.send(reply(bind_response(resp_id, status, seq))).await;
            if !ok {
                if bound.is_none() {
                    break;
                }
                continue;
            }
            state.binds.fetch_add(1, Ordering::Relaxed);
            lock(&state.peers).insert(
                peer_id,
                Peer {
                    system_id: system_id.clone(),
                    receives,
                    out: out.clone(),
                    sequence: sequence.clone(),
                },
            );
            bound = Some((resp_id, system_id.clone()));
            if receives {
                state.flush_held(&system_id).await;
            }
            continue;
        }
        match command.pdu() {
            Some(Pdu::EnquireLink) => {
                let _ = out
                    .send(reply(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::EnquireLinkResp,
                    )))
                    .await;
            }
            Some(Pdu::Unbind) => {
                state.unbinds.fetch_add(1, Ordering::Relaxed);
                let _ = out
                    .send(reply(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::UnbindResp,
                    )))
                    .await;
                break;
            }
            Some(Pdu::SubmitSm(submit)) => {
                let can_send =
                    matches!(&bound, Some((id, _)) if *id != CommandId::BindReceiverResp);
                if !can_send {
                    let _ = out
                        .send(reply(codec::bare_response(
                            CommandId::SubmitSmResp,
                            CommandStatus::EsmeRinvbndsts,
                            seq,
                        )))
                        .await;
                    continue;
                }
                let system_id = bound.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
                handle_submit(&state, &out, seq, submit, &frame, &system_id).await;
            }
            Some(_) if command.id().is_response() => {}
            None if command.id().is_response() => {}
            _ => {
                let _ = out
                    .send(reply(codec::generic_nack(
                        CommandStatus::EsmeRinvcmdid,
                        seq,
                    )))
                    .await;
            }
        }
    }
    lock(&state.peers).remove(&peer_id);
}

async fn handle_submit(
    state: &Arc<State>,
    out: &mpsc::Sender<Vec<u8>>,
    seq: u32,
    submit: &rusmpp::pdus::SubmitSm,
    frame: &[u8],
    system_id: &str,
) {
    state.submit_count.fetch_add(1, Ordering::Relaxed);
    let destination = submit.destination_addr.as_str().to_string();
    let esm_class = u8::from(submit.esm_class);
    let mut payload: Option<Vec<u8>> = None;
    let (mut sar_ref, mut sar_total, mut sar_seq) = (None, None, None);
    for tlv in submit.tlvs() {
        match tlv.value() {
            Some(TlvValue::MessagePayload(p)) => payload = Some(p.value.as_ref().to_vec()),
            Some(TlvValue::SarMsgRefNum(n)) => sar_ref = Some(*n),
            Some(TlvValue::SarTotalSegments(n)) => sar_total = Some(*n),
            Some(TlvValue::SarSegmentSeqnum(n)) => sar_seq = Some(*n),
            _ => {}
        }
    }
    let raw = payload.unwrap_or_else(|| submit.short_message().as_ref().to_vec());
    let (udh, body) = if esm_class & 0x40 != 0 {
        split_udh(&raw)
    } else {
        (None, &raw[..])
    };
    let concat =
        udh.map(|c| (c.reference, c.total, c.part))
            .or(match (sar_ref, sar_total, sar_seq) {
                (Some(r), Some(t), Some(p)) => Some((r, t, p)),
                _ => None,
            });
    let mut record = SubmitRecord {
        source: submit.source_addr.as_str().to_string(),
        destination: destination.clone(),
        data_coding: u8::from(submit.data_coding),
        esm_class,
        message_id: None,
        status: 0,
        concat,
        body_hex: hex::encode(body),
    };
    let first_time = || lock(&state.seen).insert(frame[16..].to_vec());
    let refuse = |status: CommandStatus| codec::bare_response(CommandId::SubmitSmResp, status, seq);
    let response = match fate(&destination) {
        Fate::Silent => None,
        Fate::Refuse => Some(refuse(CommandStatus::EsmeRinvdstadr)),
        Fate::ThrottleOnce if first_time() => Some(refuse(CommandStatus::EsmeRthrottled)),
        Fate::QueueFullOnce if first_time() => Some(refuse(CommandStatus::EsmeRmsgqful)),
        fate => {
            let number = state.next_id.fetch_add(1, Ordering::Relaxed);
            let id = format!("{number:x}");
            let state_after = match fate {
                Fate::Receipt(s) => s,
                _ => MessageState::Delivered,
            };
            let delay = if fate == Fate::ReceiptFirst {
                Duration::ZERO
            } else {
                state.config.receipt_delay
            };
            if u8::from(submit.registered_delivery) & 0x03 != 0 {
                schedule_receipt(
                    state.clone(),
                    system_id.to_string(),
                    submit,
                    id.clone(),
                    number,
                    state_after,
                    delay,
                );
            }
            record.message_id = Some(id.clone());
            let resp = SubmitSmResp::builder().message_id(c_string(&id)).build();
            Some(Command::new(CommandStatus::EsmeRok, seq, resp))
        }
    };
    if let Some(response) = response {
        record.status = u32::from(response.status());
        let delay = if fate(&destination) == Fate::ReceiptFirst {
            Duration::from_millis(200).max(state.config.response_delay)
        } else {
            state.config.response_delay
        };
        if !delay.is_zero() {
            let out = out.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = out.send(codec::encode(&response)).await;
            });
        } else {
            let _ = out.send(codec::encode(&response)).await;
        }
    }
    lock(&state.submits).push(record);
}

fn schedule_receipt(
    state: Arc<State>,
    system_id: String,
    submit: &rusmpp::pdus::SubmitSm,
    id: String,
    number: u64,
    outcome: MessageState,
    delay: Duration,
) {
    let (stat, delivered) = match outcome {
        MessageState::Delivered => ("DELIVRD", "001"),
        MessageState::Expired => ("EXPIRED", "000"),
        MessageState::Rejected => ("REJECTD", "000"),
        MessageState::Undeliverable => ("UNDELIV", "000"),
        _ => ("UNKNOWN", "000"),
    };
    let text_id = if state.config.decimal_receipt_ids {
        number.to_string()
    } else {
        id.clone()
    };
    let date = receipt_date();
    let text = format!(
        "id:{text_id} sub:001 dlvrd:{delivered} submit date:{date} done date:{date} stat:{stat} err:000 text:"
    );
    let receipt: Pdu = DeliverSm::builder()
        .source_addr_ton(submit.dest_addr_ton)
        .source_addr_npi(submit.dest_addr_npi)
        .source_addr(submit.destination_addr.clone())
        .dest_addr_ton(submit.source_addr_ton)
        .dest_addr_npi(submit.source_addr_npi)
        .destination_addr(submit.source_addr.clone())
        .esm_class(EsmClass::from(0x04u8))
        .short_message(OctetString::from_vec(text.into_bytes()).unwrap_or_default())
        .tlvs(vec![
            MessageDeliveryRequestTlvValue::ReceiptedMessageId(c_string(&text_id)),
            MessageDeliveryRequestTlvValue::MessageState(outcome),
        ])
        .build()
        .into();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if state.send_to(&system_id, receipt, true).await {
            state.receipts_sent.fetch_add(1, Ordering::Relaxed);
        }
    });
}
