//! SMPP 3.4: the carrier connector (an ESME client per configured route), delivery receipts,
//! mobile-originated messages, and the PDU codec shared with `warbler smsc`.
//!
//! - `codec`: framing and PDU encode/decode (rusmpp's types), shared with `crate::smsc`;
//! - `text`: bodies to short-message bytes per data coding, and back; UDHs;
//! - `session`: one bound session (window, sequence correlation, keep-alive);
//! - `client`: a route's sessions, reconnects, and the submit of a message's parts;
//! - `route`: the `[[smpp_routes]]` configuration and the choice of a route;
//! - `receipt`: delivery receipts (TLVs or text) to Twilio statuses;
//! - `inbound`: what the SMSC sends (receipts, mobile-originated parts) turned into records.

pub mod client;
pub mod codec;
pub mod deliver;
pub mod receipt;
pub mod route;
pub mod session;
pub mod text;
pub mod tls;
