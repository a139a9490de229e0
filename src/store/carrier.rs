//! What the SMPP carrier keeps: the parts of multipart messages and their receipts, the
//! inventory route of senders, and the parts of concatenated inbound messages.

use super::rows::{Receipt, ReceiptUpdate};
use super::{int, opt_int, opt_text, text, Kind, Rows, Sql, Store, Tx};
use crate::domain::message::MessageStatus;
use crate::error::{Error, Result};
use std::collections::HashMap;

const ROWS: usize = 500;

/// Which concatenated inbound message a part belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoSetKey {
    pub route: String,
    pub source: String,
    pub destination: String,
    pub reference: i64,
}

/// The stored parts an inbound message is assembled from: taken (deleted) in the transaction
/// that stores the message, so the message is stored once or its parts are still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoParts {
    pub key: MoSetKey,
    pub numbers: Vec<i64>,
}

/// Deletes `parts` inside `tx`; false when any of them is already gone (another node or an
/// earlier attempt delivered them), in which case the caller stores nothing.
pub(crate) async fn take_mo_parts(tx: &mut Tx<'_>, parts: &MoParts) -> Result<bool> {
    let mut taken = 0;
    for part in &parts.numbers {
        taken += sqlx::query(
            "DELETE FROM smpp_mo_parts WHERE route = $1 AND source = $2 \
             AND destination = $3 AND reference = $4 AND part = $5",
        )
        .bind(parts.key.route.clone())
        .bind(parts.key.source.clone())
        .bind(parts.key.destination.clone())
        .bind(parts.key.reference)
        .bind(*part)
        .execute(tx.conn()?)
        .await?
        .rows_affected();
    }
    Ok(taken == parts.numbers.len() as u64)
}

/// One accepted part of a multipart message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedPart {
    /// `{route}:{id}`, the key receipts are looked up by.
    pub carrier_message_id: String,
    pub message_sid: String,
    pub part: i64,
    pub total: i64,
}

/// One submit the simulated carrier accepted (its books, kept to count repeated submits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedSubmission {
    pub carrier_message_id: String,
    pub message_sid: String,
    pub from: String,
    pub to: String,
    pub segments: i64,
    pub at: i64,
}

/// What a carrier keeps about a batch it answered, committed with the dispatcher's record of
/// the answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarrierRecords {
    pub simulated: Vec<SimulatedSubmission>,
    pub receipts: Vec<Receipt>,
}

impl CarrierRecords {
    pub fn extend(&mut self, other: CarrierRecords) {
        self.simulated.extend(other.simulated);
        self.receipts.extend(other.receipts);
    }

    /// What these records keep about `messages` alone (the others' outcomes are not recorded).
    pub fn of_messages(&self, messages: &std::collections::HashSet<String>) -> CarrierRecords {
        let dropped: std::collections::HashSet<&str> = self
            .simulated
            .iter()
            .filter(|s| !messages.contains(&s.message_sid))
            .map(|s| s.carrier_message_id.as_str())
            .collect();
        CarrierRecords {
            simulated: self
                .simulated
                .iter()
                .filter(|s| messages.contains(&s.message_sid))
                .cloned()
                .collect(),
            receipts: self
                .receipts
                .iter()
                .filter(|r| !dropped.contains(r.carrier_message_id.as_str()))
                .cloned()
                .collect(),
        }
    }
}

/// The statements that record `records` (the simulated carrier's books).
pub(crate) fn carrier_record_statements(records: &CarrierRecords) -> Vec<Sql> {
    let mut statements = Vec::new();
    for chunk in records.simulated.chunks(ROWS) {
        let mut rows = Rows::with_capacity(
            chunk.len(),
            &[
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Int,
                Kind::Int,
            ],
        );
        for s in chunk {
            rows.text(s.carrier_message_id.clone())
                .text(s.message_sid.clone())
                .text(s.from.clone())
                .text(s.to.clone())
                .int(s.segments)
                .int(s.at);
        }
        let mut sql = Sql::new(
            "INSERT INTO simulated_submissions (carrier_message_id, message_sid, from_address, to_address, segments, at) ",
        );
        sql.insert_rows(rows);
        statements.push(sql);
    }
    statements.extend(receipt_statements(&records.receipts));
    statements
}

