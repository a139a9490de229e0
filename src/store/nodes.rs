//! The nodes serving from one database: each beats its heart in `nodes`, so every node knows
//! how many share the work (a per-node share of a cluster-wide budget divides by it).

use super::{int, text, Sql, Store};
use crate::error::Result;

/// A node whose last heartbeat is older than this counts as gone.
pub const NODE_STALE_AFTER: i64 = 10_000_000;
/// A gone node's row is deleted once its last heartbeat is this old.
const NODE_FORGOTTEN_AFTER: i64 = 300_000_000;

impl Store {
    /// Records `node`'s heartbeat at `now` and returns the live nodes' ids, sorted (this one
    /// included).
    pub async fn node_heartbeat(
        &self,
        node: &str,
        started_at: i64,
        now: i64,
    ) -> Result<Vec<String>> {
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
        let rows = sqlx::query("SELECT id FROM nodes WHERE heartbeat_at >= $1 ORDER BY id")
            .bind(now - NODE_STALE_AFTER)
            .fetch_all(self.pool())
            .await?;
        let mut live: Vec<String> = rows
            .iter()
            .map(|row| text(row, "id"))
            .collect::<Result<_>>()?;
        if !live.iter().any(|id| id == node) {
            live.push(node.to_string());
            live.sort_unstable();
        }
        Ok(live)
    }

    /// Holds `want` of the `binds` bind slots of `route` for `node` until `lease` after now
    /// (the database's clock on PostgreSQL): renews the slots it holds, gives back those over
    /// `want`, and takes free or lapsed ones while it has fewer. Returns the slots held.
    pub async fn hold_bind_slots(
        &self,
        route: &str,
        binds: u32,
        node: &str,
        want: u32,
        now: i64,
        lease: i64,
    ) -> Result<Vec<u32>> {
        let postgres = self.backend() == super::Backend::Postgres;
        let mut renew = Sql::new("UPDATE smpp_bind_leases SET node = node");
        super::leases::push_lease_end(&mut renew, postgres, now, lease);
        renew
            .push(" WHERE route = ")
            .text(route)
            .push(" AND node = ")
            .text(node)
            .push(" AND slot < ")
            .int(i64::from(binds))
            .push(" RETURNING slot");
        let mut held: Vec<u32> = self
            .write_volatile(renew)
            .await?
            .iter()
            .map(|row| int(row, "slot").map(|slot| slot as u32))
            .collect::<Result<_>>()?;
        held.sort_unstable();
        while held.len() > want as usize {
            let Some(extra) = held.pop() else { break };
            let mut release = Sql::new("DELETE FROM smpp_bind_leases WHERE route = ");
            release
                .text(route)
                .push(" AND slot = ")
                .int(i64::from(extra))
                .push(" AND node = ")
                .text(node);
            self.write_volatile_count(release).await?;
        }
        // Another node's lapsed or missing slot: taken only if its lease has run out (ended
        // before now, which is the new lease's end less the lease).
        for slot in 0..binds {
            if held.len() >= want as usize {
                break;
            }
            if held.contains(&slot) {
                continue;
            }
            let mut take =
                Sql::new("INSERT INTO smpp_bind_leases (route, slot, node, lease_until) VALUES (");
            take.text(route)
                .push(", ")
                .int(i64::from(slot))
                .push(", ")
                .text(node)
                .push(", ");
            super::leases::push_lease_clock(&mut take, postgres, now);
            take.push(" + ").int(lease).push(
                ") ON CONFLICT (route, slot) DO UPDATE SET node = excluded.node, \
                 lease_until = excluded.lease_until \
                 WHERE smpp_bind_leases.lease_until < excluded.lease_until - ",
            );
            take.int(lease);
            if self.write_volatile_count(take).await? > 0 {
                held.push(slot);
            }
        }
        held.sort_unstable();
        Ok(held)
    }

    /// Removes `node` (it is stopping), with its bind slots: the others count one fewer at
    /// their next heartbeat and may take the slots at once.
    pub async fn node_gone(&self, node: &str) -> Result<()> {
        self.write(
            sqlx::query("DELETE FROM smpp_bind_leases WHERE node = $1").bind(node.to_string()),
        )
        .await?;
        self.write(sqlx::query("DELETE FROM nodes WHERE id = $1").bind(node.to_string()))
            .await?;
        Ok(())
    }
}
