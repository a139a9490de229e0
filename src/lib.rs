//! warbler: a self-hosted, Twilio-compatible programmable messaging platform.
//!
//! Layers, from the outside in (imports only point inward):
//! `api` (HTTP, Twilio's wire contract) → `service` (use cases, authorization) → `store`
//! (SQLite / PostgreSQL) → `domain` (pure rules). `engine` (the background loops: dispatcher,
//! receipts, webhook sender, evaluators, heartbeats) drives `service` beside `api`.
//! `webhook`, `mail` and `carrier` are driven by `service` and `engine`. `config` is read by the binary; `error` and `telemetry` (metrics) are shared
//! by all.

pub mod api;
pub mod carrier;
pub mod config;
pub mod console;
pub mod domain;
pub mod engine;
pub mod error;
pub mod mail;
pub mod service;
pub mod smsc;
pub mod store;
pub mod telemetry;
pub mod webhook;