/// Applies due receipts of message parts: records each part's state, then a message whose
/// parts are all delivered becomes delivered, and one with a failed part undelivered (with
/// that part's error). Receipts wait while their message is not yet recorded as sent.
/// Returns the receipts consumed and the message updates.
pub(crate) async fn apply_part_receipts(
    tx: &mut Tx<'_>,
    now: i64,
    limit: i64,
) -> Result<(Vec<String>, Vec<ReceiptUpdate>)> {
    // Over a queue table: planned afresh each run on PostgreSQL (`Sql::one_shot_query`).
    // Among the round's window of due receipts only: walked whole, the due receipts (most of
    // them a single message's, and thousands while the dispatcher is behind and receipts
    // wait, `engine::receipts`) were each looked up among the parts in every round.
    let mut due = Sql::new(
        "SELECT r.id, r.status, r.error_code, r.done_date, p.carrier_message_id AS part_id, \
         p.message_sid FROM (SELECT id, carrier_message_id, status, error_code, done_date, due_at \
         FROM carrier_receipts WHERE due_at <= ",
    );
    due.int(now).push(" ORDER BY due_at").limit(limit).push(
        ") r JOIN carrier_parts p ON p.carrier_message_id = r.carrier_message_id \
             JOIN messages m ON m.sid = p.message_sid \
             WHERE m.carrier_message_id IS NOT NULL ORDER BY r.due_at",
    );
    let rows = tx.fetch_all_planned_each_run(due).await?;
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut consumed = Vec::with_capacity(rows.len());
    let mut touched: Vec<String> = Vec::new();
    for row in &rows {
        consumed.push(text(row, "id")?);
        let mut update = Sql::new("UPDATE carrier_parts SET status = ");
        update
            .text(text(row, "status")?)
            .push(", error_code = ")
            .opt_int(opt_int(row, "error_code")?)
            .push(", done_date = ")
            .opt_text(opt_text(row, "done_date")?)
            .push(" WHERE carrier_message_id = ")
            .text(text(row, "part_id")?);
        tx.execute(update).await?;
        let sid = text(row, "message_sid")?;
        if !touched.contains(&sid) {
            touched.push(sid);
        }
    }
    let mut updates = Vec::new();
    for sid in touched {
        let mut read = Sql::new("SELECT status FROM messages WHERE sid = ");
        read.text(sid.clone());
        let current = tx.fetch_one(read).await?;
        let current = MessageStatus::parse(&text(&current, "status")?)
            .ok_or_else(|| Error::internal("bad message status"))?;
        if current.is_final() {
            continue;
        }
        let mut read = Sql::new(
            "SELECT total, status, error_code, done_date FROM carrier_parts WHERE message_sid = ",
        );
        read.text(sid.clone()).push(" ORDER BY part");
        let parts = tx.fetch_all(read).await?;
        let mut delivered = 0;
        let mut total = 0;
        let mut last_done: Option<String> = None;
        let mut failure: Option<ReceiptUpdate> = None;
        for part in &parts {
            total = int(part, "total")?;
            let done = opt_text(part, "done_date")?;
            match opt_text(part, "status")?.and_then(|s| MessageStatus::parse(&s)) {
                Some(MessageStatus::Delivered) => {
                    delivered += 1;
                    if done > last_done {
                        last_done = done;
                    }
                }
                Some(status @ (MessageStatus::Undelivered | MessageStatus::Failed))
                    if failure.is_none() =>
                {
                    let code = opt_int(part, "error_code")?;
                    failure = Some((sid.clone(), status, code, done));
                }
                _ => {}
            }
        }
        if let Some(failure) = failure {
            updates.push(failure);
        } else if total > 0 && delivered == total {
            updates.push((sid, MessageStatus::Delivered, None, last_done));
        }
    }
    Ok((consumed, updates))
}

