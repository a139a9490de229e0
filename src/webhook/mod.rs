//! Outgoing webhooks. For now: the `X-Twilio-Signature` every webhook carries, computed
//! exactly as `twilio.request_validator` checks it. Delivery (durable outbox, retries) comes
//! with status callbacks.

pub mod signature;
