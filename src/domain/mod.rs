//! The rules of warbler's account model, as pure types and functions: SIDs, account states and
//! their transitions, credentials, dates in Twilio's formats, paging cursors.
//! Imports nothing of ours but the leaf `error` module; knows neither HTTP nor SQL.

pub mod a2p;
pub mod account;
pub mod alarm;
pub mod alert;
pub mod content;
pub mod credential;
pub mod encoding;
pub mod message;
pub mod messaging_service;
pub mod number;
pub mod opt_out;
pub mod paging;
pub mod sender;
pub mod sid;
pub mod test_credentials;
pub mod time;
pub mod twiml;
pub mod usage;
