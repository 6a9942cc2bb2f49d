//! The core's services in one import, `use kith_core::prelude::*;`: every operation the
//! API, the bus and the binary call, as methods of any [`Storage`](crate::Storage).
//!
//! Each feature's service is an extension trait with a blanket implementation for every
//! backend: its methods hold the rules (validation, stamps, audit, events) and reach
//! storage through the ports in one transaction each.

pub use crate::audit::AuditService;
pub use crate::console::ConsoleService;
pub use crate::coupons::CouponService;
pub use crate::customers::CustomerService;
pub use crate::events::EventService;
pub use crate::ingest::IngestService;
pub use crate::journeys::JourneyService;
pub use crate::keys::KeyService;
pub use crate::leases::LeaseService;
pub use crate::loyalty::LoyaltyService;
pub use crate::merge::MergeService;
pub use crate::metrics::{MetricsService, SummariesService};
pub use crate::outbox::OutboxService;
pub use crate::plugins::PluginService;
pub use crate::ports::StorageExt;
pub use crate::segments::SegmentService;
pub use crate::settings::SettingsService;
pub use crate::shops::ShopService;
