//! Claims that several nodes can share: fencing tokens (an outcome or webhook settled under a
//! claim another node took since writes nothing), a claim's time to submit, and group commits
//! that touch the same accounts' counters concurrently without deadlocking.

mod common;

use axum::http::StatusCode;
use common::{queued_message, spawn};
use warbler::carrier::{Submit, SubmitOutcome};
use warbler::domain::message::MessageStatus;
use warbler::domain::time::now_micros;
use warbler::store::messages::Outcome;
use warbler::store::queue::BirthClaim;
use warbler::store::Store;

const SECOND: i64 = 1_000_000;

fn sent(at: i64) -> Outcome {
    Outcome::Sent {
        from: "+14155550100".into(),
        route: "simulated".into(),
        carrier_message_id: format!("SIM{at}"),
        cost: Some(7_900),
        category: "sms-outbound-longcode".into(),
        at,
    }
}

async fn statuses(store: &Store, sid: &str) -> Vec<MessageStatus> {
    store
        .message_events(sid)
        .await
        .unwrap()
        .into_iter()
        .map(|(status, _, _)| status)
        .collect()
}

/// A node that paused past its lease lost its messages to another node's claim: what it then
/// records writes nothing (no status, no event, no usage), and the new holder's record counts.
#[tokio::test]
async fn an_outcome_recorded_under_a_lost_claim_writes_nothing() {
    let server = spawn().await;
    let store = &server.app.store;
    let now = now_micros();
    let sid = format!("SM{:032x}", 0xfe4ce_u64);
    let message = queued_message(sid.clone(), common::MAIN_SID, "fenced", now - SECOND);
    store
        .insert_messages(&[(message, Vec::new())], now - SECOND)
        .await
        .unwrap();

    let lease = 2 * SECOND;
    let first = store.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(first.messages.len(), 1);
    assert_eq!(first.taken_over, 0, "a fresh message is nobody's");
    assert!(
        store
            .claim_due(now, lease, 10)
            .await
            .unwrap()
            .messages
            .is_empty(),
        "a live claim is not taken again"
    );
    // The first holder pauses; its lease runs out and another node claims the message.
    let later = now + lease + SECOND;
    let second = store.claim_due(later, lease, 10).await.unwrap();
    assert_eq!(second.messages.len(), 1);
    if store.backend() == warbler::store::Backend::Postgres {
        // (SQLite, one node, sees a lapsed claim only after a restart, and does not count it.)
        assert_eq!(second.taken_over, 1, "the lapsed claim is counted");
    }
    assert_ne!(first.token, second.token);

    let message = first.messages[0].message.clone();
    let stale = store
        .record_outcomes(
            &[(message.clone(), sent(now))],
            &[],
            &Default::default(),
            now,
            first.token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(stale.count, 0, "the paused node's record is refused");
    let stored = store
        .message(common::MAIN_SID, &sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::Queued);
    assert_eq!(statuses(store, &sid).await, vec![MessageStatus::Queued]);

    let kept = store
        .record_outcomes(
            &[(message, sent(later))],
            &[],
            &Default::default(),
            later,
            second.token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(kept.count, 1);
    let stored = store
        .message(common::MAIN_SID, &sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, MessageStatus::Sent);
    assert_eq!(
        statuses(store, &sid).await,
        vec![
            MessageStatus::Queued,
            MessageStatus::Sending,
            MessageStatus::Sent
        ],
        "one send recorded, once"
    );
}

/// A batch of which another claim took only some: the outcomes of the messages still held are
/// recorded, the others' are not (on SQLite the check counts the batch first and reads which
/// are held only when the count falls short).
#[tokio::test]
async fn a_batch_partly_taken_over_records_only_what_it_still_holds() {
    let server = spawn().await;
    let store = &server.app.store;
    let now = now_micros();
    let sids: Vec<String> = (0..3).map(|i| format!("SM{:032x}", 0xba7c0 + i)).collect();
    for (i, sid) in sids.iter().enumerate() {
        let due = now - SECOND + i as i64;
        let message = queued_message(sid.clone(), common::MAIN_SID, "partly", due);
        store
            .insert_messages(&[(message, Vec::new())], due)
            .await
            .unwrap();
    }
    let lease = 2 * SECOND;
    let first = store.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(first.messages.len(), 3);
    // The first holder pauses; another claim takes one of the three after the lease.
    let later = now + lease + SECOND;
    let second = store.claim_due(later, lease, 1).await.unwrap();
    assert_eq!(second.messages.len(), 1);
    let lost = second.messages[0].message.sid.clone();

    let outcomes: Vec<_> = first
        .messages
        .iter()
        .map(|claimed| (claimed.message.clone(), sent(now)))
        .collect();
    let recorded = store
        .record_outcomes(&outcomes, &[], &Default::default(), now, first.token, None)
        .await
        .unwrap();
    assert_eq!(recorded.count, 2, "the two still held");
    for sid in &sids {
        let stored = store.message(common::MAIN_SID, sid).await.unwrap().unwrap();
        let expected = if *sid == lost {
            MessageStatus::Queued
        } else {
            MessageStatus::Sent
        };
        assert_eq!(stored.status, expected, "{sid}");
    }
}

/// Nothing reaches a carrier once a claim's time to submit has run out: the messages are
/// left for the next claim instead.
#[tokio::test]
async fn a_claim_whose_time_ran_out_submits_nothing() {
    let server = spawn().await;
    let submit = Submit {
        message_sid: format!("SM{:032x}", 1),
        from: "+14155550100".into(),
        to: "+14155550199".into(),
        body: "late".into(),
        segments: 1,
        is_mms: false,
    };
    let now = now_micros();
    let past = std::time::Instant::now() - std::time::Duration::from_millis(1);
    let (outcomes, records) = server
        .app
        .carrier
        .submit("simulated", std::slice::from_ref(&submit), now, past)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![SubmitOutcome::Abandoned]);
    assert!(records.simulated.is_empty() && records.receipts.is_empty());

    let future = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (outcomes, records) = server
        .app
        .carrier
        .submit("simulated", &[submit], now, future)
        .await
        .unwrap();
    assert!(matches!(outcomes[..], [SubmitOutcome::Accepted { .. }]));
    assert_eq!(records.simulated.len(), 1);
}

/// A webhook claim lost to another node (its lease ran out while the receiver was slow):
/// settling it writes nothing; the new holder's settlement does.
#[tokio::test]
async fn a_webhook_settled_under_a_lost_claim_stays_for_its_new_holder() {
    let server = spawn().await;
    let store = &server.app.store;
    server.stock().await;
    server
        .buy(common::MAIN_SID, "+14155550100", server.main_creds())
        .await;
    let reply = server
        .post(
            &format!("/2010-04-01/Accounts/{}/Messages.json", common::MAIN_SID),
            server.main_creds(),
            &[
                ("To", "+14155550199"),
                ("From", "+14155550100"),
                ("Body", "callback me"),
                ("StatusCallback", "http://127.0.0.1:9/status"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let t0 = now_micros();
    server.app.dispatch_once(t0).await.unwrap();
    assert_eq!(
        store.pending_webhooks().await.unwrap(),
        1,
        "the `sent` callback"
    );

    let lease = 2 * SECOND;
    let first = store.claim_webhooks(t0, lease, 10).await.unwrap();
    assert_eq!(first.webhooks.len(), 1);
    assert!(store
        .claim_webhooks(t0, lease, 10)
        .await
        .unwrap()
        .webhooks
        .is_empty());
    let later = t0 + lease + SECOND;
    let second = store.claim_webhooks(later, lease, 10).await.unwrap();
    assert_eq!(second.webhooks.len(), 1);
    if store.backend() == warbler::store::Backend::Postgres {
        assert_eq!(second.taken_over, 1);
    }

    let done = |id: &str| warbler::store::webhooks::Settlement::done(id.to_string());
    let id = first.webhooks[0].id.clone();
    store
        .settle_webhooks(&[done(&id)], first.token, t0)
        .await
        .unwrap();
    assert_eq!(
        store.pending_webhooks().await.unwrap(),
        1,
        "the paused node's settlement is refused"
    );
    store
        .settle_webhooks(&[done(&id)], second.token, later)
        .await
        .unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 0);
}

/// Runs one statement on the store's pool (test set-up: vacuums, analyses, bulk edits).
async fn execute(store: &Store, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(store.pool())
        .await
        .unwrap();
}

/// Adds `rows` pending status callbacks, two per message (`seq` 0 then 1), due from
/// `first_due` on, with ids `{prefix}{message}-{seq}`.
async fn fill_outbox(store: &Store, prefix: &str, rows: i64, first_due: i64) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
         INSERT INTO webhook_outbox (id, kind, account_sid, ordering_key, seq, url, method, \
         message_status, attempts, created_at, due_at) \
         SELECT '{prefix}' || (i / 2) || '-' || (i % 2), 'status', '{account}', \
         'MM{prefix}' || (i / 2), i % 2, 'http://127.0.0.1:9/status', 'POST', 'sent', 0, \
         {first_due} + i, {first_due} + i FROM n",
        last = rows - 1,
        account = common::MAIN_SID,
    )))
    .execute(store.pool())
    .await
    .unwrap();
}

