//! Applying ingest batches: the rules are the core's (`kith_core::ingest`: identity
//! resolution, profiles, orders, refunds and behaviours, each event all-or-nothing
//! inside the batch's one transaction, and `IngestService`, which callers use with the
//! caps of [`StoreOptions::identity_caps`](crate::StoreOptions)); the store runs them in
//! its transactions through the ports of `ports/ingest.rs`.
