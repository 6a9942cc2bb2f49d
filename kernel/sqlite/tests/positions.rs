//! Each shop's event log is numbered on its own: what one shop reads tells nothing of another's volume.

use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::model::NewShop;
use kith_sqlite::{Store, StoreOptions};
use serde_json::json;

#[test]
fn each_shop_reads_its_own_positions_one_two_three() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    let cli = Actor::cli("test");
    let shop = |name: &str| {
        let new = NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
        store.create_shop(&new, &cli).unwrap().id
    };
    let (a, b) = (shop("A"), shop("B"));
    for i in 0..5 {
        for (s, n) in [(a, 1), (b, 3)] {
            let events = (0..n)
                .map(|j| json!({"id": format!("e{i}-{j}"), "type": "customer.upsert", "identities": [{"kind": "nick", "value": format!("c{i}-{j}")}]}))
                .collect();
            assert!(store.ingest(s, events, &cli).unwrap().accepted > 0);
        }
    }
    for s in [a, b] {
        let events = store.events_after(s, 0, 1000).unwrap();
        let positions: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(positions, (1..=events.len() as i64).collect::<Vec<_>>(), "shop {s}");
        // Paging by position resumes where the page ended.
        let rest = store.events_after(s, 2, 1000).unwrap();
        assert_eq!(rest.first().map(|e| e.seq), Some(3));
        assert_eq!(store.events_past(s, store.event_head(s).unwrap()).unwrap(), 0);
        assert_eq!(store.shop_position(s, store.event_head(s).unwrap()).unwrap(), events.len() as i64);
        // A customer's timeline shows the same positions.
        let customer = events[0].customer_id.unwrap();
        let kith_core::customers::CustomerRead::Found(detail) = store.get_customer(s, customer, 20).unwrap() else { panic!("merged") };
        assert!(detail.timeline.iter().all(|e| positions.contains(&e.seq) && e.seq <= events.len() as i64));
    }
}
