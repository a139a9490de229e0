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
use crate::store::carrier::{CarrierRecords, SimulatedSubmission};
use crate::store::rows::Receipt;

#[derive(Clone)]
pub struct SimulatedCarrier {
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
    pub fn new(latency_micros: i64) -> Self {
        SimulatedCarrier {
            latency: latency_micros,
        }
    }

    /// Answers a batch, with the simulator's books for it: what it accepted and the receipts
    /// it owes. The dispatcher commits those in the transaction that records the answers, so
    /// a crash loses both or neither (the simulator never "took" a message that warbler then
    /// sends again).
    pub fn submit(&self, batch: &[Submit], now: i64) -> (Vec<SubmitOutcome>, CarrierRecords) {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut records = CarrierRecords::default();
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
                records.receipts.push(Receipt {
                    id: ordered_hex32(),
                    carrier_message_id: carrier_message_id.clone(),
                    status,
                    error_code,
                    done_date: Some(done_date(due_at)),
                    due_at,
                });
            }
            records.simulated.push(SimulatedSubmission {
                carrier_message_id: carrier_message_id.clone(),
                message_sid: submit.message_sid.clone(),
                from: submit.from.clone(),
                to: submit.to.clone(),
                segments: submit.segments,
                at: now,
            });
            outcomes.push(SubmitOutcome::Accepted { carrier_message_id });
        }
        (outcomes, records)
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
    fn a_batch_gets_answers_and_the_books_that_go_with_them() {
        let submit = |sid: &str, to: &str| Submit {
            message_sid: sid.into(),
            from: "+14155550100".into(),
            to: to.into(),
            body: "hi".into(),
            segments: 2,
            is_mms: false,
        };
        let batch = [
            submit("SM1", "+14155550111"),
            submit("SM2", "+15005550080"),
            submit("SM3", "+15005550090"),
            submit("SM4", "+15005550060"),
        ];
        let (outcomes, records) = SimulatedCarrier::new(200_000).submit(&batch, 1_000_000);
        assert_eq!(outcomes.len(), 4);
        assert!(matches!(
            &outcomes[1],
            SubmitOutcome::Rejected {
                error_code: 30008,
                ..
            }
        ));
        let accepted: Vec<&str> = records
            .simulated
            .iter()
            .map(|s| s.message_sid.as_str())
            .collect();
        assert_eq!(
            accepted,
            ["SM1", "SM3", "SM4"],
            "a refused submit is not booked"
        );
        for (outcome, booked) in [&outcomes[0], &outcomes[2], &outcomes[3]]
            .into_iter()
            .zip(&records.simulated)
        {
            let SubmitOutcome::Accepted { carrier_message_id } = outcome else {
                panic!("accepted expected, got {outcome:?}");
            };
            assert_eq!(carrier_message_id, &booked.carrier_message_id);
            assert_eq!((booked.segments, booked.at), (2, 1_000_000));
        }
        // The silent destination owes no receipt; the others one each, after the latency.
        let owed: Vec<(&str, MessageStatus, Option<i64>, i64)> = records
            .receipts
            .iter()
            .map(|r| {
                (
                    r.carrier_message_id.as_str(),
                    r.status,
                    r.error_code,
                    r.due_at,
                )
            })
            .collect();
        assert_eq!(
            owed,
            [
                (
                    records.simulated[0].carrier_message_id.as_str(),
                    MessageStatus::Delivered,
                    None,
                    1_200_000
                ),
                (
                    records.simulated[2].carrier_message_id.as_str(),
                    MessageStatus::Undelivered,
                    Some(30006),
                    1_200_000
                ),
            ]
        );
    }

    #[test]
    fn done_dates_are_yymmddhhmm() {
        assert_eq!(done_date(1_438_287_151_000_000), "1507302012");
    }
}
