//! The nodes serving from one database: each beats its heart in `nodes`, so every node knows
//! how many share the work (a per-node share of a cluster-wide budget divides by it).

use super::{int, Store};
use crate::error::Result;

/// A node whose last heartbeat is older than this counts as gone.
pub const NODE_STALE_AFTER: i64 = 10_000_000;
/// A gone node's row is deleted once its last heartbeat is this old.
const NODE_FORGOTTEN_AFTER: i64 = 300_000_000;

impl Store {
    /// Records `node`'s heartbeat at `now` and returns how many nodes are live (this one
    /// included).
    pub async fn node_heartbeat(&self, node: &str, started_at: i64, now: i64) -> Result<usize> {
        self.write(
            sqlx::query(
                "INSERT INTO nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(node.to_string())
            .bind(started_at)
            .bind(now),
        )
        .await?;
        self.write(
            sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
                .bind(now - NODE_FORGOTTEN_AFTER),
        )
        .await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM nodes WHERE heartbeat_at >= $1")
            .bind(now - NODE_STALE_AFTER)
            .fetch_one(self.pool())
            .await?;
        Ok(int(&row, "n")?.max(1) as usize)
    }

    /// Removes `node` (it is stopping): the others count one fewer at their next heartbeat.
    pub async fn node_gone(&self, node: &str) -> Result<()> {
        self.write(sqlx::query("DELETE FROM nodes WHERE id = $1").bind(node.to_string()))
            .await?;
        Ok(())
    }
}
