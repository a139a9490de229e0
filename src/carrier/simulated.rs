//! The built-in simulated carrier, the default route on a fresh install: it accepts every
//! submit, and reports delivery after a configurable latency. Its state (what it accepted, the
//! receipts it owes) lives in the database like any carrier's would live in its own systems,
//! so a restart loses nothing.
//!
//! Magic destinations give each failure class deterministically:
//!
//! | To | outcome |
//! |---|---|
//! | `+15005550030` | undelivered, 30003 unreachable handset |
//! | `+15005550050` | undelivered, 30005 unknown handset |
//! | `+15005550060` | undelivered, 30006 landline |
//! | `+15005550070` | undelivered, 30007 carrier filtered |
//! | `+15005550080` | refused at submit: failed, 30008 unknown error |
//! | `+15005550090` | accepted, never reports (stays `sent`) |
//! | anything else | delivered |

use super::{Submit, SubmitOutcome};
use crate::domain::message::MessageStatus;
use crate::domain::sid::ordered_hex32;
use crate::error::Result;
use crate::store::messages::{insert_receipts, Receipt};
use crate::store::{Sql, Store};

#[derive(Clone)]
pub struct SimulatedCarrier {
    store: Store,
    /// Microseconds between the submit and its delivery receipt.
    latency: i64,
}

/// What the simulator will report for a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Delivered,
    Undelivered(i64),
    Refused(i64),
    Silent,
}

pub fn fate(to: &str) -> Fate {
    match to {
        "+15005550030" => Fate::Undelivered(30003),
        "+15005550050" => Fate::Undelivered(30005),
        "+15005550060" => Fate::Undelivered(30006),
        "+15005550070" => Fate::Undelivered(30007),
        "+15005550080" => Fate::Refused(30008),
        "+15005550090" => Fate::Silent,
        _ => Fate::Delivered,
    }
}

/// `YYMMDDhhmm` in UTC, the DLR "done date" format Twilio passes on as `RawDlrDoneDate`.
fn done_date(micros: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(micros / 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        d.year() % 100,
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute()
    )
}

impl SimulatedCarrier {
    pub fn new(store: Store, latency_micros: i64) -> Self {
        SimulatedCarrier {
            store,
            latency: latency_micros,
        }
    }

    pub async fn submit(&self, batch: &[Submit], now: i64) -> Result<Vec<SubmitOutcome>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut accepted: Vec<(&Submit, String)> = Vec::new();
        let mut receipts = Vec::new();
        for submit in batch {
            let fate = fate(&submit.to);
            if let Fate::Refused(code) = fate {
                outcomes.push(SubmitOutcome::Rejected {
                    error_code: code,
                    error_message: crate::store::messages::delivery_error_message(code).to_string(),
                });
                continue;
            }
            let carrier_message_id = format!("sim-{}", ordered_hex32());
            let report = match fate {
                Fate::Delivered => Some((MessageStatus::Delivered, None)),
                Fate::Undelivered(code) => Some((MessageStatus::Undelivered, Some(code))),
                Fate::Silent | Fate::Refused(_) => None,
            };
            if let Some((status, error_code)) = report {
                let due_at = now + self.latency;
                receipts.push(Receipt {
                    id: ordered_hex32(),
                    carrier_message_id: carrier_message_id.clone(),
                    status,
                    error_code,
                    done_date: Some(done_date(due_at)),
                    due_at,
                });
            }
            accepted.push((submit, carrier_message_id.clone()));
            outcomes.push(SubmitOutcome::Accepted { carrier_message_id });
        }
        // The simulator's own books, committed before it answers, as a real SMSC would.
        let mut tx = self.store.begin_write().await?;
        for chunk in accepted.chunks(200) {
            let mut sql = Sql::new(
                "INSERT INTO simulated_submissions (carrier_message_id, message_sid, from_address, to_address, segments, at) VALUES ",
            );
            for (i, (submit, id)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .text(id.clone())
                    .push(", ")
                    .text(submit.message_sid.clone())
                    .push(", ")
                    .text(submit.from.clone())
                    .push(", ")
                    .text(submit.to.clone())
                    .push(", ")
                    .int(submit.segments)
                    .push(", ")
                    .int(now)
                    .push(")");
            }
            sql.query().execute(&mut *tx).await?;
        }
        insert_receipts(&mut tx, &receipts).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_destinations() {
        assert_eq!(fate("+15005550030"), Fate::Undelivered(30003));
        assert_eq!(fate("+15005550060"), Fate::Undelivered(30006));
        assert_eq!(fate("+15005550080"), Fate::Refused(30008));
        assert_eq!(fate("+15005550090"), Fate::Silent);
        assert_eq!(fate("+14155550100"), Fate::Delivered);
    }

    #[test]
    fn done_dates_are_yymmddhhmm() {
        assert_eq!(done_date(1_438_287_151_000_000), "1507302012");
    }
}
