//! Several kernel processes on one database: each bus holds a plugin's deliveries in a shop
//! by a lease in the database as well as in its own process, so that no two of them call
//! the plugin on the same batch. The database is one SQLite file that two buses share
//! through a backend saying it is shared, as PostgreSQL does; the leases' own contract is
//! the conformance suite's, on both backends.

use kith_core::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use chrono::Utc;
use kith_bus::{Bus, BusConfig, EnableRequest, Package, SystemClock};
use kith_core::ports::{ReadTx, WriteTx};
use kith_core::{Actor, Backend, Storage};
use kith_domain::model::NewShop;
use kith_host::{Host, HostConfig};
use kith_sqlite::Store;
use kith_test_plugins as plugins;
use serde_json::json;

fn host() -> Arc<Host> {
    static HOST: OnceLock<Arc<Host>> = OnceLock::new();
    HOST.get_or_init(|| Arc::new(Host::new(HostConfig::default()).unwrap())).clone()
}

fn actor() -> Actor {
    Actor::cli("test")
}

/// A SQLite store that says other processes share it, and counts the writes refused as
/// conflicts: a delivery committed on a batch another node committed first (its plugin was
/// called on that batch twice).
#[derive(Debug)]
struct Shared(Arc<Store>, AtomicUsize);

impl Storage for Shared {
    fn run_read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> kith_core::Result<()>) -> kith_core::Result<()> {
        self.0.run_read(f)
    }

    fn run_write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> kith_core::Result<()>) -> kith_core::Result<()> {
        let written = self.0.run_write(f);
        if matches!(written, Err(kith_core::Error::Conflict(_))) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    fn storage(&self) -> &dyn Storage {
        self
    }
}

impl Backend for Shared {
    fn health(&self) -> kith_core::Result<()> {
        self.0.health()
    }

    fn schema_version(&self) -> usize {
        self.0.schema_version()
    }

    fn read_concurrency(&self) -> usize {
        self.0.read_concurrency()
    }

    fn shared(&self) -> bool {
        true
    }
}

struct Nodes {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    shared: Arc<Shared>,
    /// Two kernels' buses on the one database.
    a: Arc<Bus>,
    b: Arc<Bus>,
    shop: i64,
}

/// Two buses on one shared database, vip-tag enabled in a shop and one order waiting for it.
fn nodes() -> Nodes {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
    let shared = Arc::new(Shared(store.clone(), AtomicUsize::new(0)));
    let new = NewShop { name: "A".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = store.create_shop(&new, &actor()).unwrap().id;
    let bus = || Bus::new(shared.clone() as Arc<dyn Backend>, host(), Arc::new(SystemClock), BusConfig::default());
    let (a, b) = (bus(), bus());
    let package = Package::from_tar_gz(&plugins::VIP_TAG.tar_gz()).unwrap();
    a.install(&package, &actor()).unwrap();
    a.enable(shop, "vip-tag", &EnableRequest { config: Some(json!({"threshold": 10_000})), ..Default::default() }, &actor()).unwrap();
    let order = json!({"id": "o1", "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
        "order": {"id": "o1", "amount": 20_000}});
    assert_eq!(store.ingest(shop, vec![order], &actor()).unwrap().accepted, 1);
    Nodes { _dir: dir, store, shared, a, b, shop }
}

impl Nodes {
    /// (calls of vip-tag, its lag) in the shop.
    fn calls_and_lag(&self) -> (i64, i64) {
        let status = self.a.status(self.shop, "vip-tag").unwrap();
        (status.calls.calls, status.lag)
    }
}

#[test]
fn two_nodes_draining_at_once_call_a_plugin_once_per_batch() {
    let n = nodes();
    assert_ne!(n.a.node(), n.b.node(), "each bus is a node of its own");
    let barrier = Arc::new(Barrier::new(2));
    let drains: Vec<_> = [n.a.clone(), n.b.clone()]
        .into_iter()
        .map(|bus| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                bus.drain().unwrap()
            })
        })
        .collect();
    for drain in drains {
        drain.join().unwrap();
    }
    assert_eq!(n.calls_and_lag(), (1, 0), "one call for the one batch, whichever node made it");
    assert_eq!(n.shared.1.load(Ordering::Relaxed), 0, "no node called the plugin on a batch the other committed");
    // Released when the delivery ended: free for anyone.
    assert!(n.store.take_lease(n.shop, "delivery:vip-tag", "someone", Utc::now() + chrono::Duration::seconds(60), Utc::now()).unwrap());
}

#[test]
fn a_node_leaves_a_plugin_another_node_holds_until_its_lease_ends() {
    let n = nodes();
    let now = Utc::now();
    // Another node holds the deliveries; this one passes them over, and its run of the rest goes on.
    assert!(n.store.take_lease(n.shop, "delivery:vip-tag", "other-node", now + chrono::Duration::seconds(60), now).unwrap());
    n.b.drain().unwrap();
    let (calls, lag) = n.calls_and_lag();
    assert!(calls == 0 && lag > 0, "held elsewhere: not called ({calls} calls, lag {lag})");
    // A lease on other work is no obstacle to the deliveries.
    n.store.release_lease(n.shop, "delivery:vip-tag", "other-node").unwrap();
    assert!(n.store.take_lease(n.shop, "run:vip-tag", "other-node", now + chrono::Duration::seconds(60), now).unwrap());
    n.b.drain().unwrap();
    assert_eq!(n.calls_and_lag(), (1, 0), "released: delivered");

    // A node killed while it held the deliveries: its lease runs out by itself.
    let order = json!({"id": "o2", "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000002"}],
        "order": {"id": "o2", "amount": 20_000}});
    assert_eq!(n.store.ingest(n.shop, vec![order], &actor()).unwrap().accepted, 1);
    let now = Utc::now();
    assert!(n.store.take_lease(n.shop, "delivery:vip-tag", "killed-node", now + chrono::Duration::milliseconds(300), now).unwrap());
    n.a.drain().unwrap();
    let (calls, lag) = n.calls_and_lag();
    assert!(calls == 1 && lag > 0, "still held by the killed node ({calls} calls, lag {lag})");
    std::thread::sleep(Duration::from_millis(350));
    n.a.drain().unwrap();
    assert_eq!(n.calls_and_lag(), (2, 0), "its lease ran out: delivered");
}

#[test]
fn a_database_of_one_process_takes_no_leases() {
    let n = nodes();
    let now = Utc::now();
    assert!(n.store.take_lease(n.shop, "delivery:vip-tag", "other-node", now + chrono::Duration::seconds(60), now).unwrap());
    // The same file as a database no other process uses: the bus claims within its process only.
    let alone = Bus::new(n.store.clone(), host(), Arc::new(SystemClock), BusConfig::default());
    alone.drain().unwrap();
    assert_eq!(n.calls_and_lag(), (1, 0));
}
