//! One SQLite connection inside a transaction, as the core's transaction handle: the ports
//! (`ports/`) implement the core's repositories on it. A leaf, so that the store's modules
//! that call the core name it without importing the ports, which import them.

use rusqlite::Connection;

/// One connection, inside a transaction.
pub(crate) struct Sql<'c>(pub &'c Connection);
