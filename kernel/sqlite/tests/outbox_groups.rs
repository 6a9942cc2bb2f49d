//! The outbox claims a shop's channel at a time: which groups have messages due, in
//! which order, and which of a group's messages a claim takes, with another shop's
//! large backlog beside them.
//!
//! `outbox_backlog_timings` (ignored) measures both reads beside a campaign of 200,000
//! queued messages: `cargo test --release -p kith-sqlite --test outbox_groups -- --nocapture --ignored`.

use kith_core::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kith_core::Actor;
use kith_core::outbox::OutboxPolicy;
use kith_domain::messaging::MessageStatus;
use kith_domain::model::NewShop;
use kith_sqlite::{Store, StoreOptions};
use rusqlite::{Connection, params};
use serde_json::json;

/// A shop and one customer of it (with no email or phone: whatever a claim judges of
/// theirs is suppressed, which shows which messages the claim took).
fn shop_and_customer(store: &Store, name: &str) -> (i64, i64) {
    let cli = Actor::cli("test");
    let shop = NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = store.create_shop(&shop, &cli).unwrap().id;
    let event = json!({"id": "c", "type": "customer.upsert", "identities": [{"kind": "nick", "value": format!("{name}-1")}]});
    let customer = store.ingest(shop, vec![event], &cli).unwrap().outcomes[0].customer_id.unwrap();
    (shop, customer)
}

/// Writes message rows directly: 200,000 through the store's API would take minutes.
struct Rows {
    conn: Connection,
}

impl Rows {
    fn open(path: &Path) -> Rows {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        Rows { conn }
    }

    /// `count` messages of the shop's channel, the n-th (from 0) queued or sending (`due`
    /// being its `next_attempt_at` or `lease_until`) at `first + n * step` ms. Their ids
    /// follow the insertion order.
    #[allow(clippy::too_many_arguments)]
    fn insert(&self, tag: &str, (shop, customer): (i64, i64), channel: &str, status: &str, count: i64, first: i64, step: i64) {
        let (next, lease) = if status == "queued" { ("?6 + n * ?7", "NULL") } else { ("NULL", "?6 + n * ?7") };
        let inserted = self
            .conn
            .execute(
                &format!(
                    "WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < ?5)
                     INSERT INTO messages (public_id, shop_id, customer_id, channel, template, variables, status, next_attempt_at,
                                           lease_until, source, idempotency_key, created_at, updated_at)
                     SELECT ?1 || '-' || n, ?2, ?3, ?4, 'T1', '{{}}', ?8, {next}, {lease}, 'test', ?1 || '-' || n, ?6, ?6 FROM k"
                ),
                params![tag, shop, customer, channel, count, first, step, status],
            )
            .unwrap();
        assert_eq!(inserted as i64, count);
    }

