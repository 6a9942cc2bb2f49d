//! The leases' port (`kith_core::ports::Leases`), through the core's `LeaseService`: a lease
//! is taken when free, refused while another holder's runs, extended by its holder, free
//! again when it runs out (to the millisecond) or is released by its holder, and kept per
//! shop and per work.

use chrono::{DateTime, Duration, Utc};
use kith_core::prelude::*;
use kith_core::{Error, Storage};

use crate::{Factory, day};

/// `ms` milliseconds after the start of the test clock.
fn at(ms: i64) -> DateTime<Utc> {
    day(0, 0) + Duration::milliseconds(ms)
}

/// Take `work` in `shop` for `holder` until `until` ms, at `now` ms.
fn take(s: &dyn Storage, shop: i64, work: &str, holder: &str, until: i64, now: i64) -> bool {
    s.take_lease(shop, work, holder, at(until), at(now)).expect("a lease is taken or refused")
}

/// One holder at a time: taken when free, refused while held, extended by its holder (the
/// new end counts, not the old), free again at its end to the millisecond or once its holder
/// releases it; another's release leaves it held, and a write rolled back takes nothing.
pub fn leases_are_held_by_one_holder_until_they_run_out_or_are_released(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let work = "delivery:vip-tag";

    assert!(take(s, shop, work, "node-a", 10_000, 0), "a free lease is taken");
    assert!(!take(s, shop, work, "node-b", 10_000, 1), "refused while another holds it");
    assert!(!take(s, shop, work, "node-b", 60_000, 9_999), "refused up to its last millisecond");
    assert!(take(s, shop, work, "node-a", 20_000, 5_000), "its holder extends it");
    assert!(!take(s, shop, work, "node-b", 30_000, 15_000), "extended: the new end counts, not the old");
    assert!(take(s, shop, work, "node-b", 30_000, 20_000), "run out at its end: free for another");
    assert!(!take(s, shop, work, "node-a", 40_000, 20_001), "the one who took it over holds it now");

    s.release_lease(shop, work, "node-a").unwrap();
    assert!(!take(s, shop, work, "node-c", 40_000, 20_002), "a release by one who does not hold it leaves it held");
    s.release_lease(shop, work, "node-b").unwrap();
    assert!(take(s, shop, work, "node-c", 40_000, 20_003), "released by its holder: free at once");
    s.release_lease(shop, "run:never-taken", "node-c").unwrap();

    // A holder extends a lease to an end before the old one: the one it gave counts.
    assert!(take(s, shop, work, "node-c", 25_000, 21_000));
    assert!(take(s, shop, work, "node-a", 50_000, 25_000), "shortened by its holder, run out at the shorter end");

    // A take in a write that is rolled back takes nothing.
    let rolled_back = s.write(|tx| {
        assert!(tx.leases().take(shop, "run:vip-tag", "node-b", at(90_000), at(30_000))?);
        Err::<(), _>(Error::Conflict("rolled back".into()))
    });
    assert!(matches!(rolled_back, Err(Error::Conflict(_))), "{rolled_back:?}");
    assert!(take(s, shop, "run:vip-tag", "node-c", 90_000, 30_001), "the rolled-back take left the work free");
}

/// Leases are per shop and per work: holding a plugin's deliveries in one shop is no
/// obstacle to its runs there, to another plugin's deliveries, or to the same work in
/// another shop; releasing one leaves the others held.
pub fn leases_are_kept_per_shop_and_per_work(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let (one, two) = (backend.create_shop("Tea House", "Asia/Shanghai"), backend.create_shop("Noodle Bar", "Europe/Berlin"));

    assert!(take(s, one, "delivery:vip-tag", "node-a", 60_000, 0));
    assert!(take(s, two, "delivery:vip-tag", "node-b", 60_000, 0), "the same work in another shop");
    assert!(take(s, one, "run:vip-tag", "node-b", 60_000, 0), "other work of the same plugin");
    assert!(take(s, one, "delivery:rfm", "node-b", 60_000, 0), "another plugin's deliveries");
    assert!(!take(s, one, "delivery:vip-tag", "node-b", 60_000, 1), "the first is still held");

    s.release_lease(one, "delivery:vip-tag", "node-a").unwrap();
    assert!(!take(s, two, "delivery:vip-tag", "node-a", 60_000, 2), "a release in one shop leaves the other shop's held");
    assert!(!take(s, one, "run:vip-tag", "node-a", 60_000, 2), "and the shop's other work");
    assert!(take(s, one, "delivery:vip-tag", "node-c", 60_000, 2), "the released one is free");
}

/// A segment's sweep is leased (`segment-sweep:<id>` in its shop): a segment another sweeper
/// holds is passed over, neither evaluated nor recorded as swept, and swept once it is
/// released; the sweep releases its own lease, and a segment swept is no longer due.
pub fn leases_hold_a_segments_sweep_for_one_sweeper(factory: &dyn Factory) {
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Tea House", "Asia/Shanghai");
    let paid = day(0, 0);
    let order = serde_json::json!({"id": "e-1", "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
        "order": {"id": "o-1", "amount": 5_000, "paid_at": paid.to_rfc3339()}});
    assert_eq!(backend.ingest(shop, vec![order], paid).accepted, 1);
    let recent = backend.create_segment(shop, "bought in 30 days", serde_json::json!({"purchase": {}, "window": {"last_days": 30}}), paid);
    s.refresh_segments(100, paid).unwrap();
    assert_eq!(s.get_segment(shop, recent, None).unwrap().members, 1);
    let exits = |s: &dyn Storage| s.events_after(shop, 0, 1_000).unwrap().into_iter().filter(|e| e.kind == "segment.exited").count();

    // 40 days on, the buyer leaves the segment at its next sweep; another sweeper holds it.
    let later = day(40, 0);
    let work = format!("segment-sweep:{recent}");
    // Sweeps lease on real time (every node's), not the test clock.
    let real = chrono::Utc::now();
    assert!(s.take_lease(shop, &work, "other-sweeper", real + Duration::hours(1), real).unwrap());
    assert_eq!(s.sweep_segments(Duration::hours(1), 20, later).unwrap(), 0, "held by another sweeper: passed over");
    assert_eq!((s.get_segment(shop, recent, None).unwrap().members, exits(s)), (1, 0));

    s.release_lease(shop, &work, "other-sweeper").unwrap();
    assert_eq!(s.sweep_segments(Duration::hours(1), 20, later).unwrap(), 1, "released: swept");
    assert_eq!((s.get_segment(shop, recent, None).unwrap().members, exits(s)), (0, 1));
    assert_eq!(s.sweep_segments(Duration::hours(1), 20, later).unwrap(), 0, "swept: no longer due");
    let real = chrono::Utc::now();
    assert!(s.take_lease(shop, &work, "someone", real + Duration::hours(1), real).unwrap(), "the sweep released its lease");
}
