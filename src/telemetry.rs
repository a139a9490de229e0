//! Metrics: the process's Prometheus recorder and the names of warbler's metric families.
//! Every layer records through the `metrics` macros (atomic handles, no I/O, no database), so
//! this module is shared like `error`; it imports nothing of ours. Gauges that reflect the
//! database (queue depth, retries pending) are read when `/metrics` is scraped, not kept.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// HTTP requests, by endpoint group (the route template), method and status.
pub const HTTP_REQUESTS: &str = "warbler_http_requests_total";
/// HTTP request latency by endpoint group, in seconds.
pub const HTTP_DURATION: &str = "warbler_http_request_duration_seconds";
/// Messages accepted by the API, by main account.
pub const MESSAGES_ACCEPTED: &str = "warbler_messages_accepted_total";
/// Messages that reached a final status (`delivered`, `undelivered`, `failed`, `canceled`),
/// by main account (or account, see `metrics_per_subaccount`), status and error
/// code (`0` without one).
pub const MESSAGES_FINAL: &str = "warbler_messages_final_total";
/// Segments handed to a carrier, by main account.
pub const SEGMENTS_SENT: &str = "warbler_segments_sent_total";
/// Time the API took to accept a message (create request to committed row), in seconds.
pub const ACCEPT_DURATION: &str = "warbler_message_accept_duration_seconds";
/// Time from acceptance to hand-off to the carrier, in seconds.
pub const ACCEPTED_TO_SENT: &str = "warbler_message_accepted_to_sent_seconds";
/// Time from acceptance to the delivery receipt, in seconds.
pub const ACCEPTED_TO_DELIVERED: &str = "warbler_message_accepted_to_delivered_seconds";
/// Messages waiting, by `state`: `due` (to send now), `scheduled` (a later send time),
/// `pacing` (held back by their sender's rate). Read at scrape time.
pub const QUEUE_DEPTH: &str = "warbler_queue_messages";
/// Duration of one dispatcher round (claim, submit, record), in seconds.
pub const DISPATCH_ROUND: &str = "warbler_dispatcher_round_duration_seconds";
/// Webhook requests made, by kind (`status`, `incoming`, `alarm`…).
pub const WEBHOOK_ATTEMPTS: &str = "warbler_webhook_attempts_total";
/// Failed webhook requests, by cause (`timeout`, `connect`, `http_4xx`, `http_5xx`, `refused`…).
pub const WEBHOOK_FAILURES: &str = "warbler_webhook_failures_total";
/// Webhooks waiting in the outbox. Read at scrape time.
pub const WEBHOOK_PENDING: &str = "warbler_webhook_pending";
/// Webhook request latency, in seconds.
pub const WEBHOOK_DURATION: &str = "warbler_webhook_duration_seconds";
/// Database connections in use and idle, by `pool` and `state`. Read at scrape time.
pub const DB_POOL: &str = "warbler_db_pool_connections";
/// New messages written by one group commit.
pub const WRITE_GROUP_SIZE: &str = "warbler_db_write_group_size";
/// Time one group commit of new messages took, in seconds.
pub const COMMIT_DURATION: &str = "warbler_db_commit_duration_seconds";
/// Syncs of a SQLite file's WAL made so that commits could be answered (none with
/// `durability = "written"`).
pub const WAL_SYNCS: &str = "warbler_db_wal_syncs_total";
/// SMPP, per route: bound sessions and submit windows in use (gauges), then counters.
pub const SMPP_SESSIONS_BOUND: &str = "warbler_smpp_sessions_bound";
pub const SMPP_WINDOW_IN_USE: &str = "warbler_smpp_window_in_use";
pub const SMPP_SUBMITS: &str = "warbler_smpp_submits_total";
pub const SMPP_THROTTLED: &str = "warbler_smpp_throttled_total";
pub const SMPP_UNANSWERED: &str = "warbler_smpp_unanswered_total";
pub const SMPP_REJECTED: &str = "warbler_smpp_rejected_total";
pub const SMPP_RECEIPTS: &str = "warbler_smpp_receipts_total";
pub const SMPP_RECONNECTS: &str = "warbler_smpp_reconnects_total";
/// Time from `submit_sm` to its `submit_sm_resp`, per route, in seconds.
pub const SMPP_SUBMIT_RESPONSE: &str = "warbler_smpp_submit_response_seconds";
/// Alarms that fired and cleared.
pub const ALARM_FIRINGS: &str = "warbler_alarm_firings_total";
/// On a SQLite file: the wait for the one write lock, by holder (`store::native::WriteLock`).
pub const WRITE_LOCK_WAIT: &str = "warbler_db_write_lock_wait_seconds";
/// On a SQLite file: how long each turn at the write lock lasted, by holder. The `_sum`'s rate
/// is the share of time the lock was busy.
pub const WRITE_LOCK_HELD: &str = "warbler_db_write_lock_held_seconds";

/// Latency buckets (seconds) for the request-sized histograms: 1 ms to 10 s.
const FAST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (seconds) for end-to-end message times: 100 ms to 1 h.
const SLOW_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Buckets (seconds) for the write lock's turns and waits: 0.1 ms to 1 s.
const LOCK_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Buckets for the group commit's size (messages).
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// How often histogram samples are folded into their buckets when nobody scrapes (they are
/// kept raw until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use: the `metrics` macros record into one
/// global recorder, so every `App` in a process (the tests run several) shares it.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(FAST_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(suffix("_to_sent_seconds"), SLOW_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(suffix("_to_delivered_seconds"), SLOW_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(suffix("_write_group_size"), SIZE_BUCKETS))
            .and_then(|b| {
                b.set_buckets_for_metric(suffix("_write_lock_wait_seconds"), LOCK_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(suffix("_write_lock_held_seconds"), LOCK_BUCKETS)
            })
            .expect("constant, non-empty bucket lists")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        describe();
        handle
    })
}

