//! The webhook sender: delivers the `webhook_outbox`.
//!
//! - **Claims** due outbox rows under a lease (per message, only the oldest pending one, so
//!   each message's callbacks stay in order; several nodes split the rest).
//!   On PostgreSQL it also takes the status callbacks this node's status writes claimed for
//!   it as they wrote them (`service::callback_handoff`); it claims from the database when
//!   nothing waits there, and at least every 100 ms while something does.
//! - **Sends** status callbacks (retried with exponential backoff for a configurable window),
//!   inbound-message webhooks (primary URL, then the fallback URL; their TwiML answers become
//!   reply messages), usage-trigger, alarm and A2P registration notifications, in parallel
//!   across messages.
//! - **Writes** per round: done rows deleted, retries rescheduled, a monitor alert per failed
//!   request, and the reply messages TwiML asked for (admitted like API sends).
//! - **Woken** by `App::webhook_work` (anything that queued a row), else every 100 ms; each
//!   round first evaluates usage triggers and alarms when due (`engine::triggers`,
//!   `engine::alarms`), beside the webhooks they queue.

use crate::service::App;

use crate::domain::alert::{
    alert_text, alert_text_at, encode_pairs, Alert, DOCUMENT_PARSE_FAILURE, HTTP_RETRIEVAL_FAILURE,
    INVALID_MESSAGE_VERB, MAX_TWIML_REPLIES, REPLY_LIMIT_EXCEEDED,
};
use crate::domain::encoding::{count_segments, encoding_of, Encoding};
use crate::domain::message::{
    media_content_type, Direction, Media, Message, MessageStatus, MAX_BODY_CHARS,
    MAX_VALIDITY_PERIOD,
};
use crate::domain::number::{validate_url, E164};
use crate::domain::sid::{self, SidKind};
use crate::domain::time::now_micros;
use crate::domain::twiml::{self, ReplyMessage, Verb};
use crate::error::Result;
use crate::store::rows::{CallbackSubject, WebhookKind};
use crate::store::webhooks::{Settled, Settlement, Webhook};
use crate::webhook::{Request, Response, WebhookClient};
use std::collections::HashMap;

/// Webhooks claimed (and sent concurrently) per round.
const BATCH: i64 = 256;
/// Rounds under way at once: a round ends with its slowest request, and the next one's
/// requests keep the receivers busy meanwhile.
const ROUNDS_AT_ONCE: usize = 2;
/// Added to one request's timeout to make a claim's lease (renewed while requests go on).
const LEASE_MARGIN: i64 = 5_000_000;
/// Most `<Redirect>`s followed for one inbound message.
const MAX_REDIRECTS: usize = 5;
/// Longest wait between two attempts of a status callback.
const MAX_BACKOFF: i64 = 3600 * 1_000_000;

/// What sending one outbox row produced.
struct Delivery {
    webhook: Webhook,
    /// Every HTTP exchange, in order (redirects add some).
    exchanges: Vec<(Request, Response)>,
    /// The failure, if any: the alert's code and text.
    failure: Option<(i64, String, Option<u16>)>,
    /// The reply messages an inbound webhook's TwiML asked for.
    replies: Vec<ReplyMessage>,
    /// Microseconds the exchanges took.
    elapsed: i64,
}

/// The status callback's form, in the order Twilio's recorded traffic shows.
pub fn status_form(message: &CallbackSubject, webhook: &Webhook) -> Vec<(String, String)> {
    let status = webhook
        .message_status
        .clone()
        .unwrap_or_else(|| message.status.as_str().to_string());
    let mut form = Vec::new();
    if let Some(done) = &webhook.done_date {
        form.push(("RawDlrDoneDate".to_string(), done.clone()));
    }
    form.push(("SmsSid".into(), message.sid.clone()));
    form.push(("SmsStatus".into(), status.clone()));
    form.push(("MessageStatus".into(), status.clone()));
    form.push(("To".into(), message.to.clone()));
    if let Some(service) = &message.messaging_service_sid {
        form.push(("MessagingServiceSid".into(), service.clone()));
    }
    form.push(("MessageSid".into(), message.sid.clone()));
    form.push(("AccountSid".into(), message.account_sid.clone()));
    form.push(("From".into(), message.from.clone().unwrap_or_default()));
    form.push(("ApiVersion".into(), "2010-04-01".into()));
    if status == "failed" || status == "undelivered" {
        if let Some(code) = webhook.error_code {
            form.push(("ErrorCode".into(), code.to_string()));
        }
    }
    form
}

