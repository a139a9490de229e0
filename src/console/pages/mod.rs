//! One module per console page group; each handler parses, calls the service, renders.

pub mod accounts;
pub mod keys;
pub mod login;
pub mod messages;
pub mod monitor;
pub mod numbers;
pub mod overview;
pub mod services;