/// A webhook claim stays one index probe per candidate whatever the database last learnt of
/// the outbox. The outbox is nearly empty most of the time; statistics taken then, and a
/// claim prepared and run then more than five times (when PostgreSQL may start reusing a
/// generic plan), once made a claim over a burst's backlog scan the whole outbox for every
/// candidate: minutes for 20,000 rows, every callback stalled. The claim also keeps each
/// message's callbacks in order (only a message's first is claimed).
#[tokio::test]
async fn a_claim_over_a_sudden_backlog_stays_quick_whatever_the_statistics_said() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = Store::connect(&url).await.unwrap();
    let now = now_micros();
    // The statistics of a quiet outbox: one row.
    fill_outbox(&store, "WHQ", 1, now - 60 * SECOND).await;
    sqlx::query("ANALYZE webhook_outbox")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM webhook_outbox")
        .execute(store.pool())
        .await
        .unwrap();
    // More than five runs on each of the pool's connections (at most 16, taken in turn).
    for _ in 0..120 {
        let idle = store.claim_webhooks(now, 60 * SECOND, 256).await.unwrap();
        assert!(idle.webhooks.is_empty());
    }

    let backlog = 20_000;
    fill_outbox(&store, "WHB", backlog, now - 30 * SECOND).await;
    let started = std::time::Instant::now();
    let claim = store.claim_webhooks(now, 60 * SECOND, 256).await.unwrap();
    let took = started.elapsed();
    assert_eq!(claim.webhooks.len(), 256);
    assert!(
        claim.webhooks.iter().all(|w| w.id.ends_with("-0")),
        "only each message's first callback is claimed"
    );
    let oldest: Vec<String> = (0..256).map(|m| format!("WHB{m}-0")).collect();
    let claimed: Vec<String> = claim.webhooks.iter().map(|w| w.id.clone()).collect();
    assert_eq!(claimed, oldest, "the oldest due first");
    // An index probe per candidate takes milliseconds here; the quadratic plans took minutes.
    assert!(
        took < std::time::Duration::from_secs(10),
        "a claim over {backlog} rows took {took:?}"
    );
}

