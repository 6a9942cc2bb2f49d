//! Ranks in the segment language (`{"score": m, "top_percent": N}`, `bottom_percent`)
//! against a plain evaluation in the test over generated scores with many ties, and
//! tracked membership when other customers' scores move a rank's threshold: the scores
//! are written as a plugin's run writes them, and the next sweep brings the members
//! (and their entry and exit events, reason `ranking`) in line.

use kith_core::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use kith_core::Actor;
use kith_core::delivery::{Attempt, Effects, PluginRunStep};
use kith_core::plugins::PutSubscription;
use kith_core::segments::Audience;
use kith_domain::model::NewShop;
use kith_domain::plugin::{Decision, Grant, Manifest};
use kith_domain::segments::SegmentInput;
use kith_sqlite::{Store, StoreOptions};
use serde_json::{Value, json};

const MODEL: &str = "ranker.clv";
const CUSTOMERS: usize = 70;
/// Values whose 7th lowest differs from the 6th: the bottom 10 % then moves when 15 more are scored.
const SEED: u64 = 3;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-15T04:00:00Z").unwrap().with_timezone(&Utc)
}

struct Shop {
    store: Store,
    shop_id: i64,
    /// Customer ids in creation order.
    ids: Vec<i64>,
    dir: tempfile::TempDir,
}

fn shop() -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    let cli = Actor::cli("test");
    let shop = NewShop { name: "Ranks".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop_id = store.create_shop(&shop, &cli).unwrap().id;
    let events: Vec<Value> = (0..CUSTOMERS)
        .map(|i| {
            json!({"id": format!("c{i}"), "type": "customer.upsert", "identities": [{"kind": "external:erp", "value": format!("k{i}")}],
                   "profile": {"name": format!("customer {i}")}})
        })
        .collect();
    let report = store.ingest(shop_id, events, &cli).unwrap();
    assert_eq!(report.rejected, 0);
    let mut ids: Vec<i64> = store.list_customers(shop_id, &Default::default(), 0, 1000).unwrap().into_iter().map(|c| c.id).collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), CUSTOMERS);
    let manifest = Manifest::parse(
        r#"id = "ranker"
version = "1.0.0"
kind = "scoring-model"
api-version = "0.2.0"
description = "Scores for the rank tests"
vendor = "Kith tests"
capabilities = ["customers:read", "scores:write"]
"#,
    )
    .unwrap();
    store.install_plugin(&manifest, b"\0asm", "ranker-test-blob", &cli).unwrap();
    let put = PutSubscription {
        plugin_id: "ranker",
        version_req: "1.0.0",
        version: "1.0.0",
        config: &json!({}),
        grant: &Grant::all_requested(&manifest),
        run_every_hours: None,
        channel: None,
    };
    store.put_subscription(shop_id, &put, &cli).unwrap();
    Shop { store, shop_id, ids, dir }
}

/// The plugin's decisions setting each customer's score of [`MODEL`].
fn set_scores(values: &BTreeMap<i64, f64>, explanation: &str) -> Vec<Decision> {
    values
        .iter()
        .map(|(id, value)| Decision::SetScore {
            customer_id: *id,
            model: MODEL.into(),
            value: *value,
            label: None,
            explanation: explanation.into(),
        })
        .collect()
}

impl Shop {
    /// Write scores as a delivery of the plugin writes them (a finished run would also remove
    /// the scores it did not write again).
    fn score(&self, values: &BTreeMap<i64, f64>, at: DateTime<Utc>) {
        let decisions = set_scores(values, "generated");
        let attempt = Attempt { shop_id: self.shop_id, plugin_id: "ranker", logs: &[], duration: StdDuration::ZERO, now: at };
        let cursor = self.store.subscription(self.shop_id, "ranker").unwrap().cursor;
        self.store.commit_delivery(&attempt, cursor, cursor, &Effects { decisions: &decisions, kv_writes: &[], chain: None }).unwrap();
    }

    fn members(&self, definition: Value) -> BTreeSet<i64> {
        let (_, count, page) =
            self.store.audience_page(self.shop_id, &Audience::Definition(definition.clone()), 0, 1000, true, now()).unwrap();
        assert_eq!(count, Some(page.len() as i64), "{definition}: count and page agree");
        page.into_iter().map(|c| c.id).collect()
    }

