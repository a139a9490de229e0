//! The dispatcher: the loop that sends what the API queued.
//!
//! - **Claims** due messages (`messages` rows `queued`/`accepted`/`scheduled` whose time has
//!   come) under a lease, so on PostgreSQL several nodes split them without duplicates and a
//!   dead node's claims are taken over when the lease runs out.
//! - **Decides** each: account still active (else 30002), not expired (30036), a sender
//!   (chosen in a Messaging Service's pool), not opted out since (21610), registered for US A2P
//!   10DLC when `a2p_enforcement` is on (30034), and its pacing slot.
//! - **Submits** the ready ones to the carrier (simulated or SMPP) by route, one batch each.
//! - **Writes** every outcome in one transaction per round: statuses, events, carrier records,
//!   usage, and the status callbacks they queue in `webhook_outbox`.
//! - **Woken** by `App::work` (the API's writer commits new messages), else every 100 ms for
//!   scheduled messages, pacing slots and receipts coming due. Each round also applies due
//!   delivery receipts (`receipts`), charges number rentals and expires incomplete inbound parts.

use crate::carrier::{Submit, SubmitOutcome};
use crate::domain::encoding::count_segments;
use crate::domain::message::{message_cost, Direction, Message, MessageStatus, EXPIRED_ERROR};
use crate::domain::messaging_service::MessagingService;
use crate::domain::number::E164;
use crate::domain::sender::{choose_sender, Destination, SelectionSettings, Sender, SenderKind};
use crate::domain::time::now_micros;
use crate::error::Result;
use crate::service::App;
use crate::store::carrier::CarrierRecords;
use crate::store::messages::Claim;
use crate::store::messages::{Claimed, Outcome};
use std::collections::HashMap;

/// What a message waiting to be sent fails with when its account was suspended or closed
/// (Twilio's 30002).
const ACCOUNT_SUSPENDED: (i64, &str) = (30002, "Account suspended");

/// Messages (and receipts) a dispatcher round takes.
pub(super) const BATCH: i64 = 500;

/// The longest a dispatcher round waits for the API's writes to pause (`MessageWriter::lull`).
const DISPATCH_YIELDS_AT_MOST: std::time::Duration = std::time::Duration::from_millis(20);

/// A round's batch when the API's writes did not pause: its transactions are shorter, so the
/// API requests that queue behind them wait less.
const BATCH_UNDER_LOAD: i64 = 100;

/// A sender may send a message this far ahead of its paced slot (one dispatcher tick), so a
/// fast sender sends many messages per round.
const PACING_HORIZON: i64 = 100_000;

impl App {
    /// Segments per second for a sender.
    fn rate(&self, sender: &Sender) -> f64 {
        if let Some(rate) = self.settings.pacing_overrides.get(&sender.address) {
            return rate.max(0.001);
        }
        let pacing = self.settings.pacing;
        let rate = match sender.kind {
            SenderKind::LongCode => pacing.long_code,
            SenderKind::TollFree => pacing.toll_free,
            SenderKind::ShortCode => pacing.short_code,
            SenderKind::Alpha => pacing.alpha,
        };
        rate.max(0.001)
    }

