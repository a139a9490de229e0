//! Node heartbeats and SMPP bind leases (several nodes on one PostgreSQL).
//!
//! - `run_heartbeats`: every `HEARTBEAT_EVERY`, writes this node's row in `nodes` and reads the
//!   live ones (`Node::live_nodes`, which shares out bind slots), expires old idempotency keys
//!   and outcome counters; at shutdown removes the row so the others count it gone at once.
//! - `run_bind_leases`: keeps this node's share of each SMPP route's bind slots leased in
//!   `smpp_bind_leases` and bound; a dead holder's slots are taken over when its lease runs out.

use crate::service::{App, BIND_LEASE, HEARTBEAT_EVERY};

impl App {
    /// Beats this node's heart every `HEARTBEAT_EVERY` until `shutdown` fires, keeping
    /// `Node::live_nodes` current; then removes the node, so the others count it gone at once.
    pub async fn run_heartbeats(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = crate::domain::time::now_micros();
            match self
                .store
                .node_heartbeat(&self.node.id, self.node.started_at, now)
                .await
            {
                Ok(ids) => {
                    let live = ids.len().max(1);
                    if let Ok(mut known) = self.node.live_ids.lock() {
                        *known = ids;
                    }
                    let before = self
                        .node
                        .live_nodes
                        .swap(live, std::sync::atomic::Ordering::Relaxed);
                    if before != live {
                        tracing::info!(node = %self.node.id, live_nodes = live, "nodes sharing the database");
                    }
                }
                Err(err) => tracing::warn!(%err, "node heartbeat failed"),
            }
            // Housekeeping that any node may do, as often as it beats (an index finds the rows).
            let forget_before = now - crate::domain::message::IDEMPOTENCY_KEYS_KEPT;
            if let Err(err) = self.store.expire_idempotency_keys(forget_before).await {
                tracing::warn!(%err, "expiring idempotency keys failed");
            }
            // Counters are per minute: once a minute is enough to forget old ones.
            let minute = crate::domain::alarm::bucket_of(now);
            let beat = HEARTBEAT_EVERY.as_micros() as i64;
            if minute != crate::domain::alarm::bucket_of(now - beat) {
                let counts_before = now - crate::store::alarms::OUTCOME_COUNTS_KEPT;
                if let Err(err) = self.store.expire_outcome_counts(counts_before).await {
                    tracing::warn!(%err, "expiring outcome counters failed");
                }
                let attempts_before = now - crate::store::console::CALLBACK_ATTEMPTS_KEPT;
                if let Err(err) = self.store.expire_callback_attempts(attempts_before).await {
                    tracing::warn!(%err, "expiring the console's callback attempts failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if let Err(err) = self.store.node_gone(&self.node.id).await {
            tracing::warn!(%err, "removing this node from the nodes table failed");
        }
    }

    /// Keeps this node's share of each SMPP route's bind slots leased (PostgreSQL: a route's
    /// `binds` are the cluster's) and bound, every `HEARTBEAT_EVERY` until the carrier stops.
    /// A slot whose holder died is taken over once its lease runs out.
    pub async fn run_bind_leases(self) {
        loop {
            for (name, route) in self.carrier.smpp_routes() {
                let binds = route.config.binds.max(1);
                let want = self.node.bind_share(binds);
                match self
                    .store
                    .hold_bind_slots(
                        name,
                        binds,
                        &self.node.id,
                        want,
                        crate::domain::time::now_micros(),
                        BIND_LEASE,
                    )
                    .await
                {
                    Ok(held) => route.hold_slots(&held),
                    // Unsure what it holds: it keeps its sessions until the lease is lost for good.
                    Err(err) => {
                        tracing::warn!(%err, route = %name, "renewing SMPP bind leases failed")
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                _ = self.carrier.stopped() => break,
            }
        }
    }
}
