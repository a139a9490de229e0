//! Writing new messages into the queue (the `messages` table is the dispatch queue): the
//! group commit's admission (caps, opt-outs, idempotency keys) and the rows of new messages,
//! their media and status events, with the status callbacks those events owe.

use super::rows::{
    event_entry, push_event_entries, Admission, CallbackTargets, Event, MESSAGE_COLUMNS,
};
use super::{opt_text, text, Kind, Rows, Sql, Tx};
use crate::domain::message::{IdempotencyKey, Media, Message};
use crate::error::Result;

/// Rows per multi-row statement: a dispatcher batch in one statement, and still far below both
/// databases' parameter limits (a message row binds 23 values: 11,500 of SQLite's 32,766 and
/// PostgreSQL's 65,535).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// A claim made as new messages are written (see `service::handoff`): up to `count` of a
/// group's accepted messages that are due at once are written already leased under `token`
/// until `lease_until`, and due then, for this node's dispatcher, which gets them in memory
/// instead of claiming them from the database. Every other message is written unclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthClaim {
    pub token: i64,
    pub lease_until: i64,
    pub count: usize,
}

/// Whether a new message is due as soon as it is written: neither scheduled nor final.
pub fn due_at_once(message: &Message) -> bool {
    !message.status.is_final() && message.send_at.is_none()
}

/// Records transitions and, in the same transaction, the status callbacks they owe. Must run
/// after the message rows carry their new state (the callback URL is resolved from them).
pub(crate) async fn insert_events(tx: &mut Tx<'_>, events: &[Event]) -> Result<()> {
    insert_events_to(tx, events, None).await
}

/// `insert_events`, with callback targets already resolved (see `enqueue_status_callbacks`).
pub(crate) async fn insert_events_to(
    tx: &mut Tx<'_>,
    events: &[Event],
    targets: Option<&CallbackTargets>,
) -> Result<()> {
    tx.execute_all(event_statements(events)).await?;
    super::outbox::enqueue_status_callbacks(tx, events, targets).await
}

/// Appends status transitions to their messages' `events` column, one multi-row update per
/// chunk of messages (their callbacks are separate). The transitions of one message keep their
/// order. The hot paths (outcomes, receipts) fold their entries into the update that moves the
/// message instead (see `rows::push_event_entries`).
pub(crate) fn event_statements(events: &[Event]) -> Vec<Sql> {
    let mut by_message: Vec<(&str, String)> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for event in events {
        let at = *index.entry(event.sid.as_str()).or_insert_with(|| {
            by_message.push((event.sid.as_str(), String::new()));
            by_message.len() - 1
        });
        push_event_entries(&mut by_message[at].1, [event]);
    }
    by_message
        .chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut rows = Rows::new(&[Kind::Text, Kind::Text]);
            for (sid, entries) in chunk {
                rows.text(sid.to_string()).text(entries.clone());
            }
            let mut sql = Sql::new(
                "UPDATE messages SET events = COALESCE(messages.events, '') || v.column2 FROM ",
            );
            sql.rows_as(rows, "v")
                .push(" WHERE messages.sid = v.column1");
            sql
        })
        .collect()
}

/// Inserts messages with their media and first event (in the row) inside `tx`.
pub(crate) async fn insert_messages_in(
    tx: &mut Tx<'_>,
    batch: &[(Message, Vec<Media>)],
    due_now: i64,
) -> Result<()> {
    tx.execute_all(new_message_statements(batch, due_now, None))
        .await
}

