//! SMPP 3.4 (the carrier connector of the SMPP issue). So far only the pure pieces that do
//! not depend on the PDU codec: reading delivery receipts and mapping their states to
//! Twilio's statuses and error codes. The codec, the client session and `warbler smsc`
//! follow the plan in `docs/design/smpp-plan.md`.

pub mod receipt;