    /// Submits one route's batch and turns the carrier's answers into outcomes (with the
    /// carrier's records, to commit with them).
    ///
    /// Nothing is handed to the carrier after `deadline` (the claim may have passed to another
    /// node by then): such messages get no outcome and wait for the next claim.
    async fn submit_batch(
        &self,
        route: &str,
        batch: Vec<(Message, Sender)>,
        sandboxes: &std::collections::HashSet<String>,
        now: i64,
        deadline: std::time::Instant,
    ) -> Result<(Vec<(Message, Outcome)>, CarrierRecords)> {
        let submits: Vec<Submit> = batch
            .iter()
            .map(|(m, s)| Submit {
                message_sid: m.sid.clone(),
                from: s.address.clone(),
                to: m.to.clone(),
                body: m.body.clone(),
                segments: m.num_segments,
                is_mms: m.num_media > 0,
            })
            .collect();
        let (outcomes, records) = self.carrier.submit(route, &submits, now, deadline).await?;
        let mut decided = Vec::with_capacity(batch.len());
        for ((message, sender), outcome) in batch.into_iter().zip(outcomes) {
            let outcome = match outcome {
                SubmitOutcome::Accepted { carrier_message_id } => Outcome::Sent {
                    // A sandbox's sends are free: they never left the building.
                    cost: if sandboxes.contains(&message.account_sid) {
                        Some(0)
                    } else {
                        message_cost(
                            &self.settings.prices,
                            &message.to,
                            message.num_segments,
                            message.num_media > 0,
                        )
                    },
                    category: crate::domain::usage::message_category(
                        message.num_media > 0,
                        false,
                        sender.kind.usage_name(),
                    ),
                    from: sender.address,
                    route: route.to_string(),
                    carrier_message_id,
                    at: now,
                },
                SubmitOutcome::Rejected {
                    error_code,
                    error_message,
                } => Outcome::Failed {
                    from: Some(sender.address),
                    error_code,
                    error_message,
                    at: now,
                },
                SubmitOutcome::Deferred { retry_at } => Outcome::Later {
                    due_at: retry_at,
                    from: Some(sender.address),
                    status: MessageStatus::Queued,
                },
                SubmitOutcome::Abandoned => continue,
            };
            decided.push((message, outcome));
        }
        Ok((decided, records))
    }

    /// One round of the dispatcher at time `now` (microseconds): claims due messages, decides
    /// each (expiry, sender choice, pacing), submits the ready ones to the carrier as one
    /// batch, and records every outcome in one transaction. Returns how many were claimed.
    pub async fn dispatch_once(&self, now: i64) -> Result<usize> {
        self.dispatch_round(now, BATCH).await
    }

    /// This round's claim and the time its submits must start by: messages the writer
    /// claimed as it wrote them (`service::handoff`), or a claim from the database when it
    /// is the database's turn or nothing waits in the handoff.
    async fn next_claim(&self, now: i64, limit: i64) -> Result<(Claim, std::time::Instant)> {
        if !self.handoff.database_turn() {
            if let Some(handed) = self.take_handed(limit).await? {
                return Ok(handed);
            }
        }
        // Taken before the claim, so the lease (which the database starts after it) outlasts
        // it. Submits start only in the lease's first half: the second covers the carrier's
        // answer and the record, so a claim that lapsed is never submitted under.
        let claimed_at = std::time::Instant::now();
        let claim = self
            .store
            .claim_due(now, self.settings.dispatch_lease, limit)
            .await?;
        self.handoff.database_claimed();
        if claim.messages.is_empty() {
            if let Some(handed) = self.take_handed(limit).await? {
                return Ok(handed);
            }
        }
        let submit_deadline = claimed_at
            + std::time::Duration::from_micros(self.settings.dispatch_lease.max(0) as u64 / 2);
        Ok((claim, submit_deadline))
    }

    /// Up to `limit` messages from the handoff, as a claim; those that waited there past
    /// half their lease are released for a claim from the database instead.
    async fn take_handed(&self, limit: i64) -> Result<Option<(Claim, std::time::Instant)>> {
        let Some(taken) = self.handoff.take(usize::try_from(limit).unwrap_or(0)) else {
            return Ok(None);
        };
        if !taken.stale.is_empty() {
            tracing::warn!(
                messages = taken.stale.len(),
                "messages waited for the dispatcher past half their lease; released for a new claim"
            );
            let stale: Vec<&str> = taken.stale.iter().map(String::as_str).collect();
            self.store
                .release_message_claims(taken.token, &stale, now_micros())
                .await?;
        }
        if taken.messages.is_empty() {
            return Ok(None);
        }
        Ok(Some((
            Claim {
                token: taken.token,
                messages: taken.messages,
                taken_over: 0,
            },
            taken.submit_by,
        )))
    }

