//! One node's trouble does not hold the others for long: a node frozen inside a write
//! transaction loses its session (and the write lock) after `idle_in_transaction`, and a
//! write that cannot get the lock within `lock_timeout` fails as unavailable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use chrono::Utc;
use kith_core::prelude::*;
use kith_core::{Actor, StorageExt, Unavailable};
use kith_domain::model::NewShop;
use kith_postgres::cluster::Cluster;
use kith_postgres::{PgOptions, Postgres};
use serde_json::json;

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start().expect("a throwaway PostgreSQL starts"))
}

fn node(url: &str, options: PgOptions) -> Arc<Postgres> {
    Arc::new(Postgres::open(url, PgOptions { pool_size: 2, ..options }).expect("the database opens"))
}

fn shop(node: &Postgres) -> i64 {
    let new = NewShop { name: "liveness".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    node.create_shop(&new, &Actor::cli("test")).unwrap().id
}

fn events(node: &Postgres, shop: i64) -> Vec<String> {
    node.read(|tx| tx.events().after(shop, 0, 100)).unwrap().into_iter().map(|e| e.kind).collect()
}

#[test]
fn a_node_frozen_inside_a_write_loses_the_write_lock_and_its_write() {
    let url = cluster().migrated_database("frozen").unwrap();
    let frozen = node(&url, PgOptions { idle_in_transaction: Duration::from_secs(1), ..Default::default() });
    let other = node(&url, PgOptions::default());
    let shop = shop(&other);
    let (locked, holding) = mpsc::channel();
    let thawed = Arc::new(AtomicBool::new(false));
    let stalled = {
        let thawed = thawed.clone();
        std::thread::spawn(move || {
            let result = frozen.write(|tx| {
                tx.event_log().append(shop, "test.frozen", None, &json!({}), Utc::now(), None)?;
                locked.send(()).unwrap();
                // The node stops answering with the write lock held (a pause, a swap storm).
                std::thread::sleep(Duration::from_secs(8));
                thawed.store(true, Ordering::SeqCst);
                Ok(())
            });
            (result, frozen)
        })
    };
    holding.recv().unwrap();
    other.write(|tx| tx.event_log().append(shop, "test.other", None, &json!({}), Utc::now(), None).map(drop)).unwrap();
    assert!(!thawed.load(Ordering::SeqCst), "the other node wrote while the frozen one still slept");
    let (result, frozen) = stalled.join().unwrap();
    let err = result.expect_err("the frozen node's session was ended");
    assert_eq!(err.unavailable(), Some(Unavailable::Io), "{err}");
    assert_eq!(events(&other, shop), ["test.other"], "the frozen node's write was rolled back whole");
    // The node's pool replaces the ended session: it writes again.
    frozen.write(|tx| tx.event_log().append(shop, "test.later", None, &json!({}), Utc::now(), None).map(drop)).unwrap();
    assert_eq!(events(&other, shop), ["test.other", "test.later"]);
}

#[test]
fn a_write_waiting_past_the_lock_timeout_is_unavailable_and_a_later_one_succeeds() {
    let url = cluster().migrated_database("lock_timeout").unwrap();
    let node = node(&url, PgOptions { lock_timeout: Duration::from_secs(1), ..Default::default() });
    let shop = shop(&node);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (client, connection) = runtime.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)).unwrap();
    runtime.spawn(connection);
    // Another process holds the kernel's write lock ("kith"), and keeps it.
    runtime.block_on(client.simple_query("SELECT pg_advisory_lock(x'6b697468'::BIGINT)")).unwrap();
    let err = node.write(|tx| tx.event_log().append(shop, "test.blocked", None, &json!({}), Utc::now(), None)).unwrap_err();
    assert_eq!(err.unavailable(), Some(Unavailable::Io), "{err}");
    runtime.block_on(client.simple_query("SELECT pg_advisory_unlock(x'6b697468'::BIGINT)")).unwrap();
    node.write(|tx| tx.event_log().append(shop, "test.after", None, &json!({}), Utc::now(), None).map(drop)).unwrap();
    assert_eq!(events(&node, shop), ["test.after"]);
}