/// A webhook claim looks first at the head of the due index; when that head is all callbacks
/// other nodes hold, or ones waiting behind those, the due callbacks after it are still found.
#[tokio::test]
async fn a_claim_finds_the_due_callbacks_behind_a_head_full_of_others_in_flight() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = Store::connect(&url).await.unwrap();
    let now = now_micros();
    // 1,500 messages' two callbacks, the oldest due: each first one held by another node
    // (its lease runs for a minute), each second one waiting behind it.
    fill_outbox(&store, "WHF", 3_000, now - 60 * SECOND).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_outbox SET claim_token = 1, lease_until = {} WHERE seq = 0",
        now + 60 * SECOND
    )))
    .execute(store.pool())
    .await
    .unwrap();
    fill_outbox(&store, "WHL", 10, now - SECOND).await;
    let claim = store.claim_webhooks(now, 60 * SECOND, 256).await.unwrap();
    let claimed: Vec<String> = claim.webhooks.iter().map(|w| w.id.clone()).collect();
    let behind: Vec<String> = (0..5).map(|m| format!("WHL{m}-0")).collect();
    assert_eq!(claimed, behind);
    assert_eq!(claim.taken_over, 0);
    // The others' rows are theirs until their lease runs out.
    let later = store
        .claim_webhooks(now + 61 * SECOND, 60 * SECOND, 2)
        .await
        .unwrap();
    let taken: Vec<String> = later.webhooks.iter().map(|w| w.id.clone()).collect();
    assert_eq!(taken, ["WHF0-0", "WHF1-0"]);
    // Counted where several nodes may share the outbox.
    if store.backend() == warbler::store::Backend::Postgres {
        assert_eq!(later.taken_over, 2);
    }
}

/// Statistics taken mid-burst, while most of the outbox is leased, say almost no row is
/// claimable. From them a claim's estimated cost rose past `jit_above_cost`, and PostgreSQL
/// compiled every claim (20 ms and more each), or its plan scanned and sorted the whole
/// backlog; in benchmark runs callbacks slowed to a quarter of their rate for as long as those
/// statistics lasted. Claims are never compiled (warbler's sessions run with `jit = off`).
#[tokio::test]
async fn claims_stay_quick_whatever_statistics_taken_mid_burst_said() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = Store::connect(&url).await.unwrap();
    let postgres = store.backend() == warbler::store::Backend::Postgres;
    let now = now_micros();
    let backlog = 60_000;
    fill_outbox(&store, "WHS", backlog, now - 120 * SECOND).await;
    execute(
        &store,
        &format!(
            "UPDATE webhook_outbox SET claim_token = 1, lease_until = {}",
            now + 3_600 * SECOND
        ),
    )
    .await;
    execute(&store, "ANALYZE webhook_outbox").await;
    // The node holding them died: every lease lapsed at once.
    execute(
        &store,
        "UPDATE webhook_outbox SET claim_token = NULL, lease_until = NULL",
    )
    .await;
    if postgres {
        execute(&store, "VACUUM webhook_outbox").await;
    }
    let started = std::time::Instant::now();
    let rounds = 20;
    for round in 0..rounds {
        let claim = store.claim_webhooks(now, 60 * SECOND, 256).await.unwrap();
        let expected: Vec<String> = (round * 256..(round + 1) * 256)
            .map(|m| format!("WHS{m}-0"))
            .collect();
        let claimed: Vec<String> = claim.webhooks.iter().map(|w| w.id.clone()).collect();
        assert_eq!(
            claimed, expected,
            "round {round}: the oldest due first, in order"
        );
    }
    let took = started.elapsed();
    // In due order a claim reads a few hundred rows (milliseconds); compiled, each took about
    // a quarter of a second here (4.9 s for the 20).
    assert!(
        took < std::time::Duration::from_secs(4),
        "{rounds} claims over {backlog} rows took {took:?}"
    );
}

