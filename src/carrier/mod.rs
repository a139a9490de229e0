//! Carriers deliver messages. The dispatcher (in `service`) hands them batches of submits and
//! they answer, per message, accepted (with the carrier's message id) or rejected; delivery
//! receipts come back later into the receipts table. An enum rather than a trait object: the
//! set of carriers is closed (the built-in simulator now, SMPP next) and async methods stay
//! simple.

pub mod simulated;
pub mod smpp;

use crate::error::Result;

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
}

/// The carriers warbler can route to.
#[derive(Clone)]
pub enum Carrier {
    Simulated(simulated::SimulatedCarrier),
}

impl Carrier {
    /// The route name recorded on sent messages.
    pub fn route(&self) -> &str {
        match self {
            Carrier::Simulated(_) => "simulated",
        }
    }

    /// Submits a batch; the answers come in the same order.
    pub async fn submit(&self, batch: &[Submit], now: i64) -> Result<Vec<SubmitOutcome>> {
        match self {
            Carrier::Simulated(carrier) => carrier.submit(batch, now).await,
        }
    }
}
