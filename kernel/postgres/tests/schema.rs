//! The PostgreSQL schema as Citus needs it, migrations applied once by nodes starting
//! together, and the event log's positions gap-safe under writers on several nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use kith_core::prelude::*;
use kith_core::{Actor, StorageExt};
use kith_domain::model::NewShop;
use kith_postgres::cluster::Cluster;
use kith_postgres::{PgOptions, Postgres};
use serde_json::json;

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start().expect("a throwaway PostgreSQL starts"))
}

/// The tables that are no one shop's: Citus keeps them as reference tables. Console users
/// and sessions are found by login and token across shops, as keys are.
const GLOBAL: [&str; 8] = ["shops", "api_keys", "audit_log", "plugins", "plugin_blobs", "kith_schema", "console_users", "console_sessions"];

/// Rows of a catalog query, as text.
fn rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let mut out = Vec::new();
        for message in client.simple_query(sql).await.unwrap() {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                out.push((0..row.len()).map(|i| row.get(i).unwrap_or("").to_owned()).collect());
            }
        }
        out
    })
}

#[test]
fn every_tenant_table_leads_its_keys_with_shop_id() {
    let url = cluster().migrated_database("citus_keys").unwrap();
    let faults = distribution_faults(&url);
    assert!(faults.is_empty(), "not ready for distribution by shop:\n{}", faults.join("\n"));
}

#[test]
fn the_key_check_finds_a_tenant_table_keyed_without_its_shop() {
    let url = cluster().migrated_database("citus_bad_keys").unwrap();
    rows(
        &url,
        "CREATE TABLE notes (shop_id BIGINT NOT NULL, id BIGINT PRIMARY KEY, body TEXT, UNIQUE (body));
         CREATE TABLE replies (shop_id BIGINT NOT NULL, note_id BIGINT REFERENCES notes (id), PRIMARY KEY (shop_id, note_id))",
    );
    let faults = distribution_faults(&url);
    assert!(faults.iter().any(|f| f.starts_with("notes: key notes_pkey (id)")), "{faults:?}");
    assert!(faults.iter().any(|f| f.starts_with("notes: key notes_body_key (body)")), "{faults:?}");
    assert!(faults.iter().any(|f| f.starts_with("replies: foreign key replies_note_id_fkey (note_id) to notes")), "{faults:?}");
    assert_eq!(faults.len(), 3, "{faults:?}");
}

/// What keeps a database's schema from being distributed by shop.
fn distribution_faults(url: &str) -> Vec<String> {
    let tables: BTreeSet<String> = rows(url, "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(tables.len() > 40, "the schema was read: {tables:?}");
    for global in GLOBAL {
        assert!(tables.contains(global), "{global} is a table");
    }
    // Every key (primary, unique constraint or unique index): its table and columns in order.
    let keys = rows(
        url,
        "SELECT c.relname, ic.relname, i.indisprimary::text,
                array_to_string(ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                                      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n), ',')
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
         WHERE c.relnamespace = 'public'::regnamespace AND i.indisunique",
    );
    let mut primary = BTreeSet::new();
    let mut faults = Vec::new();
    for key in &keys {
        let (table, index, is_primary, columns) = (&key[0], &key[1], key[2] == "true", &key[3]);
        if is_primary {
            primary.insert(table.clone());
        }
        if !GLOBAL.contains(&table.as_str()) && columns.split(',').next() != Some("shop_id") {
            faults.push(format!("{table}: key {index} ({columns}) does not start with shop_id"));
        }
    }
    for table in &tables {
        if !primary.contains(table) {
            faults.push(format!("{table} has no primary key"));
        }
    }
    // A foreign key between two tenant tables carries shop_id, so that both rows sit on one node.
    let foreign = rows(
        url,
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, c.conname,
                array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) k(attnum)
                                      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), ',')
         FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace",
    );
    assert!(!foreign.is_empty(), "foreign keys were read");
    for key in &foreign {
        let (from, to, name, columns) = (&key[0], &key[1], &key[2], &key[3]);
        let tenant = |t: &str| !GLOBAL.contains(&t);
        if tenant(from) && tenant(to) && !columns.split(',').any(|c| c == "shop_id") {
            faults.push(format!("{from}: foreign key {name} ({columns}) to {to} lacks shop_id"));
        }
    }
    faults
}

#[test]
fn nodes_starting_together_apply_each_migration_once() {
    let url = cluster().create_database("together").unwrap();
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Postgres::open(&url, PgOptions { pool_size: 2, ..Default::default() }).map(drop))
        })
        .collect();
    for node in opened {
        node.join().unwrap().expect("every node opens the database");
    }
    let applied = rows(&url, "SELECT version FROM kith_schema ORDER BY version");
    let want: Vec<Vec<String>> = (1..=kith_postgres::schema_version()).map(|v| vec![v.to_string()]).collect();
    assert_eq!(applied, want);
}

#[test]
fn a_database_migrated_by_a_newer_kith_is_refused() {
    let url = cluster().migrated_database("newer").unwrap();
    let next = kith_postgres::schema_version() + 1;
    rows(&url, &format!("INSERT INTO kith_schema (version, applied_at) VALUES ({next}, 0)"));
    let err = Postgres::open(&url, PgOptions::default()).unwrap_err();
    assert!(err.to_string().contains(&format!("version {next}")), "{err}");
}

#[test]
fn an_unreachable_server_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = Postgres::open(&format!("postgres://kith@127.0.0.1:{port}/none"), PgOptions::default()).unwrap_err();
    assert_eq!(err.unavailable(), Some(kith_core::Unavailable::Io), "{err}");
}

/// Writers on two nodes append to one shop's log while a reader follows it by position,
/// as a plugin's cursor does: the reader must see every event, each once, in position
/// order, with positions 1..=N and no gap it skipped over.
#[test]
fn a_reader_following_positions_misses_no_event_of_concurrent_writers() {
    let url = cluster().migrated_database("positions").unwrap();
    let nodes: Vec<Arc<Postgres>> =
        (0..2).map(|_| Arc::new(Postgres::open(&url, PgOptions { pool_size: 4, ..Default::default() }).unwrap())).collect();
    let new = NewShop { name: "gaps".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = nodes[0].create_shop(&new, &Actor::cli("test")).unwrap().id;
    const WRITERS: usize = 4;
    const EACH: usize = 60;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let node = nodes[1].clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = node.read(|tx| tx.events().after(shop, cursor, 7)).unwrap();
                for event in &batch {
                    let payload = event.payload.value();
                    seen.push((event.seq, payload["writer"].as_u64().unwrap(), payload["n"].as_u64().unwrap()));
                    cursor = event.seq;
                }
                if batch.is_empty() && finished {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let node = nodes[w % 2].clone();
            std::thread::spawn(move || {
                for n in 0..EACH {
                    let payload = json!({ "writer": w, "n": n });
                    node.write(|tx| tx.event_log().append(shop, "test.written", None, &payload, Utc::now(), None)).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let positions: Vec<i64> = seen.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(positions, (1..=(WRITERS * EACH) as i64).collect::<Vec<_>>(), "positions as the reader met them");
    let mut per_writer: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (_, w, n) in &seen {
        per_writer.entry(*w).or_default().push(*n);
    }
    for (w, ns) in per_writer {
        assert_eq!(ns, (0..EACH as u64).collect::<Vec<_>>(), "writer {w}'s events, in its order");
    }
}