/// A webhook claim finds the rows it picked by their place, whatever the database last learnt
/// of the outbox. Vacuumed just after a burst drained (many pages, few live rows), the outbox
/// looks nearly empty to the planner while the next burst fills those pages again; joined by
/// key, the claim's update then matched its picked rows by walking the whole outbox once for
/// every one of them (a join filter dropping 758,528 pairs for 256 rows in a benchmark run:
/// 169–760 ms per claim, callbacks at a fifth of their rate).
#[tokio::test]
async fn claims_stay_quick_when_the_outbox_was_last_vacuumed_nearly_empty() {
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = Store::connect(&url).await.unwrap();
    let postgres = store.backend() == warbler::store::Backend::Postgres;
    let now = now_micros();
    // A burst delivered but for its last row (so vacuum has no empty page at the end to give
    // back), then vacuumed: many pages, one row.
    let drained = now - 600 * SECOND;
    let burst = 40_000;
    fill_outbox(&store, "WHD", burst, drained).await;
    execute(
        &store,
        &format!(
            "DELETE FROM webhook_outbox WHERE due_at <> {}",
            drained + burst - 1
        ),
    )
    .await;
    execute(
        &store,
        if postgres {
            "VACUUM ANALYZE webhook_outbox"
        } else {
            "ANALYZE webhook_outbox"
        },
    )
    .await;
    // The next burst, in the same pages.
    let backlog = 40_000;
    fill_outbox(&store, "WHN", backlog, now - 120 * SECOND).await;
    let rounds: usize = 10;
    let mut expected = vec![format!("WHD{}-1", burst / 2 - 1)];
    expected.extend((0..rounds * 256 - 1).map(|m| format!("WHN{m}-0")));
    let started = std::time::Instant::now();
    let mut claimed: Vec<String> = Vec::new();
    for _ in 0..rounds {
        let claim = store.claim_webhooks(now, 60 * SECOND, 256).await.unwrap();
        assert_eq!(claim.webhooks.len(), 256);
        claimed.extend(claim.webhooks.iter().map(|w| w.id.clone()));
    }
    let took = started.elapsed();
    assert_eq!(claimed, expected, "the oldest due first, in order");
    // By place, a claim takes milliseconds here; walking the outbox per picked row, each took
    // about a second.
    assert!(
        took < std::time::Duration::from_secs(3),
        "{rounds} claims over {backlog} rows took {took:?}"
    );
}

/// A new callback's due time looks only at its own message's pending callbacks, whatever the
/// database last learnt of the outbox. Planned from the statistics of an empty outbox, the
/// "not before the key's pending ones" look-up once walked the due index down through every
/// row in retry backoff for each callback queued: with a receiver down and 100,000 rows
/// waiting, seconds for every batch of outcomes.
#[tokio::test]
async fn callbacks_queued_behind_a_backlog_in_backoff_stay_quick_whatever_the_statistics_said() {
    let server = spawn().await;
    let store = &server.app.store;
    let now = now_micros();
    sqlx::query("ANALYZE webhook_outbox")
        .execute(store.pool())
        .await
        .unwrap();
    let backlog = 100_000;
    fill_outbox(store, "WHR", backlog, now + 3_600 * SECOND).await;

    let count = 500;
    let batch: Vec<_> = (0..count)
        .map(|i| {
            let mut message = queued_message(
                format!("SM{:032x}", 0xbac_0000 + i),
                common::MAIN_SID,
                "behind a backlog",
                now - SECOND,
            );
            message.status_callback = Some("http://127.0.0.1:9/status".into());
            (message, Vec::new())
        })
        .collect();
    store.insert_messages(&batch, now - SECOND).await.unwrap();
    let claim = store
        .claim_due(now, 60 * SECOND, count as i64)
        .await
        .unwrap();
    assert_eq!(claim.messages.len(), count as usize);
    let outcomes: Vec<_> = claim
        .messages
        .iter()
        .map(|c| (c.message.clone(), sent(now)))
        .collect();
    let started = std::time::Instant::now();
    let recorded = store
        .record_outcomes(&outcomes, &[], &Default::default(), now, claim.token, None)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(recorded.count, count as usize);
    assert_eq!(
        store.pending_webhooks().await.unwrap(),
        backlog + count as i64,
        "one `sent` callback per message"
    );
    // Nothing of another message holds them back: they are due now, not behind the backlog.
    let due = store.claim_webhooks(now, 60 * SECOND, 1_000).await.unwrap();
    assert_eq!(due.webhooks.len(), count as usize);
    // Index probes of each key: about 60 ms for the whole batch on PostgreSQL; the walk
    // through the backlog took about 10 ms per callback, 4.9 s for the batch.
    assert!(
        took < std::time::Duration::from_secs(2),
        "{count} outcomes with callbacks behind {backlog} rows in backoff took {took:?}"
    );
}