fn suffix(end: &str) -> metrics_exporter_prometheus::Matcher {
    metrics_exporter_prometheus::Matcher::Suffix(end.to_string())
}

/// HELP lines for the families.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by endpoint group and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    describe_counter!(MESSAGES_ACCEPTED, "Messages accepted by the API");
    describe_counter!(
        MESSAGES_FINAL,
        "Messages that reached a final status, by status and error code"
    );
    describe_counter!(SEGMENTS_SENT, "Segments handed to a carrier");
    describe_histogram!(
        ACCEPT_DURATION,
        Unit::Seconds,
        "Time to accept a message (request to committed row)"
    );
    describe_histogram!(
        ACCEPTED_TO_SENT,
        Unit::Seconds,
        "Acceptance to carrier hand-off"
    );
    describe_histogram!(
        ACCEPTED_TO_DELIVERED,
        Unit::Seconds,
        "Acceptance to delivery receipt"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Messages waiting: due now, scheduled later, held by pacing"
    );
    describe_histogram!(DISPATCH_ROUND, Unit::Seconds, "One dispatcher round");
    describe_counter!(WEBHOOK_ATTEMPTS, "Webhook requests made");
    describe_counter!(WEBHOOK_FAILURES, "Webhook requests failed, by cause");
    describe_gauge!(WEBHOOK_PENDING, "Webhooks waiting in the outbox");
    describe_histogram!(WEBHOOK_DURATION, Unit::Seconds, "Webhook request latency");
    describe_gauge!(DB_POOL, "Database connections by pool and state");
    describe_histogram!(WRITE_GROUP_SIZE, "New messages per group commit");
    describe_histogram!(COMMIT_DURATION, Unit::Seconds, "Group commit duration");
    describe_counter!(
        WAL_SYNCS,
        "Syncs of the SQLite WAL made before answering commits"
    );
    describe_gauge!(SMPP_SESSIONS_BOUND, "SMPP sessions bound, per route");
    describe_gauge!(
        SMPP_WINDOW_IN_USE,
        "SMPP submits awaiting a response, per route"
    );
    describe_counter!(SMPP_SUBMITS, "submit_sm sent, per route");
    describe_counter!(
        SMPP_THROTTLED,
        "submit_sm answered ESME_RTHROTTLED, per route"
    );
    describe_counter!(SMPP_UNANSWERED, "submit_sm never answered, per route");
    describe_counter!(
        SMPP_REJECTED,
        "submit_sm rejected by the carrier, per route"
    );
    describe_counter!(SMPP_RECEIPTS, "Delivery receipts received, per route");
    describe_counter!(SMPP_RECONNECTS, "SMPP session reconnects, per route");
    describe_histogram!(
        SMPP_SUBMIT_RESPONSE,
        Unit::Seconds,
        "submit_sm to submit_sm_resp, per route"
    );
    describe_counter!(ALARM_FIRINGS, "Alarm firings and clearings");
    describe_histogram!(
        WRITE_LOCK_WAIT,
        Unit::Seconds,
        "Wait for the SQLite file's write lock, by holder"
    );
    describe_histogram!(
        WRITE_LOCK_HELD,
        Unit::Seconds,
        "Turns at the SQLite file's write lock, by holder"
    );
}

/// Seconds between two instants in microseconds (never negative).
pub fn micros_to_seconds(from: i64, to: i64) -> f64 {
    (to - from).max(0) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILIES: &[&str] = &[
        HTTP_REQUESTS,
        HTTP_DURATION,
        MESSAGES_ACCEPTED,
        MESSAGES_FINAL,
        SEGMENTS_SENT,
        ACCEPT_DURATION,
        ACCEPTED_TO_SENT,
        ACCEPTED_TO_DELIVERED,
        QUEUE_DEPTH,
        DISPATCH_ROUND,
        WEBHOOK_ATTEMPTS,
        WEBHOOK_FAILURES,
        WEBHOOK_PENDING,
        WEBHOOK_DURATION,
        DB_POOL,
        WRITE_GROUP_SIZE,
        COMMIT_DURATION,
        WAL_SYNCS,
        SMPP_SESSIONS_BOUND,
        SMPP_WINDOW_IN_USE,
        SMPP_SUBMITS,
        SMPP_THROTTLED,
        SMPP_UNANSWERED,
        SMPP_REJECTED,
        SMPP_RECEIPTS,
        SMPP_RECONNECTS,
        SMPP_SUBMIT_RESPONSE,
        ALARM_FIRINGS,
    ];

    /// The shipped Grafana dashboard queries only families warbler exports.
    #[test]
    fn the_dashboard_uses_only_exported_families() {
        let dashboard = include_str!("../docs/grafana-dashboard.json");
        let mut used = 0;
        for (start, _) in dashboard.match_indices("warbler_") {
            let name: String = dashboard[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let family = name.strip_suffix("_bucket").unwrap_or(&name);
            assert!(FAMILIES.contains(&family), "unknown family {name}");
            used += 1;
        }
        assert!(used > 20, "the dashboard queries the metrics");
    }
}