impl Store {
    /// Records accepted parts (a part already recorded keeps its row).
    pub async fn record_parts(&self, parts: &[AcceptedPart], now: i64) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write_native().await?;
        for chunk in parts.chunks(ROWS) {
            let mut rows = Rows::with_capacity(
                chunk.len(),
                &[Kind::Text, Kind::Text, Kind::Int, Kind::Int, Kind::Int],
            );
            for p in chunk {
                rows.text(p.carrier_message_id.clone())
                    .text(p.message_sid.clone())
                    .int(p.part)
                    .int(p.total)
                    .int(now);
            }
            let mut sql = Sql::new(
                "INSERT INTO carrier_parts (carrier_message_id, message_sid, part, total, created_at) ",
            );
            sql.insert_rows(rows);
            sql.push(" ON CONFLICT (carrier_message_id) DO NOTHING");
            tx.execute(sql).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Parts accepted so far, by message: (part number, key).
    pub async fn accepted_parts(
        &self,
        sids: &[&str],
    ) -> Result<HashMap<String, Vec<(i64, String)>>> {
        let mut found: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        for chunk in sids.chunks(ROWS) {
            let mut sql = Sql::new(
                "SELECT message_sid, part, carrier_message_id FROM carrier_parts WHERE message_sid IN ",
            );
            sql.text_set(chunk.iter().copied()).push(" ORDER BY part");
            for row in self.read_rows(sql).await? {
                found
                    .entry(text(&row, "message_sid")?)
                    .or_default()
                    .push((int(&row, "part")?, text(&row, "carrier_message_id")?));
            }
        }
        Ok(found)
    }

    /// The inventory `route` of each of these numbers that has one.
    pub async fn inventory_routes(&self, addresses: &[&str]) -> Result<HashMap<String, String>> {
        let mut found = HashMap::new();
        for chunk in addresses.chunks(ROWS) {
            let mut sql = Sql::new(
                "SELECT phone_number, route FROM phone_numbers WHERE route IS NOT NULL AND phone_number IN ",
            );
            sql.text_set(chunk.iter().copied());
            for row in self.read_rows(sql).await? {
                found.insert(text(&row, "phone_number")?, text(&row, "route")?);
            }
        }
        Ok(found)
    }

    /// Keeps one part of a concatenated inbound message. When all parts are in, returns the
    /// whole body and the parts it is made of (they stay until the message is stored, which
    /// takes them in the same transaction, so a crash in between loses nothing and delivers
    /// nothing twice).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_mo_part(
        &self,
        route: &str,
        source: &str,
        destination: &str,
        reference: i64,
        total: i64,
        part: i64,
        body: &str,
        now: i64,
    ) -> Result<Option<(String, MoParts)>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO smpp_mo_parts (route, source, destination, reference, total, part, body, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (route, source, destination, reference, part) DO NOTHING",
        )
        .bind(route.to_string())
        .bind(source.to_string())
        .bind(destination.to_string())
        .bind(reference)
        .bind(total)
        .bind(part)
        .bind(body.to_string())
        .bind(now)
        .execute(tx.conn()?)
        .await?;
        let rows = sqlx::query(
            "SELECT part, body FROM smpp_mo_parts WHERE route = $1 AND source = $2 \
             AND destination = $3 AND reference = $4 AND part <= $5 ORDER BY part",
        )
        .bind(route.to_string())
        .bind(source.to_string())
        .bind(destination.to_string())
        .bind(reference)
        .bind(total)
        .fetch_all(tx.conn()?)
        .await?;
        tx.commit().await?;
        if rows.len() as i64 != total {
            return Ok(None);
        }
        let mut whole = String::new();
        let mut numbers = Vec::with_capacity(rows.len());
        for row in &rows {
            whole.push_str(&text(row, "body")?);
            numbers.push(int(row, "part")?);
        }
        let key = MoSetKey {
            route: route.to_string(),
            source: source.to_string(),
            destination: destination.to_string(),
            reference,
        };
        Ok(Some((whole, MoParts { key, numbers })))
    }

    /// Incomplete inbound sets to give up waiting for, oldest first (at most `limit`): those
    /// whose first part came before `cutoff`, and, while more than `max_sets` sets are held,
    /// the oldest beyond that bound. Each comes with the cutoff to claim it with.
    pub async fn overdue_mo_sets(
        &self,
        cutoff: i64,
        max_sets: i64,
        limit: i64,
    ) -> Result<Vec<(MoSetKey, i64)>> {
        let held = sqlx::query(
            "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM smpp_mo_parts \
             GROUP BY route, source, destination, reference) AS sets",
        )
        .fetch_one(self.pool())
        .await?;
        let excess = int(&held, "n")? - max_sets.max(0);
        let mut cutoff = cutoff;
        if excess > 0 {
            // Sets older than the `excess`-th oldest are over the bound, whatever their age.
            let row = sqlx::query(
                "SELECT MIN(received_at) AS first FROM smpp_mo_parts \
                 GROUP BY route, source, destination, reference ORDER BY first LIMIT 1 OFFSET $1",
            )
            .bind(excess - 1)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                cutoff = cutoff.max(int(&row, "first")? + 1);
            }
        }
        let rows = sqlx::query(
            "SELECT route, source, destination, reference, MIN(received_at) AS first \
             FROM smpp_mo_parts GROUP BY route, source, destination, reference \
             HAVING MIN(received_at) < $1 ORDER BY first LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    MoSetKey {
                        route: text(row, "route")?,
                        source: text(row, "source")?,
                        destination: text(row, "destination")?,
                        reference: int(row, "reference")?,
                    },
                    cutoff,
                ))
            })
            .collect()
    }

    /// Takes an overdue set for this node: its parts received before `cutoff` are stamped
    /// `now`, so no other node (nor this one, before the set is overdue again) takes it too,
    /// and a crash before the message is stored (which takes the parts) delivers it later
    /// rather than never. The parts held (number, body), in order; `None` when another node took it.
    pub async fn claim_mo_set(
        &self,
        key: &MoSetKey,
        cutoff: i64,
        now: i64,
    ) -> Result<Option<Vec<(i64, String)>>> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE smpp_mo_parts SET received_at = $5 WHERE route = $1 AND source = $2 \
             AND destination = $3 AND reference = $4 AND received_at < $6",
        )
        .bind(key.route.clone())
        .bind(key.source.clone())
        .bind(key.destination.clone())
        .bind(key.reference)
        .bind(now)
        .bind(cutoff)
        .execute(tx.conn()?)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT part, body FROM smpp_mo_parts WHERE route = $1 AND source = $2 \
             AND destination = $3 AND reference = $4 ORDER BY part",
        )
        .bind(key.route.clone())
        .bind(key.source.clone())
        .bind(key.destination.clone())
        .bind(key.reference)
        .fetch_all(tx.conn()?)
        .await?;
        tx.commit().await?;
        let parts = rows
            .iter()
            .map(|row| Ok((int(row, "part")?, text(row, "body")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(parts))
    }

    /// Drops parts that will not be delivered (the message they make was refused).
    pub async fn drop_mo_parts(&self, parts: &MoParts) -> Result<()> {
        let mut tx = self.begin_write().await?;
        take_mo_parts(&mut tx, parts).await?;
        tx.commit().await
    }
}

pub(crate) async fn insert_receipts(tx: &mut Tx<'_>, receipts: &[Receipt]) -> Result<()> {
    tx.execute_all(receipt_statements(receipts)).await
}

/// The statements of `insert_receipts`.
pub(crate) fn receipt_statements(receipts: &[Receipt]) -> Vec<Sql> {
    let mut statements = Vec::new();
    for chunk in receipts.chunks(ROWS) {
        let mut rows = Rows::with_capacity(
            chunk.len(),
            &[
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Int,
                Kind::Text,
                Kind::Int,
                Kind::Int,
            ],
        );
        for r in chunk {
            rows.text(r.id.clone())
                .text(r.carrier_message_id.clone())
                .text(r.status.as_str())
                .opt_int(r.error_code)
                .opt_text(r.done_date.clone())
                .int(r.due_at)
                .int(r.due_at);
        }
        let mut sql = Sql::new(
            "INSERT INTO carrier_receipts \
             (id, carrier_message_id, status, error_code, done_date, due_at, received_at) ",
        );
        sql.insert_rows(rows);
        statements.push(sql);
    }
    statements
}