/// Two writers (on PostgreSQL, two connection pools, as two nodes have) commit groups with the
/// same capped accounts in opposite orders, over and over: the counters are locked in one
/// order, so neither deadlocks and every message is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_with_the_same_accounts_in_opposite_orders_never_deadlock() {
    common::clear_of_utc_midnight().await;
    let server = spawn().await;
    let (a, _) = server.subaccount("Alpha").await;
    let (b, _) = server.subaccount("Bravo").await;
    for account in [&a, &b] {
        let reply = server
            .post(
                &format!("/admin/accounts/{account}/Caps"),
                server.main_creds(),
                &[("MonthlyMessages", "1000000")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let first = server.app.store.clone();
    let second = match first.backend() {
        warbler::store::Backend::Postgres => Store::connect(&server.database_url).await.unwrap(),
        // One SQLite writer at a time: the two take turns on one store.
        warbler::store::Backend::Sqlite => first.clone(),
    };
    const ROUNDS: usize = 40;
    let now = now_micros();
    let write = |store: Store, accounts: [String; 2], tag: usize| async move {
        for round in 0..ROUNDS {
            let batch: Vec<_> = accounts
                .iter()
                .enumerate()
                .map(|(i, account)| {
                    let sid = format!("SM{tag:02x}{round:04x}{i:02x}{:024x}", 0);
                    (queued_message(sid, account, "grouped", now), Vec::new())
                })
                .collect();
            store
                .insert_new_messages(&batch, &[0, 0], now)
                .await
                .expect("a group commit");
        }
    };
    let one = tokio::spawn(write(first.clone(), [a.clone(), b.clone()], 1));
    let two = tokio::spawn(write(second, [b.clone(), a.clone()], 2));
    one.await.unwrap();
    two.await.unwrap();
    for account in [&a, &b] {
        let reply = server
            .get(
                &format!("/admin/accounts/{account}/Caps"),
                server.main_creds(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            reply.body["messages_this_month"].as_i64(),
            Some(2 * ROUNDS as i64),
            "{}",
            reply.body
        );
    }
}

/// A route's bind slots are leased to nodes: shares add up to the route's `binds`, a node
/// over its share gives slots back, and a dead node's slots are taken once its lease ran out.
#[tokio::test]
async fn bind_slots_are_shared_out_and_a_dead_nodes_are_taken_over() {
    let server = spawn().await;
    let store = &server.app.store;
    let now = now_micros();
    let lease = 10 * SECOND;
    let hold = |node: &'static str, want: u32, at: i64| async move {
        store
            .hold_bind_slots("carrier", 3, node, want, at, lease)
            .await
            .unwrap()
    };
    assert_eq!(
        hold("node-a", 3, now).await,
        vec![0, 1, 2],
        "alone: every slot"
    );
    assert!(
        hold("node-b", 1, now).await.is_empty(),
        "none free while A holds them"
    );
    // A learns of B: its share is now 2 (3 slots over 2 nodes), so it gives one back...
    assert_eq!(hold("node-a", 2, now).await, vec![0, 1]);
    // ...which B takes.
    assert_eq!(hold("node-b", 1, now).await, vec![2]);
    // A dies; once its leases have run out, B (now alone) takes its slots over.
    let later = now + lease + SECOND;
    assert_eq!(
        hold("node-b", 3, now + SECOND).await,
        vec![2],
        "A's leases still run"
    );
    assert_eq!(hold("node-b", 3, later).await, vec![0, 1, 2]);
}

/// A settlement that names a row its claim lost settles none of its rows, and the row the
/// claim still holds stays held until its lease ends (its delivery may still be under way):
/// it is not claimed again sooner, and it is after.
#[tokio::test]
async fn a_settlement_naming_a_lost_row_settles_nothing_and_the_rest_stays_held() {
    use warbler::store::webhooks::{Settled, Settlement};
    let database = common::fresh_database().await;
    let url = database.url.clone();
    let store = Store::connect(&url).await.unwrap();
    let now = now_micros();
    // Two messages with two callbacks each: a claim takes each message's first.
    fill_outbox(&store, "WHP", 4, now - SECOND).await;
    let lease = 10 * SECOND;
    let first = store.claim_webhooks(now, lease, 10).await.unwrap();
    let ids = |claim: &warbler::store::webhooks::WebhookClaim| -> Vec<String> {
        claim.webhooks.iter().map(|w| w.id.clone()).collect()
    };
    assert_eq!(ids(&first), ["WHP0-0", "WHP1-0"]);
    // One row's lease is renewed; the other's lapses and a later claim takes it.
    let renewed = store
        .renew_webhooks(&["WHP0-0"], first.token, now, 30 * SECOND)
        .await
        .unwrap();
    assert_eq!(renewed, 1);
    let later = now + 11 * SECOND;
    let second = store.claim_webhooks(later, lease, 10).await.unwrap();
    assert_eq!(ids(&second), ["WHP1-0"]);
    // The first claim settles both rows together: it lost one, so neither is settled.
    let both = Settlement {
        settled: vec![
            Settled::Done {
                id: "WHP0-0".into(),
            },
            Settled::Done {
                id: "WHP1-0".into(),
            },
        ],
        ..Settlement::default()
    };
    store
        .settle_webhooks(&[both], first.token, later)
        .await
        .unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 4);
    // The row the first claim still holds is not claimed again before its lease ends…
    let meanwhile = store.claim_webhooks(later, lease, 10).await.unwrap();
    assert!(meanwhile.webhooks.is_empty(), "{:?}", ids(&meanwhile));
    // …and is once it has (with the second claim's, whose lease ended too).
    let after = store
        .claim_webhooks(now + 31 * SECOND, lease, 10)
        .await
        .unwrap();
    assert_eq!(ids(&after), ["WHP0-0", "WHP1-0"]);
}

/// Messages claimed as they are written (`BirthClaim`): only the first `count` of those due at
/// once are claimed, and they stay out of every database claim until their lease ends. An
/// outcome under the birth claim's token is recorded; one under it after another claim took
/// the message over is not. A released message is claimed at once.
#[tokio::test]
async fn messages_claimed_as_they_are_written_stay_out_of_claims_until_their_lease_ends() {
    let server = spawn().await;
    let store = &server.app.store;
    let now = now_micros();
    let lease = 2 * SECOND;
    let token = 0x5eed_u64 as i64;
    let sid = |i: u64| format!("SM{:032x}", 0xb127_0000_u64 + i);
    let mut scheduled = queued_message(sid(9), common::MAIN_SID, "later", now);
    scheduled.status = MessageStatus::Scheduled;
    scheduled.send_at = Some(now + 3_600 * SECOND);
    let batch = vec![
        (scheduled, Vec::new()),
        (
            queued_message(sid(1), common::MAIN_SID, "held", now),
            Vec::new(),
        ),
        (
            queued_message(sid(2), common::MAIN_SID, "lapses", now),
            Vec::new(),
        ),
        (
            queued_message(sid(3), common::MAIN_SID, "released", now),
            Vec::new(),
        ),
        (
            queued_message(sid(4), common::MAIN_SID, "beyond the count", now),
            Vec::new(),
        ),
    ];
    let mut session = store.write_session().await.unwrap();
    let (admissions, durable) = session
        .insert_new_messages(
            &batch,
            &[0; 5],
            &[],
            now,
            Some(BirthClaim {
                token,
                lease_until: now + lease,
                count: 3,
            }),
        )
        .await
        .unwrap();
    durable.wait().await.unwrap();
    drop(session);
    assert_eq!(admissions.len(), 5);

    // The scheduled message is not due at once and takes none of the three; the fourth due
    // one is beyond them: it alone is the database's to claim.
    let claim = store.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(sids_of(&claim), [sid(4).as_str()]);
    let done = |claim: warbler::store::messages::Claim| async move {
        let outcomes: Vec<_> = claim
            .messages
            .into_iter()
            .map(|c| (c.message, sent(now)))
            .collect();
        store
            .record_outcomes(&outcomes, &[], &Default::default(), now, claim.token, None)
            .await
            .unwrap()
            .count
    };
    assert_eq!(done(claim).await, 1);

    let held = store
        .message(common::MAIN_SID, &sid(1))
        .await
        .unwrap()
        .unwrap();
    let recorded = store
        .record_outcomes(
            &[(held, sent(now))],
            &[],
            &Default::default(),
            now,
            token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(recorded.count, 1, "the birth claim holds its message");

    assert_eq!(
        store
            .release_message_claims(token, &[sid(3).as_str()], now)
            .await
            .unwrap(),
        1
    );
    let claim = store.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(
        sids_of(&claim),
        [sid(3).as_str()],
        "released: claimed at once"
    );
    assert_eq!(done(claim).await, 1);

    // The node that wrote them died: once the lease ends, another claim takes the rest.
    let later = now + lease + SECOND;
    let claim = store.claim_due(later, lease, 10).await.unwrap();
    assert_eq!(sids_of(&claim), [sid(2).as_str()]);
    if store.backend() == warbler::store::Backend::Postgres {
        assert_eq!(claim.taken_over, 1, "the lapsed birth claim is counted");
    }
    let lapsed = store
        .message(common::MAIN_SID, &sid(2))
        .await
        .unwrap()
        .unwrap();
    let stale = store
        .record_outcomes(
            &[(lapsed, sent(later))],
            &[],
            &Default::default(),
            later,
            token,
            None,
        )
        .await
        .unwrap();
    assert_eq!(stale.count, 0, "the dead writer's token no longer holds it");
    assert_eq!(
        store
            .release_message_claims(token, &[sid(2).as_str()], later)
            .await
            .unwrap(),
        0,
        "nor can it release it"
    );
}

/// The SIDs a claim took, in its order.
fn sids_of(claim: &warbler::store::messages::Claim) -> Vec<&str> {
    claim
        .messages
        .iter()
        .map(|c| c.message.sid.as_str())
        .collect()
}

/// The claim token and lease end of a message's row, and whether it is due by `now`.
async fn claim_of(store: &Store, sid: &str, now: i64) -> (Option<i64>, Option<i64>, bool) {
    use sqlx::Row;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT claim_token, lease_until, due_at FROM messages WHERE sid = '{sid}'"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    let due: Option<i64> = row.try_get("due_at").unwrap();
    (
        row.try_get("claim_token").unwrap(),
        row.try_get("lease_until").unwrap(),
        due.is_some_and(|due| due <= now),
    )
}

/// While the dispatcher runs, the API's messages are written claimed for it and handed over in
/// memory: the row that went out carries the handoff's token. Once it stops, new messages are
/// written unclaimed and due at once, for whichever dispatcher claims next.
#[tokio::test]
async fn the_api_s_messages_are_claimed_for_the_running_dispatcher_as_they_are_written() {
    let running = common::smpp::start(Vec::new()).await;
    let server = &running.server;
    let form = [
        ("To", "+14155550111"),
        ("From", "+14155550100"),
        ("Body", "handed over"),
    ];
    let sent = common::smpp::send(server, &form).await;
    let sid = sent["sid"].as_str().unwrap().to_string();
    common::smpp::wait_for(server, &sid, "delivered", 20).await;
    let (token, lease, _) = claim_of(&server.app.store, &sid, now_micros()).await;
    assert_eq!(
        token,
        Some(server.app.handoff.token()),
        "dispatched from the handoff"
    );
    assert_eq!(lease, None, "its outcome ended the lease");

    running.stop_engine();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.app.handoff.birth_claim(SECOND, 0).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dispatcher never stopped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let later = common::smpp::send(server, &form).await;
    let sid = later["sid"].as_str().unwrap();
    let (token, lease, due) = claim_of(&server.app.store, sid, now_micros()).await;
    assert_eq!(
        (token, lease, due),
        (None, None, true),
        "nobody's, due at once"
    );
}

/// A server on a SQLite file that crashed left its claims (a round's and those made as
/// messages were written). The next server on the file, holding its lock, ends them as it
/// starts, and they are claimed at once; a store without the lock ends nothing.
#[tokio::test]
async fn the_next_server_on_a_sqlite_file_ends_the_claims_a_crashed_one_left() {
    let dir = std::env::temp_dir().join(format!(
        "warbler-claims-{}",
        warbler::domain::sid::random_hex32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/warbler.db", dir.display());
    let now = now_micros();
    let lease = 60 * SECOND;
    {
        let crashed = Store::connect(&url).await.unwrap();
        warbler::service::App::new(
            crashed.clone(),
            warbler::service::Settings::new(10, "test-pepper".into()),
        )
        .ensure_main_account(Some(common::MAIN_SID), Some(common::MAIN_TOKEN), "crashed")
        .await
        .unwrap();
        crashed
            .insert_messages(
                &[(
                    queued_message(
                        format!("SM{:032x}", 0xc1),
                        common::MAIN_SID,
                        "in a round",
                        now,
                    ),
                    Vec::new(),
                )],
                now,
            )
            .await
            .unwrap();
        assert_eq!(
            crashed
                .claim_due(now, lease, 10)
                .await
                .unwrap()
                .messages
                .len(),
            1
        );
        let mut session = crashed.write_session().await.unwrap();
        let born = queued_message(format!("SM{:032x}", 0xc2), common::MAIN_SID, "handed", now);
        let (_, durable) = session
            .insert_new_messages(
                &[(born, Vec::new())],
                &[0],
                &[],
                now,
                Some(BirthClaim {
                    token: 7,
                    lease_until: now + lease,
                    count: 1,
                }),
            )
            .await
            .unwrap();
        durable.wait().await.unwrap();
    }
    let next = Store::connect(&url).await.unwrap();
    assert_eq!(
        next.end_claims_of_earlier_servers(now).await.unwrap(),
        0,
        "without the file's lock, another process may hold them"
    );
    assert!(next
        .claim_due(now, lease, 10)
        .await
        .unwrap()
        .messages
        .is_empty());
    next.hold_webhook_outbox().unwrap();
    assert_eq!(next.end_claims_of_earlier_servers(now).await.unwrap(), 2);
    assert_eq!(
        next.claim_due(now, lease, 10).await.unwrap().messages.len(),
        2
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On PostgreSQL, a status callback is written claimed for this node's webhook sender when it
/// is its message's only pending webhook: it stays out of the database's claims while its
/// lease lasts, a callback queued behind it waits for it (and not for its lease), a released
/// one is claimed at once, and a lapsed one is taken over and fenced off from its writer.
/// (On a SQLite file the sender's claims are held in memory; nothing is claimed as written.)
#[tokio::test]
async fn status_callbacks_claimed_as_they_are_written_go_only_to_their_holder_in_order() {
    use warbler::store::webhooks::CallbackBirthClaim;
    use warbler::store::webhooks::Settlement;
    let server = spawn().await;
    let store = &server.app.store;
    if store.backend() != warbler::store::Backend::Postgres {
        return;
    }
    let now = now_micros();
    let lease = 2 * SECOND;
    let birth = CallbackBirthClaim {
        token: 0xca11_u64 as i64,
        lease,
        now,
    };
    let sid = |i: u64| format!("SM{:032x}", 0xcb_0000_u64 + i);
    let batch: Vec<_> = (1..=3)
        .map(|i| {
            let mut message = queued_message(sid(i), common::MAIN_SID, "callbacks", now);
            message.status_callback = Some("http://127.0.0.1:9/status".into());
            (message, Vec::new())
        })
        .collect();
    let mut session = store.write_session().await.unwrap();
    let (_, durable) = session
        .insert_new_messages(&batch, &[0; 3], &[], now, None)
        .await
        .unwrap();
    durable.wait().await.unwrap();
    drop(session);
    let claim = store.claim_due(now, lease, 10).await.unwrap();
    assert_eq!(claim.messages.len(), 3);
    let carrier_id = |sid: &str| format!("CB-{sid}");
    let outcomes: Vec<_> = claim
        .messages
        .into_iter()
        .map(|c| {
            let carrier_message_id = carrier_id(&c.message.sid);
            (
                c.message,
                Outcome::Sent {
                    from: "+14155550100".into(),
                    route: "simulated".into(),
                    carrier_message_id,
                    cost: Some(7_900),
                    category: "sms-outbound-longcode".into(),
                    at: now,
                },
            )
        })
        .collect();
    let recorded = store
        .record_outcomes(
            &outcomes,
            &[],
            &Default::default(),
            now,
            claim.token,
            Some(birth),
        )
        .await
        .unwrap();
    let id_of = |callbacks: &[warbler::store::webhooks::Webhook], message: &str| {
        callbacks
            .iter()
            .find(|w| w.message_sid == message)
            .map(|w| w.id.clone())
            .unwrap()
    };
    assert_eq!(
        recorded.callbacks.len(),
        3,
        "each `sent` is its message's head"
    );
    assert!(recorded
        .callbacks
        .iter()
        .all(|w| w.message_status.as_deref() == Some("sent") && w.attempts == 0));
    assert!(
        store
            .claim_webhooks(now, lease, 10)
            .await
            .unwrap()
            .webhooks
            .is_empty(),
        "claimed as written: out of the database's claims"
    );

    // Message 1's `sent` went out; message 2's is still in flight when both are delivered.
    let done = |id: String| Settlement::done(id);
    store
        .settle_webhooks(
            &[done(id_of(&recorded.callbacks, &sid(1)))],
            birth.token,
            now,
        )
        .await
        .unwrap();
    let receipt = |i: u64| warbler::store::rows::Receipt {
        id: format!("R{i}"),
        carrier_message_id: carrier_id(&sid(i)),
        status: MessageStatus::Delivered,
        error_code: None,
        done_date: None,
        due_at: now,
    };
    store
        .insert_receipts(&[receipt(1), receipt(2)])
        .await
        .unwrap();
    let applied = store
        .apply_due_receipts(now, 10, Some(birth))
        .await
        .unwrap();
    assert_eq!(applied.changes.len(), 2);
    assert_eq!(
        applied
            .callbacks
            .iter()
            .map(|w| w.message_sid.as_str())
            .collect::<Vec<_>>(),
        [sid(1).as_str()],
        "message 2's `delivered` waits behind its `sent`"
    );
    assert!(store
        .claim_webhooks(now, lease, 10)
        .await
        .unwrap()
        .webhooks
        .is_empty());
    store
        .settle_webhooks(
            &[done(id_of(&recorded.callbacks, &sid(2)))],
            birth.token,
            now,
        )
        .await
        .unwrap();
    let next = store.claim_webhooks(now, lease, 10).await.unwrap();
    assert_eq!(
        next.webhooks
            .iter()
            .map(|w| (w.message_sid.as_str(), w.message_status.as_deref()))
            .collect::<Vec<_>>(),
        [(sid(2).as_str(), Some("delivered"))],
        "due once its head is gone, not when the head's lease would have ended"
    );
    store
        .settle_webhooks(&[done(next.webhooks[0].id.clone())], next.token, now)
        .await
        .unwrap();

    // Released (its sender stopped): claimed at once.
    let third = id_of(&recorded.callbacks, &sid(3));
    assert_eq!(
        store
            .release_webhook_claims(birth.token, &[third.as_str()], now)
            .await
            .unwrap(),
        1
    );
    let released = store.claim_webhooks(now, lease, 10).await.unwrap();
    assert_eq!(released.webhooks.len(), 1);
    assert_eq!(released.webhooks[0].id, third);
    assert_eq!(released.taken_over, 0);
    store
        .settle_webhooks(&[done(third)], released.token, now)
        .await
        .unwrap();

    // Message 1's `delivered` was claimed as written and its node died: once the lease ends,
    // a claim takes it over, and the dead node's settlement writes nothing.
    assert_eq!(store.pending_webhooks().await.unwrap(), 1);
    let later = now + lease + SECOND;
    let taken = store.claim_webhooks(later, lease, 10).await.unwrap();
    assert_eq!(taken.webhooks.len(), 1);
    assert_eq!(taken.webhooks[0].id, applied.callbacks[0].id);
    assert_eq!(taken.taken_over, 1, "the lapsed claim is counted");
    store
        .settle_webhooks(&[done(taken.webhooks[0].id.clone())], birth.token, later)
        .await
        .unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 1, "fenced off");
    store
        .settle_webhooks(&[done(taken.webhooks[0].id.clone())], taken.token, later)
        .await
        .unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 0);
}