/// The statements that insert new messages with their media; each row carries its first
/// event (which owes no status callback) in its `events` column, and `claim`'s lease if it
/// is one of the first `claim.count` messages due at once.
fn new_message_statements(
    batch: &[(Message, Vec<Media>)],
    due_now: i64,
    claim: Option<BirthClaim>,
) -> Vec<Sql> {
    let mut statements = Vec::new();
    let mut unclaimed = claim.map_or(0, |c| c.count);
    /// The columns of `MESSAGE_COLUMNS`, then `attempts, due_at, events, claim_token,
    /// lease_until`.
    const MESSAGE_KINDS: &[Kind] = &[
        Kind::Text, // sid
        Kind::Text, // account_sid
        Kind::Text, // messaging_service_sid
        Kind::Text, // direction
        Kind::Text, // from_address
        Kind::Text, // to_address
        Kind::Text, // body
        Kind::Text, // encoding
        Kind::Int,  // num_segments
        Kind::Int,  // num_media
        Kind::Text, // status
        Kind::Int,  // error_code
        Kind::Text, // error_message
        Kind::Text, // price
        Kind::Text, // price_unit
        Kind::Text, // status_callback
        Kind::Int,  // validity_period
        Kind::Int,  // send_at
        Kind::Int,  // date_created
        Kind::Int,  // date_updated
        Kind::Int,  // date_sent
        Kind::Int,  // attempts
        Kind::Int,  // due_at
        Kind::Text, // events
        Kind::Int,  // claim_token
        Kind::Int,  // lease_until
    ];
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Rows::with_capacity(chunk.len(), MESSAGE_KINDS);
        for (m, _) in chunk {
            let claimed = match claim {
                Some(claim) if unclaimed > 0 && due_at_once(m) => {
                    unclaimed -= 1;
                    Some(claim)
                }
                _ => None,
            };
            // A message claimed here comes due for the database's claims only when its lease
            // ends (a node that died holding it): until then no claim walks past it.
            let due = if m.status.is_final() {
                None
            } else if let Some(claim) = claimed {
                Some(claim.lease_until)
            } else {
                Some(m.send_at.unwrap_or(due_now))
            };
            rows.text(m.sid.clone())
                .text(m.account_sid.clone())
                .opt_text(m.messaging_service_sid.clone())
                .text(m.direction.as_str())
                .opt_text(m.from.clone())
                .text(m.to.clone())
                .text(m.body.clone())
                .text(m.encoding.clone())
                .int(m.num_segments)
                .int(m.num_media)
                .text(m.status.as_str())
                .opt_int(m.error_code)
                .opt_text(m.error_message.clone())
                .opt_text(m.price.clone())
                .text(m.price_unit.clone())
                .opt_text(m.status_callback.clone())
                .int(m.validity_period)
                .opt_int(m.send_at)
                .int(m.date_created)
                .int(m.date_updated)
                .opt_int(m.date_sent)
                .int(0)
                .opt_int(due)
                .text(event_entry(m.status, m.date_created, m.error_code));
            rows.opt_int(claimed.map(|c| c.token))
                .opt_int(claimed.map(|c| c.lease_until));
        }
        let mut sql = Sql::new(&format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}, attempts, due_at, events, claim_token, lease_until) "
        ));
        sql.insert_rows(rows);
        statements.push(sql);
    }
    let media: Vec<&Media> = batch.iter().flat_map(|(_, media)| media.iter()).collect();
    for chunk in media.chunks(ROWS_PER_STATEMENT) {
        let mut rows = Rows::with_capacity(
            chunk.len(),
            &[
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Text,
                Kind::Int,
                Kind::Int,
            ],
        );
        for item in chunk {
            rows.text(item.sid.clone())
                .text(item.message_sid.clone())
                .text(item.account_sid.clone())
                .text(item.url.clone())
                .text(item.content_type.clone())
                .int(item.date_created)
                .int(item.date_updated);
        }
        let mut sql = Sql::new(
            "INSERT INTO message_media (sid, message_sid, account_sid, url, content_type, date_created, date_updated) ",
        );
        sql.insert_rows(rows);
        statements.push(sql);
    }
    statements
}

/// Who begins and ends the transaction of `insert_new_messages_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The caller's transaction (`Tx`) is open on the connection and the caller commits it.
    InTransaction,
    /// SQLite only: `BEGIN IMMEDIATE` goes with the first statement and `COMMIT` with the
    /// last, so a group costs two round trips to the connection's worker thread instead of five
    /// (see `WriteSession::insert_new_messages`).
    BeginAndCommit,
}