    /// The public ids of the shop's messages in `status`, in id order.
    fn with_status(&self, shop: i64, status: MessageStatus) -> Vec<String> {
        self.conn
            .prepare("SELECT public_id FROM messages WHERE shop_id = ?1 AND status = ?2 ORDER BY id")
            .unwrap()
            .query_map(params![shop, status.as_str()], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Groups come oldest due first (a queued message's time, or an expired lease's), then by
/// shop and channel; a group whose messages are all held for later, or whose leases still
/// run, is not listed. A claim takes the group's due messages only, expired leases first,
/// then queued ones in the order they fell due, and no more than asked.
#[test]
fn groups_come_oldest_due_first_and_a_claim_takes_its_groups_due_messages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let (a, b, c) = (shop_and_customer(&store, "A"), shop_and_customer(&store, "B"), shop_and_customer(&store, "C"));
    let rows = Rows::open(&path);
    let now = Utc::now();
    let t = ms(now);
    // A: a large sms backlog due since an hour ago; its email held until tomorrow.
    rows.insert("a-sms", a, "sms", "queued", 500, t - 3_600_000, 1);
    rows.insert("a-email", a, "email", "queued", 3, t + 86_400_000, 1);
    // B: email due since two hours ago, behind one expired lease (older still) and one running.
    rows.insert("b-email", b, "email", "queued", 5, t - 7_200_000, 1000);
    rows.insert("b-email-lapsed", b, "email", "sending", 1, t - 7_300_000, 0);
    rows.insert("b-email-running", b, "email", "sending", 1, t + 60_000, 0);
    // B's sms: only a lease, expired half an hour ago. C's wechat and sms both due at the same
    // time as each other (ties go by shop, then channel), its push only at `now` exactly.
    rows.insert("b-sms", b, "sms", "sending", 1, t - 1_800_000, 0);
    rows.insert("c-wechat", c, "wechat", "queued", 2, t - 60_000, 0);
    rows.insert("c-sms", c, "sms", "queued", 2, t - 60_000, 0);
    rows.insert("c-push", c, "push", "queued", 1, t, 0);

    let groups: Vec<(i64, String)> = store.due_outbox_groups(now).unwrap().into_iter().map(|(s, ch, _)| (s, ch)).collect();
    let expected = [(b.0, "email"), (a.0, "sms"), (b.0, "sms"), (c.0, "sms"), (c.0, "wechat"), (c.0, "push")];
    assert_eq!(groups, expected.map(|(s, ch)| (s, ch.to_string())));
    // A millisecond earlier C's push is not due yet; nothing is due before the oldest.
    let earlier: Vec<(i64, String)> =
        store.due_outbox_groups(now - chrono::Duration::milliseconds(1)).unwrap().into_iter().map(|(s, ch, _)| (s, ch)).collect();
    assert_eq!(earlier, groups[..5].to_vec());
    assert!(store.due_outbox_groups(now - chrono::Duration::hours(3)).unwrap().is_empty());

    // The claim judges (here: suppresses, B's customer has no email) the lapsed lease, then the
    // two oldest queued messages; the running lease, B's sms and the other shops stay.
    let claimed = store.claim_messages(now, &OutboxPolicy::default(), (b.0, "email"), None, 3).unwrap();
    assert!(claimed.is_empty());
    assert_eq!(rows.with_status(b.0, MessageStatus::Suppressed), ["b-email-0", "b-email-1", "b-email-lapsed-0"]);
    assert_eq!(rows.with_status(b.0, MessageStatus::Queued), ["b-email-2", "b-email-3", "b-email-4"]);
    assert_eq!(rows.with_status(b.0, MessageStatus::Sending), ["b-email-running-0", "b-sms-0"]);
    assert!(rows.with_status(a.0, MessageStatus::Suppressed).is_empty());
    assert!(rows.with_status(c.0, MessageStatus::Suppressed).is_empty());
    // Nothing of a group is due before its oldest message.
    let early = store.claim_messages(now - chrono::Duration::hours(3), &OutboxPolicy::default(), (b.0, "email"), None, 20).unwrap();
    assert!(early.is_empty());
    assert_eq!(rows.with_status(b.0, MessageStatus::Queued).len(), 3);
    // C's sms alone, not its wechat due at the same time.
    store.claim_messages(now, &OutboxPolicy::default(), (c.0, "sms"), None, 20).unwrap();
    assert_eq!(rows.with_status(c.0, MessageStatus::Suppressed), ["c-sms-0", "c-sms-1"]);
}

/// The median of `runs` timings of `f`, after `reset` (untimed) before each.
fn median(runs: usize, mut reset: impl FnMut(), mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            reset();
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Shop A's campaign: 200,000 sms queued and due. Shop B: 5 emails due. How long the
/// outbox's two reads take for B beside it.
#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn outbox_backlog_timings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = Store::open(&path, StoreOptions::default()).unwrap();
    let (a, b) = (shop_and_customer(&store, "A"), shop_and_customer(&store, "B"));
    let rows = Rows::open(&path);
    let now = Utc::now();
    let t = ms(now);
    let started = Instant::now();
    rows.insert("a-sms", a, "sms", "queued", 200_000, t - 86_400_000, 1);
    rows.insert("b-email", b, "email", "queued", 5, t - 3_600_000, 1);
    println!("inserted 200,005 messages in {:?}", started.elapsed());

    let groups = store.due_outbox_groups(now).unwrap();
    assert_eq!(groups.iter().map(|(s, ch, _)| (*s, ch.as_str())).collect::<Vec<_>>(), [(a.0, "sms"), (b.0, "email")]);
    let groups_time = median(9, || {}, || assert_eq!(store.due_outbox_groups(now).unwrap().len(), 2));
    // B's emails queued and due again before each claim (a claim suppresses them: B's customer has no email).
    let requeue = || {
        rows.conn
            .execute(
                "UPDATE messages SET status = 'queued', reason = NULL, next_attempt_at = ?2 WHERE shop_id = ?1",
                params![b.0, t - 3_600_000],
            )
            .unwrap();
    };
    let claim_time = median(9, requeue, || {
        store.claim_messages(now, &OutboxPolicy::default(), (b.0, "email"), None, 20).unwrap();
        assert_eq!(rows.with_status(b.0, MessageStatus::Suppressed).len(), 5);
    });
    // With nothing of B's due: the look before taking the writer, alone.
    let empty_claim_time =
        median(9, || {}, || assert!(store.claim_messages(now, &OutboxPolicy::default(), (b.0, "email"), None, 20).unwrap().is_empty()));
    println!("due_outbox_groups: {groups_time:?} (median of 9)");
    println!("claim_messages (B, 5 due): {claim_time:?} (median of 9)");
    println!("claim_messages (B, none due): {empty_claim_time:?} (median of 9)");
}