    /// Tracked membership, behind entry and exit events (no API lists it, only its size).
    fn tracked(&self, segment: i64) -> BTreeSet<i64> {
        let conn = rusqlite::Connection::open(self.dir.path().join("kith.db")).unwrap();
        let mut stmt = conn.prepare("SELECT customer_id FROM segment_members WHERE segment_id = ?1").unwrap();
        stmt.query_map([segment], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    /// (customer, reason) of the segment's entry or exit events after sequence `after`.
    fn moves(&self, kind: &str, segment: i64, after: i64) -> Vec<(i64, String)> {
        self.store
            .events_after(self.shop_id, after, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind && e.payload.value()["segment_id"] == json!(segment))
            .map(|e| (e.customer_id.unwrap(), e.payload.value()["reason"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// The plain reading of a rank: of the n customers holding a score, the ⌈n·N/100⌉-th
/// highest (lowest) value is the threshold, and everyone at or beyond it is in.
fn expected(values: &BTreeMap<i64, f64>, percent: u32, top: bool) -> BTreeSet<i64> {
    let mut sorted: Vec<f64> = values.values().copied().collect();
    sorted.sort_by(|a, b| if top { b.total_cmp(a) } else { a.total_cmp(b) });
    let k = (sorted.len() * percent as usize).div_ceil(100);
    let threshold = sorted[k - 1];
    values.iter().filter(|(_, v)| if top { **v >= threshold } else { **v <= threshold }).map(|(id, _)| *id).collect()
}

/// Generated values with many ties (15 distinct values over 55 customers) and negatives.
fn generated(ids: &[i64], seed: u64) -> BTreeMap<i64, f64> {
    let mut x = seed;
    ids.iter()
        .take(55)
        .map(|id| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (*id, ((x >> 33) % 15) as f64 * 25.5 - 40.0)
        })
        .collect()
}

fn input(name: &str, definition: Value) -> SegmentInput {
    SegmentInput { name: name.into(), description: None, definition }
}

#[test]
fn ranks_select_what_a_plain_evaluation_selects() {
    let shop = shop();
    let values = generated(&shop.ids, 7);
    shop.score(&values, now());
    for percent in [1, 5, 10, 20, 33, 50, 99, 100] {
        for top in [true, false] {
            let key = if top { "top_percent" } else { "bottom_percent" };
            let want = expected(&values, percent, top);
            let got = shop.members(json!({"score": MODEL, key: percent}));
            assert_eq!(got, want, "{key} {percent}");
            assert!(want.len() * 100 >= values.len() * percent as usize, "{key} {percent}: ties make the share at least N %");
        }
    }
    // Everyone holding the score is in the top 100 %; nobody without it, in either rank.
    assert_eq!(shop.members(json!({"score": MODEL, "top_percent": 100})).len(), 55);
    assert!(shop.members(json!({"score": "ranker.other", "top_percent": 100})).is_empty(), "no customer holds that model");
    // In combinations, over the shop (sets, smallest first) and negated.
    let top20 = expected(&values, 20, true);
    let bottom30 = expected(&values, 30, false);
    let positive: BTreeSet<i64> = values.iter().filter(|(_, v)| **v > 100.0).map(|(id, _)| *id).collect();
    assert_eq!(
        shop.members(json!({"and": [{"score": MODEL, "op": "gt", "value": 100}, {"score": MODEL, "top_percent": 20}]})),
        &positive & &top20
    );
    assert_eq!(
        shop.members(json!({"or": [{"score": MODEL, "bottom_percent": 30}, {"score": MODEL, "top_percent": 20}]})),
        &bottom30 | &top20
    );
    let all: BTreeSet<i64> = shop.ids.iter().copied().collect();
    assert_eq!(shop.members(json!({"not": {"score": MODEL, "top_percent": 20}})), &all - &top20, "the unscored are not in the top");
}

#[test]
fn members_follow_when_other_customers_scores_move_the_threshold() {
    let shop = shop();
    let cli = Actor::cli("test");
    let values = generated(&shop.ids, SEED);
    shop.score(&values, now());
    let top = shop.store.create_segment(shop.shop_id, &input("top 20 %", json!({"score": MODEL, "top_percent": 20})), &cli, now()).unwrap();
    assert!(!top.depends_on_time);
    let via = shop.store.create_segment(shop.shop_id, &input("via", json!({"segment": top.id})), &cli, now()).unwrap();
    let bottom =
        shop.store.create_segment(shop.shop_id, &input("bottom 10 %", json!({"score": MODEL, "bottom_percent": 10})), &cli, now()).unwrap();
    assert_eq!(top.members as usize, expected(&values, 20, true).len());
    shop.store.sweep_segments(Duration::hours(1), 10, now()).unwrap();
    let seq = shop.store.events_after(shop.shop_id, 0, 100_000).unwrap().last().map_or(0, |e| e.seq);

    // The 15 customers never scored are scored above everyone: they take the top 20 %
    // and push out the former members, whose own scores did not change.
    let later = now() + Duration::minutes(5);
    let newcomers: BTreeMap<i64, f64> = shop.ids[55..].iter().map(|id| (*id, 1000.0)).collect();
    shop.score(&newcomers, later);
    let mut all = values.clone();
    all.extend(newcomers.clone());
    // The customers' own changes first, as the bus does, then the sweep of the marked segments.
    shop.store.refresh_segments(1000, later).unwrap();
    let swept = shop.store.sweep_segments(Duration::hours(1), 10, later).unwrap();
    assert_eq!(swept, 3, "the three ranking segments (one through a reference) are due at once, not in an hour");
    for (segment, want) in [(top.id, expected(&all, 20, true)), (via.id, expected(&all, 20, true)), (bottom.id, expected(&all, 10, false))]
    {
        let got = shop.store.get_segment(shop.shop_id, segment, None).unwrap();
        assert_eq!(got.members as usize, want.len(), "segment {}", got.name);
        assert_eq!(shop.tracked(segment), want);
    }
    let entered = shop.moves("segment.entered", top.id, seq);
    let exited = shop.moves("segment.exited", top.id, seq);
    let former = expected(&values, 20, true);
    let now_in = expected(&all, 20, true);
    assert_eq!(entered.iter().map(|(id, _)| *id).collect::<BTreeSet<_>>(), &now_in - &former);
    assert!(entered.iter().all(|(_, why)| why == "change"), "the newly scored entered on their own change: {entered:?}");
    assert_eq!(exited.iter().map(|(id, _)| *id).collect::<BTreeSet<_>>(), &former - &now_in);
    assert!(!exited.is_empty() && exited.iter().all(|(_, why)| why == "ranking"), "pushed out by others' scores: {exited:?}");
    // The bottom 10 % reaches one rank further (⌈70/10⌉ = 7 against ⌈55/10⌉ = 6): whoever that
    // brings in entered without a change of their own.
    let grown = &expected(&all, 10, false) - &expected(&values, 10, false);
    assert!(!grown.is_empty(), "the generated values put a new value at the 7th lowest");
    let bottom_entered = shop.moves("segment.entered", bottom.id, seq);
    assert_eq!(bottom_entered, grown.iter().map(|id| (*id, "ranking".to_owned())).collect::<Vec<_>>());

    // Swept: not due again until the hour has passed or scores of the model change.
    assert_eq!(shop.store.sweep_segments(Duration::hours(1), 10, later + Duration::minutes(1)).unwrap(), 0);
    let quiet = later + Duration::minutes(2);
    shop.score(&BTreeMap::from([(shop.ids[0], -1000.0)]), quiet);
    shop.store.refresh_segments(1000, quiet).unwrap();
    assert_eq!(shop.store.sweep_segments(Duration::hours(1), 10, quiet).unwrap(), 3, "after a quiet minute, at once");
    // Scores written again within the minute (a run's next batch): swept once the minute has passed.
    let busy = quiet + Duration::seconds(10);
    shop.score(&BTreeMap::from([(shop.ids[1], -2000.0)]), busy);
    shop.store.refresh_segments(1000, busy).unwrap();
    assert_eq!(shop.store.sweep_segments(Duration::hours(1), 10, busy).unwrap(), 0, "at most a sweep a minute");
    assert_eq!(shop.store.sweep_segments(Duration::hours(1), 10, quiet + Duration::seconds(61)).unwrap(), 3);
    all.insert(shop.ids[0], -1000.0);
    all.insert(shop.ids[1], -2000.0);
    assert_eq!(shop.tracked(bottom.id), expected(&all, 10, false));
    assert_eq!(shop.store.get_segment(shop.shop_id, bottom.id, None).unwrap().members as usize, expected(&all, 10, false).len());
}

/// A finished run has asked the plugin about every customer: the plugin's scores it did not
/// write again (nor a delivery since the run began) are removed, and the segments reading
/// them follow — a model that stopped scoring someone no longer keeps them in its segments.
#[test]
fn a_finished_run_removes_the_scores_it_did_not_write_again() {
    let shop = shop();
    let cli = Actor::cli("test");
    let values = generated(&shop.ids, SEED);
    shop.score(&values, now());
    let top = shop.store.create_segment(shop.shop_id, &input("top 20 %", json!({"score": MODEL, "top_percent": 20})), &cli, now()).unwrap();
    assert_eq!(shop.members(json!({"score": MODEL})).len(), values.len());

    let started = now() + Duration::minutes(10);
    let run = shop.store.start_run(shop.shop_id, "ranker", &cli, started).unwrap();
    // A delivery while the run goes on scores one customer the run will not.
    let late = shop.ids[60];
    shop.score(&BTreeMap::from([(late, 5000.0)]), started + Duration::seconds(5));
    // The run scores the first ten customers only, in one batch, and finishes.
    let kept: BTreeMap<i64, f64> = shop.ids[..10].iter().map(|id| (*id, values.get(id).copied().unwrap_or(1.0))).collect();
    let decisions = set_scores(&kept, "run");
    let attempt = Attempt {
        shop_id: shop.shop_id,
        plugin_id: "ranker",
        logs: &[],
        duration: StdDuration::ZERO,
        now: started + Duration::seconds(10),
    };
    let step = PluginRunStep { run_id: run.id, from: 0, to: i64::MAX, processed: CUSTOMERS as i64, finished: true };
    shop.store.commit_run_batch(&attempt, &step, &Effects { decisions: &decisions, kv_writes: &[], chain: None }).unwrap();

    let mut left: BTreeMap<i64, f64> = kept.clone();
    left.insert(late, 5000.0);
    assert_eq!(shop.members(json!({"score": MODEL})), left.keys().copied().collect::<BTreeSet<_>>());
    // Tracked membership and its events follow the removal.
    let at = started + Duration::minutes(2);
    shop.store.refresh_segments(1000, at).unwrap();
    shop.store.sweep_segments(Duration::hours(1), 10, at).unwrap();
    assert_eq!(shop.tracked(top.id), expected(&left, 20, true));
}
