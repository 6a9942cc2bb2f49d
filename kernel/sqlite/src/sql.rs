//! One SQLite connection inside a transaction, as the core's transaction handle: the ports
//! (`ports/` and the feature modules) implement the core's repositories on it, and the
//! helpers below say their results as the core's. A leaf, so that the feature modules
//! name it without importing the ports, which import them.

use rusqlite::Connection;

/// One connection, inside a transaction.
pub(crate) struct Sql<'c>(pub &'c Connection);

/// The core's result, as the ports answer.
pub(crate) type CoreResult<T> = kith_core::Result<T>;

/// The store's result as the core's.
pub(crate) fn core<T>(out: crate::Result<T>) -> CoreResult<T> {
    out.map_err(kith_core::Error::from)
}

/// A rusqlite result as the core's.
pub(crate) fn sql<T>(out: rusqlite::Result<T>) -> CoreResult<T> {
    core(out.map_err(crate::StoreError::from))
}
