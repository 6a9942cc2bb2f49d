//! The core's services in one import, `use kith_core::prelude::*;`: every operation the
//! API, the bus and the binary call, as methods of any [`Storage`](crate::Storage).
//!
//! Each feature's service is an extension trait with a blanket implementation for every
//! backend: its methods hold the rules (validation, stamps, audit, events) and reach
//! storage through the ports in one transaction each.

pub use crate::ports::StorageExt;
pub use crate::shops::ShopService;