fn describe_failure(response: &Response) -> Option<(i64, String, Option<u16>)> {
    match &response.result {
        Err(reason) => Some((HTTP_RETRIEVAL_FAILURE, reason.clone(), None)),
        Ok(answer) if !(200..300).contains(&answer.status) => Some((
            HTTP_RETRIEVAL_FAILURE,
            format!("HTTP {} from the webhook", answer.status),
            Some(answer.status),
        )),
        Ok(_) => None,
    }
}

/// Reads a webhook's answer as messaging TwiML. `text/plain` answers are a reply's body.
fn read_answer(response: &Response) -> std::result::Result<Vec<Verb>, String> {
    let Ok(answer) = &response.result else {
        return Ok(Vec::new());
    };
    if answer.content_type.starts_with("text/plain") {
        let body = answer.body.trim();
        return Ok(if body.is_empty() {
            Vec::new()
        } else {
            vec![Verb::Message(ReplyMessage {
                body: body.to_string(),
                ..Default::default()
            })]
        });
    }
    twiml::parse(&answer.body).map_err(|err| err.to_string())
}

/// The record of a status callback's attempt (its outcome is set once it is settled).
fn callback_attempt(
    webhook: &Webhook,
    exchange: Option<&(Request, Response)>,
    elapsed: i64,
    now: i64,
) -> crate::store::console::CallbackAttempt {
    let (response_code, error) = match exchange.map(|(_, response)| &response.result) {
        Some(Ok(answer)) => (Some(i64::from(answer.status)), None),
        Some(Err(reason)) => (None, Some(reason.clone())),
        None => (None, None),
    };
    crate::store::console::CallbackAttempt {
        message_sid: webhook.message_sid.clone(),
        account_sid: webhook.account_sid.clone(),
        attempt: webhook.attempts + 1,
        reported_status: webhook.message_status.clone(),
        url: exchange.map_or_else(|| webhook.url.clone(), |(request, _)| request.url.clone()),
        method: exchange.map_or_else(
            || webhook.method.clone(),
            |(request, _)| request.method.clone(),
        ),
        response_code,
        error,
        latency: elapsed,
        outcome: String::new(),
        at: now,
    }
}

async fn deliver_inbound(client: &WebhookClient, first: Request, webhook: Webhook) -> Delivery {
    let mut delivery = Delivery {
        webhook,
        exchanges: Vec::new(),
        failure: None,
        replies: Vec::new(),
        elapsed: 0,
    };
    let mut request = first;
    for _ in 0..=MAX_REDIRECTS {
        let response = client.send(&request).await;
        let failure = describe_failure(&response);
        let verbs = if failure.is_none() {
            read_answer(&response)
        } else {
            Ok(Vec::new())
        };
        delivery.exchanges.push((request.clone(), response.clone()));
        if let Some(failure) = failure {
            delivery.failure = Some(failure);
            return delivery;
        }
        let verbs = match verbs {
            Ok(verbs) => verbs,
            Err(reason) => {
                let status = response.result.as_ref().ok().map(|a| a.status);
                delivery.failure = Some((DOCUMENT_PARSE_FAILURE, reason, status));
                return delivery;
            }
        };
        let mut redirect = None;
        for verb in verbs {
            match verb {
                Verb::Message(reply) => delivery.replies.push(reply),
                // Verbs after a <Redirect> are never reached.
                Verb::Redirect { url, method } => {
                    redirect = Some((url, method));
                    break;
                }
            }
        }
        match redirect {
            Some((url, method)) => {
                request = Request {
                    url: resolve_relative(&request.url, &url),
                    method,
                    ..request
                };
            }
            None => return delivery,
        }
    }
    delivery.failure = Some((
        DOCUMENT_PARSE_FAILURE,
        format!("more than {MAX_REDIRECTS} <Redirect>s"),
        None,
    ));
    delivery
}

fn resolve_relative(base: &str, target: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(target))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| target.to_string())
}

