//! The core's conformance suite on SQLite: every case on a new database file.

use kith_conformance::{Backend, Factory};
use kith_core::Storage;
use kith_sqlite::{Store, StoreOptions};

struct Sqlite;

struct SqliteBackend {
    store: Store,
    _dir: tempfile::TempDir,
}

impl Factory for Sqlite {
    fn fresh(&self) -> Box<dyn Backend> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
        Box::new(SqliteBackend { store, _dir: dir })
    }
}

impl Backend for SqliteBackend {
    fn storage(&self) -> &dyn Storage {
        &self.store
    }
}

kith_conformance::suite!(Sqlite);
