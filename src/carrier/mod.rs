//! Carriers deliver messages. The dispatcher (in `service`) picks a route per message (the
//! sender's inventory route or the destination prefix, see `smpp::route::choose_route`) and
//! hands each route a batch of submits; it answers, per message, accepted (with the carrier's
//! message id), rejected, or deferred (try again later). Delivery receipts come back later
//! into the receipts table. The built-in simulator is always there; SMPP routes come from
//! configuration.

pub mod simulated;
pub mod smpp;

use crate::error::Result;
use crate::store::carrier::{AcceptedPart, CarrierRecords};
use crate::store::Store;
use smpp::client::{MessageResult, Outgoing, SmppRoute};
use smpp::receipt::submit_id_key;
use smpp::route::{choose_route, SmppRouteConfig, SIMULATED};
use smpp::session::Delivery;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// One message handed to a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    pub segments: i64,
    pub is_mms: bool,
}

/// A carrier's answer to one submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    Accepted {
        carrier_message_id: String,
    },
    /// Refused for good: the message fails with this Twilio error code.
    Rejected {
        error_code: i64,
        error_message: String,
    },
    /// Not now (throttled, no session bound, no response): the message stays queued and is
    /// offered again at `retry_at` (microseconds).
    Deferred {
        retry_at: i64,
    },
    /// Not submitted: the claim's time to submit ran out first (see `Carrier::submit`).
    Abandoned,
}

/// SMPP batches submitted at once (each waits for its submit responses).
const BACKGROUND_BATCHES: usize = 8;

/// The carriers warbler routes to: the simulator and the configured SMPP routes.
#[derive(Clone)]
pub struct Carrier {
    simulated: simulated::SimulatedCarrier,
    routes: Arc<Vec<SmppRouteConfig>>,
    smpp: Arc<HashMap<String, Arc<SmppRoute>>>,
    store: Store,
    shutdown: Arc<watch::Sender<bool>>,
    /// SMPP batches being submitted in the background.
    batches: Arc<tokio::sync::Semaphore>,
}

impl Carrier {
    /// The simulator alone.
    pub fn simulated(store: Store, latency_micros: i64) -> Carrier {
        Carrier::new(store, latency_micros, Vec::new(), None)
    }

    /// The simulator plus SMPP routes, whose sessions start binding now on `sessions`'
    /// runtime; what their SMSCs send goes to its channel.
    pub fn new(
        store: Store,
        latency_micros: i64,
        routes: Vec<SmppRouteConfig>,
        sessions: Option<(mpsc::Sender<Delivery>, tokio::runtime::Handle)>,
    ) -> Carrier {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut smpp = HashMap::new();
        if let Some((deliveries, runtime)) = sessions {
            for config in &routes {
                // On PostgreSQL the binds are leased cluster-wide (`App::run_bind_leases`).
                let leased = store.backend() == crate::store::Backend::Postgres;
                let route = SmppRoute::start(
                    config.clone(),
                    deliveries.clone(),
                    shutdown_rx.clone(),
                    leased,
                    &runtime,
                );
                smpp.insert(config.name.clone(), Arc::new(route));
            }
        }
        Carrier {
            simulated: simulated::SimulatedCarrier::new(latency_micros),
            routes: Arc::new(routes),
            smpp: Arc::new(smpp),
            store,
            shutdown: Arc::new(shutdown),
            batches: Arc::new(tokio::sync::Semaphore::new(BACKGROUND_BATCHES)),
        }
    }

    /// A turn to submit one SMPP batch in the background; waits while too many are out.
    pub async fn batch_permit(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.batches
            .clone()
            .acquire_owned()
            .await
            .expect("the batch semaphore is never closed")
    }

    /// Resolves when `shutdown` was called.
    pub async fn stopped(&self) {
        let mut stopped = self.shutdown.subscribe();
        let _ = smpp::session::until_true(&mut stopped).await;
    }

    /// The SMPP routes by name.
    pub fn smpp_routes(&self) -> impl Iterator<Item = (&String, &Arc<SmppRoute>)> {
        self.smpp.iter()
    }

    /// Whether every SMPP route has a session bound here (true without SMPP routes): what
    /// this node dispatches then goes out, not deferred to a node that holds a bind.
    pub fn every_route_bound(&self) -> bool {
        self.smpp_routes().all(|(_, route)| route.bound() > 0)
    }

    pub fn has_smpp(&self) -> bool {
        !self.smpp.is_empty()
    }

    pub fn smpp_route(&self, name: &str) -> Option<&Arc<SmppRoute>> {
        self.smpp.get(name)
    }

    pub fn route_configs(&self) -> &[SmppRouteConfig] {
        &self.routes
    }

    /// The route a message takes.
    pub fn route_for(&self, sender_route: Option<&str>, to: &str) -> String {
        choose_route(&self.routes, sender_route, to).to_string()
    }