fn alert_for(
    account_sid: &str,
    resource_sid: &str,
    code: i64,
    reason: &str,
    status: Option<u16>,
    exchange: Option<&(Request, Response)>,
    now: i64,
) -> Alert {
    let url = exchange.map(|(_, r)| r.url.clone()).unwrap_or_default();
    let answer = exchange.and_then(|(_, r)| r.result.as_ref().ok());
    Alert {
        sid: sid::generate(SidKind::Alert),
        account_sid: account_sid.to_string(),
        error_code: code.to_string(),
        log_level: "error".into(),
        alert_text: alert_text(reason, code, &url, status),
        resource_sid: Some(resource_sid.to_string()),
        service_sid: None,
        request_method: exchange.map(|(q, _)| q.method.to_uppercase()),
        request_url: exchange.map(|(_, r)| r.url.clone()),
        request_variables: exchange.map(|(q, _)| encode_pairs(&q.params)),
        request_headers: exchange.map(|(q, r)| encode_pairs(&r.request_headers(q))),
        response_body: answer.map(|a| a.body.clone()),
        response_headers: answer.map(|a| encode_pairs(&a.header_pairs())),
        date_created: now,
    }
}

/// A round's deliveries under way.
enum InFlight<F: std::future::Future<Output = Delivery> + Send + 'static> {
    /// Polled on the round's own task: on the sender's own thread (SQLite) a task spawned per
    /// request cost more than its request.
    Polled(
        futures_util::stream::FuturesUnordered<
            futures_util::future::CatchUnwind<std::panic::AssertUnwindSafe<F>>,
        >,
    ),
    /// A task each: on the runtime the API shares (PostgreSQL), the API's requests interleave
    /// with them and they spread over its workers.
    Spawned(tokio::task::JoinSet<Delivery>),
}

impl<F: std::future::Future<Output = Delivery> + Send + 'static> InFlight<F> {
    fn new(spawned: bool) -> Self {
        if spawned {
            InFlight::Spawned(tokio::task::JoinSet::new())
        } else {
            InFlight::Polled(futures_util::stream::FuturesUnordered::new())
        }
    }

    fn push(&mut self, delivery: F) {
        match self {
            // A panic stays with its own delivery, as in a task of its own.
            InFlight::Polled(polled) => polled.push(futures_util::FutureExt::catch_unwind(
                std::panic::AssertUnwindSafe(delivery),
            )),
            InFlight::Spawned(spawned) => {
                spawned.spawn(delivery);
            }
        }
    }

    /// The next delivery done (`Err` if it panicked); `None` once all are.
    async fn next(&mut self) -> Option<std::result::Result<Delivery, ()>> {
        match self {
            InFlight::Polled(polled) => futures_util::StreamExt::next(polled)
                .await
                .map(|done| done.map_err(|_| ())),
            InFlight::Spawned(spawned) => {
                spawned.join_next().await.map(|done| done.map_err(|_| ()))
            }
        }
    }
}

impl App {
    /// Exponential backoff for the `attempts`-th retry (1-based).
    fn backoff(&self, attempts: i64) -> i64 {
        let base = self.settings.webhook_retry_base.max(1);
        let factor = 1i64 << attempts.clamp(0, 20);
        (base.saturating_mul(factor) / 2).clamp(base, MAX_BACKOFF.max(base))
    }

    /// A webhook claim's lease: it outlives one request, and is renewed while requests are
    /// still waited on (an inbound webhook may follow redirects), so no other node takes a row
    /// still in flight, and a dead node's rows are taken again soon.
    pub(crate) fn webhook_lease(&self) -> i64 {
        i64::try_from(self.settings.webhooks.timeout.as_micros())
            .unwrap_or(i64::MAX / 2)
            .saturating_add(LEASE_MARGIN)
    }

    /// The claim under which a status write claims its callbacks for this node's sender as
    /// it writes them (`service::callback_handoff`), with when its lease starts; `None` on a
    /// SQLite file (whose outbox leases live in the sender's memory), or when no sender runs
    /// here or it is behind.
    pub(crate) fn callback_birth_claim(
        &self,
    ) -> Option<(
        crate::store::webhooks::CallbackBirthClaim,
        std::time::Instant,
    )> {
        if self.store.backend() != crate::store::Backend::Postgres {
            return None;
        }
        self.callback_handoff
            .birth_claim(self.webhook_lease(), now_micros())
    }

