//! One item of a pass in a savepoint, so that an item that fails is undone and the others go on.

use crate::Result;
use crate::ports::WriteTx;

/// Run `f` in a savepoint: its writes stay when it succeeds and are undone when it fails;
/// its result is handed back either way. The outer error is the savepoint's own, or `f`'s
/// when the machine failed or the backend lost the whole transaction (SQLite may roll it
/// all back on a full disk or an I/O error): a full disk is no fault of the journey, run
/// or segment `f` works on, so the whole transaction fails and is taken again later
/// instead of the item being failed, and nothing is written outside a transaction.
pub(crate) fn isolated<T>(tx: &dyn WriteTx, f: impl FnOnce() -> Result<T>) -> Result<Result<T>> {
    tx.savepoints().savepoint()?;
    match f() {
        Ok(out) => {
            tx.savepoints().release()?;
            Ok(Ok(out))
        }
        Err(err) if err.unavailable().is_some() || !tx.savepoints().active() => Err(err),
        Err(err) => {
            tx.savepoints().roll_back()?;
            Ok(Err(err))
        }
    }
}
