//! Reading a shop's event log: the bus's cursors and the event stream.

use kith_domain::model::Event;

use crate::Result;
use crate::ports::{Storage, StorageExt};

/// Positions and pages of a shop's event log.
pub trait EventService: Storage {
    /// The shop's own position of its last event at or before the global sequence number
    /// `seq` (a plugin's cursor, a dead letter's bounds), as the API shows positions; 0 before any.
    fn shop_position(&self, shop_id: i64, seq: i64) -> Result<i64> {
        self.read(|tx| tx.events().position_at(shop_id, seq))
    }

    /// How many of a shop's events come after the global sequence number `seq`.
    fn events_past(&self, shop_id: i64, seq: i64) -> Result<i64> {
        self.read(|tx| {
            let last = tx.events().last_position(shop_id)?;
            let at = tx.events().position_at(shop_id, seq)?;
            Ok(last - at)
        })
    }

    /// The sequence number of a shop's newest event; 0 without events.
    fn event_head(&self, shop_id: i64) -> Result<i64> {
        self.read(|tx| tx.events().head(shop_id))
    }

    /// A shop's events past the shop's position `after`, oldest first. Each event's
    /// `seq` is its position in the shop's own log (1, 2, 3 …), never the global
    /// sequence number, which would tell how many events other shops wrote.
    fn events_after(&self, shop_id: i64, after: i64, limit: usize) -> Result<Vec<Event>> {
        self.read(|tx| tx.events().after(shop_id, after, limit))
    }
}

impl<S: Storage + ?Sized> EventService for S {}