/// The body of `Store::insert_new_messages` on `tx`.
pub(crate) async fn insert_new_messages_in(
    tx: &mut super::durability::Exec<'_>,
    framing: Framing,
    batch: &[(Message, Vec<Media>)],
    estimates: &[crate::domain::usage::Money],
    terms: &[Terms],
    due_now: i64,
    claim: Option<BirthClaim>,
) -> Result<Vec<Admission>> {
    let mut stops = crate::domain::opt_out::OptOutsByRecipient::default();
    let mut accounts: Vec<&str> = batch.iter().map(|(m, _)| m.account_sid.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    // Every read admission needs, in one round trip on SQLite (`fetch_each`): each is a wait
    // for the connection's thread, and the API's requests wait for the group.
    let mut reads = Vec::new();
    if framing == Framing::BeginAndCommit {
        reads.push(Sql::new("BEGIN IMMEDIATE"));
    }
    let opt_out_reads = batch.chunks(ROWS_PER_STATEMENT).len();
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "SELECT account_sid, recipient, scope, sender FROM opt_outs WHERE account_sid IN ",
        );
        sql.text_set(accounts.iter().copied())
            .push(" AND recipient IN ")
            .text_set(chunk.iter().map(|(m, _)| m.to.as_str()));
        reads.push(sql);
    }
    let keyed = keyed(batch, terms);
    let keys_read = earlier_keys_statement(&keyed);
    let has_keys_read = keys_read.is_some();
    reads.extend(keys_read);
    let caps_read = super::caps::caps_statement(&accounts);
    let has_caps_read = caps_read.is_some();
    reads.extend(caps_read);
    let mut results = tx.fetch_each(reads).await?.into_iter();
    if framing == Framing::BeginAndCommit {
        results.next();
    }
    for rows in results.by_ref().take(opt_out_reads) {
        for row in &rows {
            stops.add(
                text(row, "account_sid")?,
                text(row, "recipient")?,
                text(row, "scope")?,
                opt_text(row, "sender")?,
            );
        }
    }
    let earlier = match has_keys_read {
        true => earlier_keys(&keyed, &results.next().unwrap_or_default())?,
        false => Vec::new(),
    };
    let caps = match has_caps_read {
        true => super::caps::decode_caps(&results.next().unwrap_or_default())?,
        false => Default::default(),
    };
    // Keys taken by messages accepted so far: the stored ones, then this batch's, in order.
    let mut taken: std::collections::HashMap<(&str, &str), (&str, &str)> = earlier
        .iter()
        .map(|(account, key, fingerprint, sid)| {
            (
                (account.as_str(), key.as_str()),
                (fingerprint.as_str(), sid.as_str()),
            )
        })
        .collect();
    let mut admissions: Vec<Admission> = batch
        .iter()
        .enumerate()
        .map(|(i, (m, _))| {
            let exempt = terms.get(i).is_some_and(|t| t.opt_out_exempt);
            let opted_out = !exempt
                && stops.blocks_message(
                    &m.account_sid,
                    &m.to,
                    m.from.as_deref(),
                    m.messaging_service_sid.as_deref(),
                );
            if opted_out {
                Admission::OptedOut
            } else {
                Admission::Accepted
            }
        })
        .collect();
    // Monthly caps, in batch order: a message over its account's cap is refused.
    let month =
        crate::domain::usage::day_string(crate::domain::usage::day_of(due_now))[..7].to_string();
    // Sorted by key, as every writer of the counters goes: two groups with the same accounts
    // lock their rows in the same order, so they wait for each other but never deadlock.
    let mut counts: std::collections::BTreeMap<(String, String), (i64, i64)> =
        std::collections::BTreeMap::new();
    // Per capped account: (messages this month, spend this month), as the batch goes. Their
    // counter rows are locked (read by writing) in account order, before any is updated.
    let mut used: std::collections::HashMap<&str, (i64, i64)> = std::collections::HashMap::new();
    for account in &accounts {
        if caps.contains_key(*account) {
            let (messages, outbound) = super::caps::month_count(tx, account, &month).await?;
            let other = super::caps::month_spend(tx, account, &month).await?;
            used.insert(account, (messages, outbound + other));
        }
    }
    for (i, ((m, _), admission)) in batch.iter().zip(admissions.iter_mut()).enumerate() {
        let key = terms.get(i).and_then(|t| t.idempotency.as_ref());
        if let Some(key) = key {
            // A retry is answered with the first message, whatever else would refuse it now.
            if let Some((fingerprint, sid)) = taken.get(&(m.account_sid.as_str(), key.key.as_str()))
            {
                *admission = Admission::Duplicate {
                    sid: sid.to_string(),
                    same_request: *fingerprint == key.fingerprint,
                };
                continue;
            }
        }
        if *admission != Admission::Accepted {
            continue;
        }
        let estimate = estimates.get(i).copied().unwrap_or(0);
        if let Some(cap) = caps.get(&m.account_sid) {
            let (messages, spend) = used
                .get(m.account_sid.as_str())
                .copied()
                .unwrap_or_default();
            if let Some(limit) = cap.monthly_messages {
                if messages >= limit {
                    *admission = Admission::OverCap(format!(
                        "This account reached its monthly cap of {limit} messages"
                    ));
                    continue;
                }
            }
            if let Some(limit) = cap.monthly_spend {
                if spend + estimate > limit {
                    *admission = Admission::OverCap(format!(
                        "This account reached its monthly spend cap of {}",
                        crate::domain::usage::format_money(limit)
                    ));
                    continue;
                }
            }
            if let Some(entry) = used.get_mut(m.account_sid.as_str()) {
                entry.0 += 1;
                entry.1 += estimate;
            }
        }
        if let Some(key) = key {
            taken.insert(
                (m.account_sid.as_str(), key.key.as_str()),
                (key.fingerprint.as_str(), m.sid.as_str()),
            );
        }
        let count = counts
            .entry((m.account_sid.clone(), month.clone()))
            .or_default();
        count.0 += 1;
        count.1 += estimate;
    }
    let kept: Vec<(Message, Vec<Media>)> = batch
        .iter()
        .zip(&admissions)
        .filter(|(_, a)| **a == Admission::Accepted)
        .map(|(item, _)| item.clone())
        .collect();
    // One round trip on SQLite (see `Tx::execute_all`): the writer's cycle is its limit.
    let mut statements = new_message_statements(&kept, due_now, claim);
    statements.extend(key_statements(batch, terms, &admissions, due_now));
    statements.extend(exempt_statements(batch, terms, &admissions));
    statements.extend(super::caps::count_statements(&counts));
    if framing == Framing::BeginAndCommit {
        statements.push(Sql::new("COMMIT"));
    }
    tx.execute_all(statements).await?;
    Ok(admissions)
}

