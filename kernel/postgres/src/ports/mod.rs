//! The core's storage ports on PostgreSQL: [`Pg`] answers every repository of the
//! core's transaction handles over one transaction, a file per feature as in
//! kith-sqlite.

use kith_core::ports::{ReadTx, WriteTx};

pub(crate) use crate::pg::{CoreResult, Pg};

mod audit;
mod basics;
mod console;
mod coupons;
mod customers;
mod events;
mod ingest;
mod journeys;
mod keys;
mod leases;
mod ledger;
mod merge;
mod metrics;
mod outbox;
mod plugins;
mod segments;
mod settings;
mod shops;
mod tags;

macro_rules! accessors {
    ($($name:ident: $port:ident),* $(,)?) => {
        $(fn $name(&self) -> &dyn kith_core::ports::$port {
            self
        })*
    };
}

impl ReadTx for Pg<'_> {
    accessors! {
        customers: Customers,
        customer_views: CustomerViews,
        orders: Orders,
        identities: Identities,
        ingest: IngestRead,
        ledger: LedgerRead,
        outbox: OutboxRead,
        merges: MergeRead,
        settings: Settings,
        coupons: CouponsRead,
        rewards: RewardsRead,
        tags: TagsRead,
        plugins: PluginsRead,
        segments: SegmentsRead,
        journeys: JourneysRead,
        shops: ShopsRead,
        metrics: MetricsRead,
        summaries: SummariesRead,
        keys: KeysRead,
        audit_log: AuditRead,
        events: EventsRead,
        console: ConsoleRead,
    }
}

impl WriteTx for Pg<'_> {
    accessors! {
        event_log: EventLog,
        ingest_writer: IngestWrite,
        savepoints: Savepoints,
        ledger_writer: LedgerWrite,
        outbox_writer: OutboxWrite,
        merge_writer: MergeWrite,
        audit: Audit,
        coupons_writer: CouponsWrite,
        rewards_writer: RewardsWrite,
        tags_writer: TagsWrite,
        customers_writer: CustomersWrite,
        plugins_writer: PluginsWrite,
        scores_writer: ScoresWrite,
        tiers_writer: TiersWrite,
        segment_marks: SegmentMarks,
        segments_writer: SegmentsWrite,
        journeys_writer: JourneysWrite,
        shops_writer: ShopsWrite,
        keys_writer: KeysWrite,
        settings_writer: SettingsWrite,
        leases: Leases,
        console_writer: ConsoleWrite,
    }
}