    /// Unbinds every SMPP session.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        for route in self.smpp.values() {
            route.join(std::time::Duration::from_secs(3)).await;
        }
    }

    /// Submits a batch on one route; the answers come in the same order, with what the
    /// carrier keeps about them, for the caller to commit with its record of the answers.
    /// Nothing goes to the carrier after `deadline`: the messages still waiting then (for a
    /// window slot, say) are `Abandoned`.
    pub async fn submit(
        &self,
        route: &str,
        batch: &[Submit],
        now: i64,
        deadline: std::time::Instant,
    ) -> Result<(Vec<SubmitOutcome>, CarrierRecords)> {
        if route == SIMULATED {
            if std::time::Instant::now() >= deadline {
                return Ok((
                    vec![SubmitOutcome::Abandoned; batch.len()],
                    CarrierRecords::default(),
                ));
            }
            return Ok(self.simulated.submit(batch, now));
        }
        let Some(smpp) = self.smpp.get(route) else {
            let refused = batch
                .iter()
                .map(|_| SubmitOutcome::Rejected {
                    error_code: 30008,
                    error_message: format!("no carrier route named {route}"),
                })
                .collect();
            return Ok((refused, CarrierRecords::default()));
        };
        // SMPP parts are kept as they are accepted (`record_parts`): the SMSC has them.
        let outcomes = self.submit_smpp(smpp, batch, now, deadline).await?;
        Ok((outcomes, CarrierRecords::default()))
    }

    async fn submit_smpp(
        &self,
        route: &SmppRoute,
        batch: &[Submit],
        now: i64,
        deadline: std::time::Instant,
    ) -> Result<Vec<SubmitOutcome>> {
        let name = route.config.name.as_str();
        let format = route.config.dlr_id_format;
        // Parts a throttled multipart message already got accepted.
        let multipart: Vec<&str> = batch
            .iter()
            .filter(|s| s.segments > 1)
            .map(|s| s.message_sid.as_str())
            .collect();
        let earlier = if multipart.is_empty() {
            HashMap::new()
        } else {
            self.store.accepted_parts(&multipart).await?
        };
        let prefix = format!("{name}:");
        let resumes: Vec<Vec<(u8, String)>> = batch
            .iter()
            .map(|s| {
                earlier
                    .get(&s.message_sid)
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|(n, key)| {
                                (
                                    *n as u8,
                                    key.strip_prefix(&prefix).unwrap_or(key).to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let results =
            futures_util::future::join_all(batch.iter().zip(&resumes).map(|(submit, already)| {
                let outgoing = Outgoing {
                    from: &submit.from,
                    to: &submit.to,
                    body: &submit.body,
                    reference: concat_reference(&submit.message_sid),
                    already,
                    not_after: deadline,
                };
                async move { route.submit(&outgoing).await }
            }))
            .await;
        let key = |id: &str| format!("{name}:{}", submit_id_key(id, format));
        // The parts of a message not wholly submitted that the SMSC accepted: kept, so the
        // next attempt resumes after them.
        let keep_parts =
            |parts: &mut Vec<AcceptedPart>, submit: &Submit, accepted: Vec<(u8, String)>| {
                let total = smpp::text::encode_body(&submit.body, route.config.data_coding)
                    .parts
                    .len() as i64;
                for (number, id) in accepted {
                    parts.push(AcceptedPart {
                        carrier_message_id: key(&id),
                        message_sid: submit.message_sid.clone(),
                        part: number as i64,
                        total,
                    });
                }
            };
        let mut parts = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for (submit, result) in batch.iter().zip(results) {
            let outcome = match result {
                MessageResult::Accepted(ids) => {
                    let first = ids.first().map(|id| key(id)).unwrap_or_default();
                    if ids.len() > 1 {
                        let total = ids.len() as i64;
                        for (index, id) in ids.iter().enumerate() {
                            parts.push(AcceptedPart {
                                carrier_message_id: key(id),
                                message_sid: submit.message_sid.clone(),
                                part: index as i64 + 1,
                                total,
                            });
                        }
                        // Receipts of a multipart message are matched through its parts, so
                        // the message's own id must not equal any part's.
                        SubmitOutcome::Accepted {
                            carrier_message_id: format!("{first}/{total}"),
                        }
                    } else {
                        SubmitOutcome::Accepted {
                            carrier_message_id: first,
                        }
                    }
                }
                MessageResult::Deferred {
                    retry_in,
                    accepted,
                    reason,
                } => {
                    tracing::debug!(route = name, sid = %submit.message_sid, %reason, "smpp: submit deferred");
                    keep_parts(&mut parts, submit, accepted);
                    SubmitOutcome::Deferred {
                        retry_at: now + retry_in.as_micros() as i64,
                    }
                }
                MessageResult::Abandoned { accepted } => {
                    keep_parts(&mut parts, submit, accepted);
                    SubmitOutcome::Abandoned
                }
                MessageResult::Rejected { status } => {
                    let code = smpp::client::error_code_for_status(status);
                    SubmitOutcome::Rejected {
                        error_code: code,
                        error_message: crate::store::messages::delivery_error_message(code)
                            .to_string(),
                    }
                }
            };
            outcomes.push(outcome);
        }
        self.store.record_parts(&parts, now).await?;
        Ok(outcomes)
    }
}

/// A message's concatenation reference: derived from its SID, so a retry uses the same one.
fn concat_reference(message_sid: &str) -> u16 {
    let digest = message_sid
        .bytes()
        .fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u32));
    (digest ^ (digest >> 16)) as u16
}