/// Marks the accepted opt-out-exempt messages (see `Terms::opt_out_exempt`).
fn exempt_statements(
    batch: &[(Message, Vec<Media>)],
    terms: &[Terms],
    admissions: &[Admission],
) -> Option<Sql> {
    let exempt: Vec<&str> = batch
        .iter()
        .zip(terms)
        .zip(admissions)
        .filter(|((_, terms), admission)| {
            terms.opt_out_exempt && **admission == Admission::Accepted
        })
        .map(|(((m, _), _), _)| m.sid.as_str())
        .collect();
    if exempt.is_empty() {
        return None;
    }
    let mut sql = Sql::new("UPDATE messages SET opt_out_exempt = 1 WHERE sid IN ");
    sql.text_set(exempt);
    Some(sql)
}

/// What a new message brings besides its rows (by default, nothing).
#[derive(Debug, Clone, Default)]
pub struct Terms {
    /// The client's idempotency key (API sends).
    pub idempotency: Option<IdempotencyKey>,
    /// A keyword auto-reply: it confirms an opt-out, so neither admission nor the dispatcher
    /// refuses it for that opt-out. Caps, funds and status still apply.
    pub opt_out_exempt: bool,
}

/// The (account, idempotency key) of each message of `batch` that has a key.
fn keyed<'b>(batch: &'b [(Message, Vec<Media>)], terms: &'b [Terms]) -> Vec<(&'b str, &'b str)> {
    batch
        .iter()
        .zip(terms)
        .filter_map(|((m, _), terms)| {
            Some((
                m.account_sid.as_str(),
                terms.idempotency.as_ref()?.key.as_str(),
            ))
        })
        .collect()
}

/// The statement that finds the stored keys among `keyed` (none without keys).
fn earlier_keys_statement(keyed: &[(&str, &str)]) -> Option<Sql> {
    if keyed.is_empty() {
        return None;
    }
    let mut sql = Sql::new(
        "SELECT account_sid, idempotency_key, fingerprint, message_sid FROM idempotency_keys WHERE account_sid IN ",
    );
    sql.text_set(keyed.iter().map(|(account, _)| *account))
        .push(" AND idempotency_key IN ")
        .text_set(keyed.iter().map(|(_, key)| *key));
    Some(sql)
}

/// The stored idempotency keys among `keyed`, from the rows of `earlier_keys_statement`:
/// (account, key, fingerprint, message).
fn earlier_keys(
    keyed: &[(&str, &str)],
    rows: &[super::Row],
) -> Result<Vec<(String, String, String, String)>> {
    let mut found = Vec::new();
    for row in rows {
        let account = text(row, "account_sid")?;
        let key = text(row, "idempotency_key")?;
        if keyed.contains(&(account.as_str(), key.as_str())) {
            found.push((
                account,
                key,
                text(row, "fingerprint")?,
                text(row, "message_sid")?,
            ));
        }
    }
    Ok(found)
}

/// The rows that record the idempotency keys of the accepted messages.
fn key_statements(
    batch: &[(Message, Vec<Media>)],
    terms: &[Terms],
    admissions: &[Admission],
    now: i64,
) -> Vec<Sql> {
    let keyed: Vec<(&Message, &IdempotencyKey)> = batch
        .iter()
        .zip(terms)
        .zip(admissions)
        .filter(|(_, admission)| **admission == Admission::Accepted)
        .filter_map(|(((m, _), terms), _)| Some((m, terms.idempotency.as_ref()?)))
        .collect();
    let mut statements = Vec::new();
    for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            "INSERT INTO idempotency_keys (account_sid, idempotency_key, fingerprint, message_sid, date_created) VALUES ",
        );
        for (i, (m, key)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(")
                .text(m.account_sid.clone())
                .push(", ")
                .text(key.key.clone())
                .push(", ")
                .text(key.fingerprint.clone())
                .push(", ")
                .text(m.sid.clone())
                .push(", ")
                .int(now)
                .push(")");
        }
        statements.push(sql);
    }
    statements
}