    /// Hands the callbacks a committed status write claimed to this node's sender, or
    /// releases them if it stopped meanwhile.
    pub(crate) async fn hand_callbacks(
        &self,
        callbacks: Vec<Webhook>,
        claimed_at: Option<std::time::Instant>,
    ) {
        let Some(claimed_at) = claimed_at else {
            return;
        };
        if callbacks.is_empty() {
            return;
        }
        match self
            .callback_handoff
            .hand(callbacks, claimed_at, self.webhook_lease())
        {
            Ok(()) => self.webhook_work.notify_one(),
            Err(back) => {
                self.release_callbacks(back.iter().map(|w| w.id.as_str()))
                    .await
            }
        }
    }

    async fn release_callbacks<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let ids: Vec<&str> = ids.collect();
        if ids.is_empty() {
            return;
        }
        if let Err(err) = self
            .store
            .release_webhook_claims(self.callback_handoff.token(), &ids, now_micros())
            .await
        {
            tracing::warn!(%err, "releasing status callbacks claimed as they were written failed; they are claimed again after their lease");
        }
    }

    /// What a round sends: the database's claim when it is its turn (and it found any),
    /// else the callbacks handed over as they were written.
    async fn next_webhooks(
        &self,
        now: i64,
        lease: i64,
    ) -> Result<crate::store::webhooks::WebhookClaim> {
        if self.callback_handoff.database_turn() {
            self.callback_handoff.database_claimed();
            let claim = self.store.claim_webhooks(now, lease, BATCH).await?;
            if !claim.webhooks.is_empty() {
                return Ok(claim);
            }
        }
        let Some(taken) = self
            .callback_handoff
            .take(usize::try_from(BATCH).unwrap_or(0))
        else {
            return Ok(crate::store::webhooks::WebhookClaim {
                token: self.callback_handoff.token(),
                webhooks: Vec::new(),
                taken_over: 0,
            });
        };
        self.release_callbacks(taken.stale.iter().map(String::as_str))
            .await;
        Ok(crate::store::webhooks::WebhookClaim {
            token: taken.token,
            webhooks: taken.webhooks,
            taken_over: 0,
        })
    }

    /// One round of webhook delivery at `now` (microseconds). Returns how many were sent.
    pub async fn deliver_webhooks_once(&self, now: i64) -> Result<usize> {
        let lease = self.webhook_lease();
        let claim = self.next_webhooks(now, lease).await?;
        let token = claim.token;
        let claimed = claim.webhooks;
        if claimed.is_empty() {
            return Ok(0);
        }
        self.fault_hold(
            self.settings.fault_hold_webhook_claims,
            "fault injection: holding webhook claims",
            claimed.len(),
        )
        .await;
        if claim.taken_over > 0 {
            self.counters.webhooks_taken_over.fetch_add(
                claim.taken_over as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            tracing::warn!(
                webhooks = claim.taken_over,
                "took over webhooks whose claim lapsed (a node died or paused holding them)"
            );
        }
        let count = claimed.len();
        let mut tokens: HashMap<String, Option<String>> = HashMap::new();
        // The messages the status callbacks report, read in one go.
        let wanted: Vec<(&str, &str)> = claimed
            .iter()
            .filter(|w| w.kind == WebhookKind::Status)
            .map(|w| (w.account_sid.as_str(), w.message_sid.as_str()))
            .collect();
        let mut messages: HashMap<String, Option<CallbackSubject>> = self
            .store
            .callback_subjects(&wanted)
            .await?
            .into_iter()
            .map(|m| (m.sid.clone(), Some(m)))
            .collect();
        let mut settlements: Vec<Settlement> = Vec::new();
        let mut in_flight: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut tasks = InFlight::new(self.store.backend() == crate::store::Backend::Postgres);
        for webhook in claimed {
            if !tokens.contains_key(&webhook.account_sid) {
                let token = self
                    .store
                    .account(&webhook.account_sid)
                    .await?
                    .map(|a| a.auth_token);
                tokens.insert(webhook.account_sid.clone(), token);
            }
            let Some(auth_token) = tokens[&webhook.account_sid].clone() else {
                settlements.push(Settlement::done(webhook.id));
                continue;
            };
            let params = match webhook.kind {
                WebhookKind::Status => {
                    match messages.entry(webhook.message_sid.clone()).or_default() {
                        Some(message) => status_form(message, &webhook),
                        // The message was deleted: there is nothing left to report.
                        None => {
                            settlements.push(Settlement::done(webhook.id));
                            continue;
                        }
                    }
                }
                WebhookKind::A2pEvent => Vec::new(),
                WebhookKind::Inbound | WebhookKind::Trigger | WebhookKind::Alarm => {
                    form_urlencoded::parse(webhook.payload.as_deref().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect()
                }
            };
            let request = Request {
                url: webhook.url.clone(),
                method: webhook.method.clone(),
                params,
                json_body: (webhook.kind == WebhookKind::A2pEvent)
                    .then(|| webhook.payload.clone().unwrap_or_default()),
                auth_token,
                idempotency_token: webhook.id.clone(),
            };
            in_flight.insert(webhook.id.clone());
            let client = self.webhook_client.clone();
            let delivery = async move {
                match webhook.kind {
                    WebhookKind::Inbound => deliver_inbound(&client, request, webhook).await,
                    WebhookKind::Status
                    | WebhookKind::Trigger
                    | WebhookKind::Alarm
                    | WebhookKind::A2pEvent => {
                        let started = std::time::Instant::now();
                        let response = client.send(&request).await;
                        Delivery {
                            failure: describe_failure(&response),
                            webhook,
                            exchanges: vec![(request, response)],
                            replies: Vec::new(),
                            elapsed: i64::try_from(started.elapsed().as_micros())
                                .unwrap_or(i64::MAX),
                        }
                    }
                }
            };
            tasks.push(delivery);
        }
        // One bad delivery must not keep the others unsettled (they would be sent again when
        // their lease runs out): a failure leaves only its own row to be retried.
        let renew_every = std::time::Duration::from_micros(lease.max(3) as u64 / 3);
        let mut renewal =
            tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        loop {
            let joined = tokio::select! {
                joined = tasks.next() => match joined {
                    Some(joined) => joined,
                    None => break,
                },
                _ = renewal.tick() => {
                    let ids: Vec<&str> = in_flight.iter().map(String::as_str).collect();
                    if let Err(err) = self.store.renew_webhooks(&ids, token, now_micros().max(now), lease).await {
                        tracing::warn!(%err, "renewing webhook claims failed");
                    }
                    continue;
                }
            };
            match joined {
                Ok(delivery) => {
                    in_flight.remove(&delivery.webhook.id);
                    let mut own = Settlement::default();
                    match self.settle(delivery, now, &mut own).await {
                        Ok(()) => settlements.push(own),
                        Err(err) => tracing::error!(%err, "settling a webhook failed"),
                    }
                }
                Err(()) => tracing::error!("a webhook delivery panicked"),
            }
        }
        let replies = settlements.iter().any(|s| !s.replies.is_empty());
        self.store.settle_webhooks(&settlements, token, now).await?;
        if replies {
            self.work.notify_one();
        }
        Ok(count)
    }

    async fn settle(&self, delivery: Delivery, now: i64, out: &mut Settlement) -> Result<()> {
        let Delivery {
            webhook,
            exchanges,
            failure,
            replies,
            elapsed,
        } = delivery;
        // Status callbacks leave a record of each attempt for the console's message page.
        let mut attempt = matches!(webhook.kind, WebhookKind::Status)
            .then(|| callback_attempt(&webhook, exchanges.last(), elapsed, now));
        if let Some((code, reason, status)) = failure {
            out.alerts.push(alert_for(
                &webhook.account_sid,
                &webhook.message_sid,
                code,
                &reason,
                status,
                exchanges.last(),
                now,
            ));
            let id = webhook.id.clone();
            out.settled.push(match webhook.kind {
                WebhookKind::Inbound if webhook.fallback_url.is_some() => Settled::Fallback { id },
                WebhookKind::Inbound => Settled::Done { id },
                WebhookKind::Status
                | WebhookKind::Trigger
                | WebhookKind::Alarm
                | WebhookKind::A2pEvent => {
                    let due_at = now + self.backoff(webhook.attempts + 1);
                    if due_at <= webhook.created_at + self.settings.webhook_retry_window {
                        Settled::Retry { id, due_at }
                    } else {
                        tracing::warn!(url = %webhook.url, message = %webhook.message_sid, "status callback given up");
                        Settled::Done { id }
                    }
                }
            });
            if let Some(mut attempt) = attempt.take() {
                attempt.outcome = match out.settled.last() {
                    Some(Settled::Retry { .. }) => "retrying",
                    _ => "given up",
                }
                .into();
                out.attempts.push(attempt);
            }
            return Ok(());
        }
        out.settled.push(Settled::Done {
            id: webhook.id.clone(),
        });
        if let Some(mut attempt) = attempt.take() {
            attempt.outcome = "delivered".into();
            out.attempts.push(attempt);
        }
        if replies.is_empty() {
            return Ok(());
        }
        let Some(inbound) = self
            .store
            .message(&webhook.account_sid, &webhook.message_sid)
            .await?
        else {
            return Ok(());
        };
        // Replies are sends of the account: refused, as an API send is, when it is not active
        // or its family's balance is spent (caps and opt-outs are checked when they are stored).
        let refused = match self.store.account(&webhook.account_sid).await? {
            None => Some("the account no longer exists".to_string()),
            Some(account) if account.status != crate::domain::account::AccountStatus::Active => {
                Some("Account not active".to_string())
            }
            Some(account) => self
                .check_funds(&account)
                .await
                .err()
                .map(|e| e.to_string()),
        };
        if let Some(reason) = refused {
            out.alerts.push(alert_for(
                &webhook.account_sid,
                &webhook.message_sid,
                INVALID_MESSAGE_VERB,
                &format!("{} <Message> replies not sent: {reason}", replies.len()),
                None,
                exchanges.last(),
                now,
            ));
            return Ok(());
        }
        // Twilio sends at most 10 replies to one incoming message (redirects included): a
        // runaway answer must not turn one SMS into thousands.
        let dropped = replies.len().saturating_sub(MAX_TWIML_REPLIES);
        if dropped > 0 {
            let reason = format!(
                "TwiML Reply message limit exceeded: {} <Message> replies, {dropped} dropped (at most {MAX_TWIML_REPLIES} per incoming message)",
                replies.len()
            );
            let last = exchanges.last();
            let mut warning = alert_for(
                &webhook.account_sid,
                &webhook.message_sid,
                REPLY_LIMIT_EXCEEDED,
                &reason,
                None,
                last,
                now,
            );
            warning.log_level = "warning".into();
            warning.alert_text = alert_text_at(
                "WARNING",
                &reason,
                REPLY_LIMIT_EXCEEDED,
                last.map(|(_, r)| r.url.as_str()).unwrap_or_default(),
                None,
            );
            out.alerts.push(warning);
        }
        for reply in replies.into_iter().take(MAX_TWIML_REPLIES) {
            match self.reply_message(&inbound, &reply, now).await? {
                Ok(created) => {
                    let (message, _) = &created;
                    out.reply_estimates.push(
                        crate::domain::message::message_cost(
                            &self.settings.prices,
                            &message.to,
                            message.num_segments.max(1),
                            message.num_media > 0,
                        )
                        .unwrap_or(0),
                    );
                    out.replies.push(created);
                }
                Err(reason) => out.alerts.push(alert_for(
                    &webhook.account_sid,
                    &webhook.message_sid,
                    INVALID_MESSAGE_VERB,
                    &reason,
                    None,
                    exchanges.last(),
                    now,
                )),
            }
        }
        Ok(())
    }

    /// Builds the outbound-reply message a TwiML `<Message>` asks for, or says why not.
    async fn reply_message(
        &self,
        inbound: &Message,
        reply: &ReplyMessage,
        now: i64,
    ) -> Result<std::result::Result<(Message, Vec<Media>), String>> {
        let to_raw = reply
            .to
            .clone()
            .unwrap_or_else(|| inbound.from.clone().unwrap_or_default());
        let Some(to) = E164::parse(&to_raw) else {
            return Ok(Err(format!(
                "<Message to=\"{to_raw}\"> is not a valid number"
            )));
        };
        let from = reply.from.clone().unwrap_or_else(|| inbound.to.clone());
        let sender = self
            .store
            .account_sender(&inbound.account_sid, &from)
            .await?
            .filter(|s| s.sms || s.mms);
        if sender.is_none() {
            return Ok(Err(format!(
                "<Message from=\"{from}\"> is not a sender of this account"
            )));
        }
        if reply.body.chars().count() > MAX_BODY_CHARS {
            return Ok(Err("<Message> body exceeds 1600 characters".into()));
        }
        let status_callback = match &reply.action {
            Some(action) => match validate_url("action", action) {
                Ok(url) => url,
                Err(_) => return Ok(Err(format!("<Message action=\"{action}\"> is not a URL"))),
            },
            None => None,
        };
        if self
            .is_opted_out(
                &inbound.account_sid,
                to.as_str(),
                Some(&from),
                inbound.messaging_service_sid.as_deref(),
            )
            .await?
        {
            return Ok(Err(format!(
                "21610: {} has opted out of messages from {from}",
                to.as_str()
            )));
        }
        let is_mms = !reply.media.is_empty();
        let message_sid = sid::generate(if is_mms {
            SidKind::MmsMessage
        } else {
            SidKind::Message
        });
        let media = reply
            .media
            .iter()
            .map(|url| Media {
                sid: sid::generate(SidKind::Media),
                message_sid: message_sid.clone(),
                account_sid: inbound.account_sid.clone(),
                url: url.clone(),
                content_type: media_content_type(url).to_string(),
                date_created: now,
                date_updated: now,
            })
            .collect::<Vec<_>>();
        let message = Message {
            sid: message_sid,
            account_sid: inbound.account_sid.clone(),
            messaging_service_sid: None,
            direction: Direction::OutboundReply,
            from: Some(from),
            to: to.as_str().to_string(),
            encoding: match encoding_of(&reply.body) {
                Encoding::Gsm7 => "GSM-7".into(),
                Encoding::Ucs2 => "UCS-2".into(),
            },
            num_segments: if is_mms {
                1
            } else {
                count_segments(&reply.body).max(1) as i64
            },
            num_media: media.len() as i64,
            body: reply.body.clone(),
            status: MessageStatus::Queued,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: self.settings.price_unit.clone(),
            status_callback,
            validity_period: MAX_VALIDITY_PERIOD,
            send_at: None,
            date_created: now,
            date_updated: now,
            date_sent: None,
        };
        Ok(Ok((message, media)))
    }

    /// Sends webhooks until `shutdown` fires: `ROUNDS_AT_ONCE` rounds at a time, so the next
    /// round's requests go out while the last of the previous one are still answered.
    pub async fn run_webhooks(&self, shutdown: tokio::sync::watch::Receiver<bool>) {
        self.callback_handoff.open();
        let lanes =
            (0..ROUNDS_AT_ONCE).map(|lane| self.run_webhook_rounds(lane == 0, shutdown.clone()));
        futures_util::future::join_all(lanes).await;
        // What waits in the handoff goes back to the database, for the next claim anywhere.
        let held = self.callback_handoff.close();
        self.release_callbacks(held.iter().map(String::as_str))
            .await;
    }

    /// One round after another. Rounds running at once claim under tokens of their own, and a
    /// message's next callback is claimable only once its previous one is settled, so they
    /// never send one callback twice nor a message's callbacks out of order (as with nodes).
    async fn run_webhook_rounds(
        &self,
        evaluates: bool,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if evaluates {
                // Triggers and alarms are evaluated here, beside the webhooks they queue, so
                // a slow evaluation never holds up dispatching.
                self.evaluate_triggers_if_due(now_micros()).await;
                self.evaluate_alarms_if_due(now_micros()).await;
            }
            let sent = self
                .deliver_webhooks_once(now_micros())
                .await
                .unwrap_or_else(|err| {
                    tracing::error!(%err, "webhook round failed");
                    0
                });
            if sent == 0 {
                tokio::select! {
                    _ = self.webhook_work.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}
