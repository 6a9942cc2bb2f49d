//! The core's conformance suite on PostgreSQL: one throwaway server for the whole
//! binary, every case on a new database copied from a migrated template.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use kith_conformance::{Backend, Factory};
use kith_core::Storage;
use kith_postgres::cluster::Cluster;
use kith_postgres::{PgOptions, Postgres};

struct Pg;

struct PgBackend {
    store: Postgres,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start().expect("a throwaway PostgreSQL starts"))
}

impl Factory for Pg {
    fn fresh(&self) -> Box<dyn Backend> {
        static CASES: AtomicUsize = AtomicUsize::new(0);
        let name = format!("case_{}", CASES.fetch_add(1, Ordering::Relaxed));
        let url = cluster().migrated_database(&name).expect("a database for the case");
        let store = Postgres::open(&url, PgOptions { pool_size: 4, ..Default::default() }).expect("the database opens");
        Box::new(PgBackend { store })
    }
}

impl Backend for PgBackend {
    fn storage(&self) -> &dyn Storage {
        &self.store
    }
}

kith_conformance::suite!(Pg);