    /// `dispatch_once` with at most `limit` messages.
    async fn dispatch_round(&self, now: i64, limit: i64) -> Result<usize> {
        let (claim, submit_deadline) = self.next_claim(now, limit).await?;
        let token = claim.token;
        let claimed = claim.messages;
        if claimed.is_empty() {
            return Ok(0);
        }
        if claim.taken_over > 0 {
            // Their previous holder stopped before recording them: any it had handed to the
            // carrier is submitted again now.
            self.counters.claims_taken_over.fetch_add(
                claim.taken_over as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            tracing::warn!(
                messages = claim.taken_over,
                "took over messages whose claim lapsed (a node died or paused holding them); those it had submitted may be submitted twice"
            );
        }
        self.fault_hold(
            self.settings.fault_hold_claims,
            "fault injection: holding claims",
            claimed.len(),
        )
        .await;
        let mut services: HashMap<String, (MessagingService, Vec<Sender>)> = HashMap::new();
        let mut senders: HashMap<(String, String), Option<Sender>> = HashMap::new();
        // Sticky senders of this batch's recipients, one query per service.
        let mut recipients: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &claimed {
            if let (None, Some(service)) = (&c.message.from, &c.message.messaging_service_sid) {
                recipients
                    .entry(service.as_str())
                    .or_default()
                    .push(c.message.to.as_str());
            }
        }
        let mut sticky_by_service: HashMap<String, HashMap<String, String>> = HashMap::new();
        for (service, tos) in recipients {
            sticky_by_service.insert(
                service.to_string(),
                self.store.sticky_senders(service, &tos).await?,
            );
        }
        // Opt-outs recorded since these messages were accepted, checked again here for every
        // outbound message (API sends and TwiML replies alike), but the keyword auto-replies.
        let mut recipients_by_account: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &claimed {
            if c.message.direction != Direction::Inbound && !c.opt_out_exempt {
                recipients_by_account
                    .entry(c.message.account_sid.as_str())
                    .or_default()
                    .push(c.message.to.as_str());
            }
        }
        let mut opted_out = crate::domain::opt_out::OptOutsByRecipient::default();
        for (account, tos) in recipients_by_account {
            for (recipient, scope, stopped) in self.store.opt_outs_of(account, &tos).await? {
                opted_out.add(account.to_string(), recipient, scope, stopped);
            }
        }
        // Rates the parents set on accounts (segments per second across their senders).
        let batch_accounts: Vec<&str> = {
            let mut accounts: Vec<&str> = claimed
                .iter()
                .map(|c| c.message.account_sid.as_str())
                .collect();
            accounts.sort_unstable();
            accounts.dedup();
            accounts
        };
        let account_rates: HashMap<String, f64> = self
            .store
            .account_caps(&batch_accounts)
            .await?
            .into_iter()
            .filter_map(|(account, caps)| caps.max_sps.map(|rate| (account, rate.max(0.001))))
            .collect();
        // Accounts suspended or closed (or under a parent that is) since their messages were
        // accepted: those messages stop here (30002), so one non-compliant tenant's queue is
        // contained while its siblings' goes on.
        let mut inactive = std::collections::HashSet::new();
        for account in &batch_accounts {
            let active = match self.cached_account(account).await? {
                Some(account) => self.ensure_active(&account).await.is_ok(),
                None => false,
            };
            if !active {
                inactive.insert(account.to_string());
            }
        }
        // With A2P enforcement: whether each US long code of the round is in a service with a
        // verified campaign, read once per sender.
        let mut registered: HashMap<(String, String), bool> = HashMap::new();
        let mut decided: Vec<(Message, Outcome)> = Vec::new();
        // Messages with a sender, waiting for their pacing slot.
        let mut paced: Vec<(Message, Sender, Option<i64>)> = Vec::new();
        let mut ready: Vec<(Message, Sender)> = Vec::new();
        for Claimed {
            message,
            pace_slot,
            opt_out_exempt,
            ..
        } in claimed
        {
            let mut message = message;
            if message.num_segments == 0 {
                message.num_segments = if message.num_media > 0 {
                    1
                } else {
                    count_segments(&message.body).max(1) as i64
                };
            }
            if message.status.is_final() || message.status == MessageStatus::Sent {
                continue;
            }
            if inactive.contains(&message.account_sid) {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: ACCOUNT_SUSPENDED.0,
                        error_message: ACCOUNT_SUSPENDED.1.into(),
                        at: now,
                    },
                ));
                continue;
            }
            if now > message.expires_at() {
                let (code, text) = EXPIRED_ERROR;
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: code,
                        error_message: text.into(),
                        at: now,
                    },
                ));
                continue;
            }
            let sender = match (&message.from, &message.messaging_service_sid) {
                (Some(from), None) => {
                    // Read once per round for each sender (a batch is mostly a few senders'),
                    // exact as of this round.
                    let key = (message.account_sid.clone(), from.clone());
                    match senders.get(&key) {
                        Some(known) => known.clone(),
                        None => {
                            let found = self
                                .store
                                .account_sender(&message.account_sid, from)
                                .await?;
                            senders.insert(key, found.clone());
                            found
                        }
                    }
                }
                (_, Some(service_sid)) => {
                    if !services.contains_key(service_sid) {
                        let service = self
                            .store
                            .service(&message.account_sid, service_sid)
                            .await?;
                        let pool = self.store.pool_senders(service_sid).await?;
                        if let Some(service) = service {
                            services.insert(service_sid.clone(), (service, pool));
                        }
                    }
                    match services.get(service_sid) {
                        Some((service, pool)) => {
                            let sticky = match &message.from {
                                Some(from) => Some(from.clone()),
                                None if service.sticky_sender => sticky_by_service
                                    .get(service_sid)
                                    .and_then(|known| known.get(&message.to))
                                    .cloned(),
                                None => None,
                            };
                            let settings = SelectionSettings {
                                // An already chosen sender (deferred by pacing) stays.
                                sticky_sender: service.sticky_sender || message.from.is_some(),
                                area_code_geomatch: service.area_code_geomatch,
                                mms_converter: service.mms_converter,
                            };
                            let to = Destination::new(&message.to);
                            choose_sender(
                                pool,
                                settings,
                                &to,
                                sticky.as_deref(),
                                message.num_media > 0,
                            )
                            .map(|selection| selection.sender.clone())
                        }
                        None => None,
                    }
                }
                (None, None) => None,
            };
            let Some(sender) = sender else {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: None,
                        error_code: 21704,
                        error_message: crate::store::messages::delivery_error_message(21704).into(),
                        at: now,
                    },
                ));
                continue;
            };
            let blocked = message.direction != Direction::Inbound
                && !opt_out_exempt
                && opted_out.blocks_message(
                    &message.account_sid,
                    &message.to,
                    Some(&sender.address),
                    message.messaging_service_sid.as_deref(),
                );
            if blocked {
                decided.push((
                    message,
                    Outcome::Failed {
                        from: Some(sender.address),
                        error_code: 21610,
                        error_message: crate::store::messages::delivery_error_message(21610).into(),
                        at: now,
                    },
                ));
                continue;
            }
            if self.settings.a2p_enforcement
                && message.direction != Direction::Inbound
                && crate::domain::a2p::is_us_10dlc(
                    sender.kind == SenderKind::LongCode,
                    sender.iso_country.as_deref(),
                    &E164::parse(&message.to)
                        .map(|n| n.iso_country())
                        .unwrap_or_default(),
                )
            {
                let key = (message.account_sid.clone(), sender.address.clone());
                let is_registered = match registered.get(&key) {
                    Some(known) => *known,
                    None => {
                        let found = self
                            .store
                            .registered_numbers(&message.account_sid, &[&sender.address])
                            .await?
                            .contains(&sender.address);
                        registered.insert(key, found);
                        found
                    }
                };
                if !is_registered {
                    let (code, text) = crate::domain::a2p::UNREGISTERED_10DLC;
                    decided.push((
                        message,
                        Outcome::Failed {
                            from: Some(sender.address),
                            error_code: code,
                            error_message: text.into(),
                            at: now,
                        },
                    ));
                    continue;
                }
            }
            paced.push((message, sender, pace_slot));
        }
        // Pacing state of every sender (and rate-capped account) this round needs, read at once.
        let mut keys: Vec<&str> = Vec::new();
        for (message, sender, pace_slot) in &paced {
            if pace_slot.is_some() && message.from.as_deref() == Some(sender.address.as_str()) {
                continue;
            }
            keys.push(sender.address.as_str());
            if account_rates.contains_key(&message.account_sid) {
                keys.push(message.account_sid.as_str());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut pacing: HashMap<String, i64> = if keys.is_empty() {
            HashMap::new()
        } else {
            let stored = self.store.pacing_many(&keys).await?;
            keys.iter()
                .map(|key| (key.to_string(), stored.get(*key).copied().unwrap_or(0)))
                .collect()
        };
        for (message, sender, pace_slot) in paced {
            // A message deferred by pacing already holds its slot; others take the next one
            // of their sender, so a sender's messages keep their order.
            let slot = match pace_slot {
                Some(slot) if message.from.as_deref() == Some(sender.address.as_str()) => slot,
                _ => {
                    // The account's own rate (a cap) paces it like a sender, under its SID.
                    let account_rate = account_rates.get(&message.account_sid).copied();
                    let mut slot = now.max(pacing.get(&sender.address).copied().unwrap_or(0));
                    if account_rate.is_some() {
                        slot = slot.max(pacing.get(&message.account_sid).copied().unwrap_or(0));
                    }
                    let segments = message.num_segments.max(1) as f64;
                    let cost = (segments / self.rate(&sender) * 1_000_000.0) as i64;
                    pacing.insert(sender.address.clone(), slot + cost.max(1));
                    if let Some(rate) = account_rate {
                        let cost = (segments / rate * 1_000_000.0) as i64;
                        pacing.insert(message.account_sid.clone(), slot + cost.max(1));
                    }
                    slot
                }
            };
            if slot > now + PACING_HORIZON {
                decided.push((
                    message,
                    Outcome::Later {
                        due_at: slot,
                        from: Some(sender.address),
                        status: MessageStatus::Queued,
                    },
                ));
                continue;
            }
            ready.push((message, sender));
        }
        let mut records = CarrierRecords::default();
        if !ready.is_empty() {
            // Each message's route: its sender's inventory route, else its destination.
            let inventory = if self.carrier.has_smpp() {
                let addresses: Vec<&str> = ready.iter().map(|(_, s)| s.address.as_str()).collect();
                self.store.inventory_routes(&addresses).await?
            } else {
                HashMap::new()
            };
            // Sandbox accounts' messages go to the simulator whatever the routes.
            let mut sandboxes = std::collections::HashSet::new();
            let mut accounts: Vec<&str> =
                ready.iter().map(|(m, _)| m.account_sid.as_str()).collect();
            accounts.sort_unstable();
            accounts.dedup();
            for account in accounts {
                if self
                    .cached_account(account)
                    .await?
                    .is_some_and(|a| a.sandbox)
                {
                    sandboxes.insert(account.to_string());
                }
            }
            let mut by_route: HashMap<String, Vec<(Message, Sender)>> = HashMap::new();
            for (message, sender) in ready {
                let route = if sandboxes.contains(&message.account_sid) {
                    crate::carrier::smpp::route::SIMULATED.to_string()
                } else {
                    self.carrier.route_for(
                        inventory.get(&sender.address).map(String::as_str),
                        &message.to,
                    )
                };
                by_route.entry(route).or_default().push((message, sender));
            }
            if !sandboxes.is_empty() {
                tracing::info!(accounts = ?sandboxes, "sandbox accounts' messages go to the simulated carrier, free");
            }
            let mut background = 0;
            for (route, batch) in by_route {
                if route == crate::carrier::smpp::route::SIMULATED {
                    let (outcomes, kept) = self
                        .submit_batch(&route, batch, &sandboxes, now, submit_deadline)
                        .await?;
                    decided.extend(outcomes);
                    records.extend(kept);
                    continue;
                }
                // SMPP batches wait on the network (a silent SMSC costs a whole response
                // timeout): they submit and record in the background, a bounded number at a
                // time, while this round goes on. The claim's lease covers them meanwhile.
                let permit = self.carrier.batch_permit().await;
                background += batch.len();
                let app = self.clone();
                // SMPP routes carry no sandbox's messages.
                let no_sandboxes = std::collections::HashSet::new();
                tokio::spawn(async move {
                    let _permit = permit;
                    let recorded = match app
                        .submit_batch(&route, batch, &no_sandboxes, now, submit_deadline)
                        .await
                    {
                        Ok((outcomes, kept)) => {
                            app.record_outcomes(&outcomes, &[], &kept, now, token).await
                        }
                        Err(err) => Err(err),
                    };
                    match recorded {
                        Ok(recorded) => {
                            app.observe_changes(&recorded.changes).await;
                            app.webhook_work.notify_one()
                        }
                        Err(err) => {
                            tracing::error!(%err, %route, "recording an SMPP batch failed; its messages are retried after their lease")
                        }
                    }
                });
            }
            let count = decided.len() + background;
            let pacing: Vec<(String, i64)> = pacing.into_iter().collect();
            let recorded = self
                .record_outcomes(&decided, &pacing, &records, now, token)
                .await?;
            self.observe_changes(&recorded.changes).await;
            return Ok(count);
        }
        let count = decided.len();
        let pacing: Vec<(String, i64)> = pacing.into_iter().collect();
        let recorded = self
            .record_outcomes(&decided, &pacing, &records, now, token)
            .await?;
        self.observe_changes(&recorded.changes).await;
        Ok(count)
    }

    /// `Store::record_outcomes`, claiming the status callbacks it queues for this node's
    /// webhook sender (`service::callback_handoff`), and handing them over once committed.
    async fn record_outcomes(
        &self,
        outcomes: &[(Message, Outcome)],
        pacing: &[(String, i64)],
        carrier: &crate::store::carrier::CarrierRecords,
        now: i64,
        token: i64,
    ) -> Result<crate::store::messages::Recorded> {
        let birth = self.callback_birth_claim();
        let mut recorded = self
            .store
            .record_outcomes(
                outcomes,
                pacing,
                carrier,
                now,
                token,
                birth.map(|(claim, _)| claim),
            )
            .await?;
        self.hand_callbacks(
            std::mem::take(&mut recorded.callbacks),
            birth.map(|(_, at)| at),
        )
        .await;
        Ok(recorded)
    }

    /// Runs the dispatcher and receipts until `shutdown` fires: a round, then a wait for new
    /// work (or a short tick, for scheduled messages, pacing and receipts coming due).
    pub async fn run_workers(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        match self.store.end_claims_of_earlier_servers(now_micros()).await {
            Ok(0) => {}
            Ok(ended) => tracing::warn!(
                messages = ended,
                "the last server on this database stopped holding claims (it crashed); they are sent now"
            ),
            Err(err) => tracing::error!(%err, "ending an earlier server's claims failed; they are claimed after their leases"),
        }
        self.handoff.open();
        let mut receipt_rounds = super::receipts::ReceiptRounds::default();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let limit = if self.writer.lull(DISPATCH_YIELDS_AT_MOST).await {
                BATCH
            } else {
                BATCH_UNDER_LOAD
            };
            self.handoff.set_sending(self.carrier.every_route_bound());
            let now = now_micros();
            let round = std::time::Instant::now();
            let dispatched = self.dispatch_round(now, limit).await.unwrap_or_else(|err| {
                tracing::error!(%err, "dispatch round failed");
                0
            });
            if dispatched > 0 {
                metrics::histogram!(crate::telemetry::DISPATCH_ROUND)
                    .record(round.elapsed().as_secs_f64());
            }
            let behind = dispatched as i64 >= limit;
            let delivered = if receipt_rounds.due(behind, std::time::Instant::now()) {
                self.apply_receipts_limited(now, limit)
                    .await
                    .unwrap_or_else(|err| {
                        tracing::error!(%err, "receipt round failed");
                        0
                    })
            } else {
                0
            };
            if let Err(err) = self.charge_rentals(now).await {
                tracing::error!(%err, "rental charges failed");
            }
            self.expire_mo_parts_if_due(now).await;
            if dispatched > 0 || delivered > 0 {
                // Status changes may have queued callbacks.
                self.webhook_work.notify_one();
            }
            if dispatched == 0 && delivered == 0 {
                tokio::select! {
                    _ = self.work.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        // What waits in the handoff goes back to the database, for the next claim anywhere.
        let held = self.handoff.close();
        if !held.is_empty() {
            let sids: Vec<&str> = held.iter().map(String::as_str).collect();
            if let Err(err) = self
                .store
                .release_message_claims(self.handoff.token(), &sids, now_micros())
                .await
            {
                tracing::warn!(%err, "releasing the handoff's messages failed; they are claimed again after their lease");
            }
        }
    }
}
