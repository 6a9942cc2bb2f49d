//! What merchants read back through the core: segments as records (versions, the definition
//! in force at a time, listing, deletion, another shop's NotFound), audiences in pages,
//! snapshots that keep their members, daily counts as the test clock moves; and the
//! dashboards (`MetricsService`, `SummariesService`): the overview, cohorts, score
//! distributions and buyers' summaries against a plain computation from the orders the
//! case ingested.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use kith_core::delivery::{Attempt, Effects};
use kith_core::metrics::OverviewQuery;
use kith_core::prelude::*;
use kith_core::segments::Audience;
use kith_core::tags::{self, Removable, Source, TagRemoval, TagWrite};
use kith_core::{Actor, Error, Storage};
use kith_domain::model::OutcomeStatus;
use kith_domain::plugin::Decision;
use kith_domain::segments::SegmentInput;
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

fn cli() -> Actor {
    Actor::cli("conformance")
}

fn input(name: &str, definition: Value) -> SegmentInput {
    SegmentInput { name: name.into(), description: None, definition }
}

fn not_found<T: std::fmt::Debug>(r: kith_core::Result<T>) {
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
}

fn customer(b: &dyn Backend, shop: i64, phone: &str) -> i64 {
    let event = json!({"id": format!("u-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}]});
    let report = b.ingest(shop, vec![event], day(0, 0));
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    report.outcomes[0].customer_id.unwrap()
}

fn tag(s: &dyn Storage, shop: i64, customer: i64, name: &str, on: bool, at: DateTime<Utc>) {
    if on {
        let w = TagWrite { shop_id: shop, customer_id: customer, tag: name, source: Source::Manual, reason: None, at, chain: 1 };
        s.write(|tx| tags::add(tx, &w)).unwrap();
    } else {
        let r =
            TagRemoval { shop_id: shop, customer_id: customer, tag: name, which: Removable::ManualOrJourney, reason: None, at, chain: 1 };
        s.write(|tx| tags::remove(tx, &r)).unwrap();
    }
}

/// A shop of `n` customers, by id.
fn shop_of(factory: &dyn Factory, n: usize) -> (Box<dyn Backend>, i64, i64, Vec<i64>) {
    let b = factory.fresh();
    let shop = b.create_shop("Views", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    let mut ids: Vec<i64> = (0..n).map(|i| customer(&*b, shop, &format!("138{i:08}"))).collect();
    ids.sort_unstable();
    (b, shop, other, ids)
}

fn page_ids(page: &(i64, Option<i64>, Vec<kith_domain::model::Customer>)) -> Vec<i64> {
    page.2.iter().map(|c| c.id).collect()
}

pub fn segments_keep_versions_list_and_stay_in_their_shop(factory: &dyn Factory) {
    let (b, shop, other, _) = shop_of(factory, 1);
    let s = b.storage();
    let vip_def = json!({"tag": "vip"});
    let vip = s.create_segment(shop, &input("  VIP  ", vip_def.clone()), &cli(), day(1, 0)).unwrap();
    assert_eq!((vip.name.as_str(), vip.version, &vip.definition, vip.members, vip.depends_on_time), ("VIP", 1, &vip_def, 0, false));
    let recent_def = json!({"purchase": {}, "window": {"last_days": 30}});
    let recent = s.create_segment(shop, &input("Recent", recent_def.clone()), &cli(), day(1, 0)).unwrap();
    assert!(recent.depends_on_time);
    assert!(matches!(s.create_segment(shop, &input("Bad", json!({"nope": 1})), &cli(), day(1, 0)), Err(Error::Invalid(_))));

    // A new name alone keeps the version; each new definition adds one.
    let renamed = SegmentInput { name: "Very important".into(), description: Some("by hand".into()), definition: vip_def.clone() };
    let renamed = s.update_segment(shop, vip.id, &renamed, &cli(), day(2, 0)).unwrap();
    assert_eq!((renamed.name.as_str(), renamed.description.as_deref(), renamed.version), ("Very important", Some("by hand"), 1));
    let gold = json!({"tag": "gold"});
    let platinum = json!({"tag": "platinum"});
    assert_eq!(s.update_segment(shop, vip.id, &input("Very important", gold.clone()), &cli(), day(3, 0)).unwrap().version, 2);
    let v3 = s.update_segment(shop, vip.id, &input("Very important", platinum.clone()), &cli(), day(4, 0)).unwrap();
    assert_eq!((v3.version, &v3.definition), (3, &platinum));
    let versions: Vec<(i64, Value, DateTime<Utc>, String)> =
        s.segment_versions(shop, vip.id).unwrap().into_iter().map(|v| (v.version, v.definition, v.created_at, v.created_by)).collect();
    assert_eq!(
        versions,
        [
            (1, vip_def.clone(), day(1, 0), cli().label),
            (2, gold.clone(), day(3, 0), cli().label),
            (3, platinum.clone(), day(4, 0), cli().label)
        ]
    );
    // The definition in force at a time.
    for (at, definition) in [(day(2, 12), &vip_def), (day(3, 12), &gold), (day(9, 0), &platinum)] {
        assert_eq!(&s.get_segment(shop, vip.id, Some(at)).unwrap().definition, definition, "at {at}");
    }
    assert_eq!(s.get_segment(shop, vip.id, None).unwrap().version, 3);
    not_found(s.get_segment(shop, vip.id, Some(day(0, 0))));

    let listed: Vec<(i64, String, i64)> = s.list_segments(shop).unwrap().into_iter().map(|g| (g.id, g.name, g.version)).collect();
    assert_eq!(listed, [(vip.id, "Very important".to_owned(), 3), (recent.id, "Recent".to_owned(), 1)], "by id");

    // Another shop's view of them: NotFound, and nothing changes.
    assert!(s.list_segments(other).unwrap().is_empty());
    not_found(s.get_segment(other, vip.id, None));
    not_found(s.update_segment(other, vip.id, &input("Taken", json!({"tag": "x"})), &cli(), day(5, 0)));
    not_found(s.delete_segment(other, vip.id, &cli(), day(5, 0)));
    not_found(s.segment_versions(other, vip.id));
    not_found(s.snapshot_segment(other, vip.id, &cli(), day(5, 0)));
    not_found(s.list_snapshots(other, vip.id));
    not_found(s.segment_counts(other, vip.id, day(0, 0).date_naive(), day(9, 0).date_naive()));
    not_found(s.audience_page(other, &Audience::Segment { id: vip.id, version: None }, 0, 10, true, day(5, 0)));
    assert_eq!(s.get_segment(shop, vip.id, None).unwrap().name, "Very important");

    s.delete_segment(shop, recent.id, &cli(), day(6, 0)).unwrap();
    not_found(s.get_segment(shop, recent.id, None));
    not_found(s.delete_segment(shop, recent.id, &cli(), day(6, 0)));
    assert_eq!(s.list_segments(shop).unwrap().into_iter().map(|g| g.id).collect::<Vec<_>>(), [vip.id]);

    // Every change audited in the shop, newest first; the refused ones left nothing.
    let audited = |shop: i64| -> Vec<(String, Option<String>, Value)> {
        s.list_audit(shop, None, 100)
            .unwrap()
            .into_iter()
            .filter(|e| e.action.starts_with("segment."))
            .map(|e| (e.action, e.target, e.detail.get("version").cloned().unwrap_or(Value::Null)))
            .collect()
    };
    let (v, r) = (format!("segment:{}", vip.id), format!("segment:{}", recent.id));
    let want = [
        ("segment.deleted", &r, Value::Null),
        ("segment.updated", &v, json!(3)),
        ("segment.updated", &v, json!(2)),
        ("segment.updated", &v, json!(1)),
        ("segment.created", &r, json!(1)),
        ("segment.created", &v, json!(1)),
    ];
    assert_eq!(audited(shop), want.map(|(a, t, d)| (a.to_owned(), Some(t.clone()), d)));
    assert!(audited(other).is_empty());
}

pub fn segments_audiences_page_and_snapshots_keep_their_members(factory: &dyn Factory) {
    let (b, shop, other, ids) = shop_of(factory, 10);
    let s = b.storage();
    let mut vip: BTreeSet<i64> = [0, 2, 3, 5, 7, 8].iter().map(|&i| ids[i]).collect();
    for &c in &vip {
        tag(s, shop, c, "vip", true, day(0, 1));
    }
    let segment = s.create_segment(shop, &input("VIP", json!({"tag": "vip"})), &cli(), day(1, 0)).unwrap();
    assert_eq!(segment.members, vip.len() as i64);
    let audience = Audience::Segment { id: segment.id, version: None };
    let all_pages = |audience: &Audience, at: DateTime<Utc>, count: usize| {
        let (mut after, mut seen) = (0, Vec::new());
        loop {
            let page = s.audience_page(shop, audience, after, 4, true, at).unwrap();
            assert_eq!(page.1, Some(count as i64), "the count on every page");
            let got = page_ids(&page);
            assert!(got.len() <= 4);
            let Some(&last) = got.last() else { break };
            seen.extend(got);
            after = last;
        }
        seen
    };
    assert_eq!(all_pages(&audience, day(1, 0), vip.len()), vip.iter().copied().collect::<Vec<_>>());
    assert_eq!(all_pages(&Audience::Definition(json!({"tag": "vip"})), day(1, 0), vip.len()), vip.iter().copied().collect::<Vec<_>>());
    let uncounted = s.audience_page(shop, &audience, 0, 2, false, day(1, 0)).unwrap();
    assert_eq!((uncounted.0, uncounted.1, page_ids(&uncounted)), (1, None, vip.iter().copied().take(2).collect()));

    let first = s.snapshot_segment(shop, segment.id, &cli(), day(1, 1)).unwrap();
    assert_eq!((first.segment_id, first.version, first.size, first.taken_at), (segment.id, 1, vip.len() as i64, day(1, 1)));
    assert_eq!(first.taken_by, cli().label);
    let frozen: Vec<i64> = vip.iter().copied().collect();

    // The data change: the segment follows, the snapshot keeps what it froze.
    tag(s, shop, ids[0], "vip", false, day(1, 2));
    tag(s, shop, ids[1], "vip", true, day(1, 2));
    vip.remove(&ids[0]);
    vip.insert(ids[1]);
    s.refresh_segments(100, day(1, 2)).unwrap();
    assert_eq!(all_pages(&audience, day(1, 2), vip.len()), vip.iter().copied().collect::<Vec<_>>());
    let (snap, members) = s.snapshot_members(shop, segment.id, first.id, 0, 4).unwrap();
    assert_eq!((snap.id, members.iter().map(|c| c.id).collect::<Vec<_>>()), (first.id, frozen[..4].to_vec()));
    let (_, rest) = s.snapshot_members(shop, segment.id, first.id, frozen[3], 4).unwrap();
    assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), frozen[4..]);
    let second = s.snapshot_segment(shop, segment.id, &cli(), day(1, 3)).unwrap();
    let (_, now_in) = s.snapshot_members(shop, segment.id, second.id, 0, 100).unwrap();
    assert_eq!(now_in.iter().map(|c| c.id).collect::<BTreeSet<_>>(), vip);
    let listed: Vec<i64> = s.list_snapshots(shop, segment.id).unwrap().into_iter().map(|n| n.id).collect();
    assert_eq!(listed, [second.id, first.id], "newest first");

    // A snapshot is read through its own segment and shop only.
    let plain = s.create_segment(shop, &input("Everyone", json!({"tag": "vip", "has": false})), &cli(), day(1, 4)).unwrap();
    not_found(s.snapshot_members(shop, plain.id, first.id, 0, 10));
    not_found(s.snapshot_members(other, segment.id, first.id, 0, 10));

    // A new definition: the audience of the old version still answers with it.
    s.update_segment(shop, segment.id, &input("VIP", json!({"tag": "gold"})), &cli(), day(1, 5)).unwrap();
    let old = s.audience_page(shop, &Audience::Segment { id: segment.id, version: Some(1) }, 0, 100, true, day(1, 5)).unwrap();
    assert_eq!((old.0, old.1, page_ids(&old).into_iter().collect::<BTreeSet<_>>()), (1, Some(vip.len() as i64), vip.clone()));
    let new = s.audience_page(shop, &audience, 0, 100, true, day(1, 5)).unwrap();
    assert_eq!((new.0, new.1, new.2.len()), (2, Some(0), 0));
}

pub fn segments_daily_counts_are_each_days_members(factory: &dyn Factory) {
    let (b, shop, _, ids) = shop_of(factory, 8);
    let s = b.storage();
    let date = |d: i64| day(d, 0).date_naive();
    let mut vip: BTreeSet<i64> = BTreeSet::new();
    let mut expected: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for &c in &ids[..3] {
        tag(s, shop, c, "vip", true, day(0, 5));
        vip.insert(c);
    }
    let segment = s.create_segment(shop, &input("VIP", json!({"tag": "vip"})), &cli(), day(1, 2)).unwrap();
    // Day by day (hours 2 and 3 UTC are the same date in Shanghai): changes, a refresh, a sweep.
    let changes: [(i64, &[usize], &[usize]); 5] =
        [(1, &[], &[]), (2, &[3, 4], &[]), (3, &[], &[]), (4, &[5], &[0, 1, 3]), (6, &[6, 7], &[2])];
    for (d, added, removed) in changes {
        for &i in added {
            tag(s, shop, ids[i], "vip", true, day(d, 1));
            vip.insert(ids[i]);
        }
        for &i in removed {
            tag(s, shop, ids[i], "vip", false, day(d, 1));
            vip.remove(&ids[i]);
        }
        s.refresh_segments(100, day(d, 2)).unwrap();
        if d != 3 {
            s.sweep_segments(Duration::hours(1), 100, day(d, 3)).unwrap();
        }
        assert_eq!(s.get_segment(shop, segment.id, None).unwrap().members, vip.len() as i64, "day {d}");
        expected.insert(date(d), vip.len() as i64);
    }
    // Days without a record carry the day before; none before the segment.
    let mut want = Vec::new();
    let mut last = None;
    for d in 0..=7 {
        last = expected.get(&date(d)).copied().or(last);
        if let Some(n) = last {
            want.push((date(d), n));
        }
    }
    let got: Vec<(NaiveDate, i64)> =
        s.segment_counts(shop, segment.id, date(0), date(7)).unwrap().into_iter().map(|c| (c.day, c.members)).collect();
    assert_eq!(got, want);
    let window: Vec<(NaiveDate, i64)> =
        s.segment_counts(shop, segment.id, date(5), date(6)).unwrap().into_iter().map(|c| (c.day, c.members)).collect();
    assert_eq!(window, [(date(5), expected[&date(4)]), (date(6), expected[&date(6)])], "a range starts from the day before it");
}

/// (order id, phone, paid at, amount)
type Paid = (&'static str, &'static str, DateTime<Utc>, i64);

const ORDERS: [(&str, &str, i64, i64, i64); 9] = [
    // (id, phone, day, hour UTC, amount); Shanghai is UTC+8.
    ("O1", "p1", 2, 2, 10_000),
    ("O2", "p1", 12, 2, 5_000),
    ("O3", "p1", 40, 2, 7_000),
    ("O4", "p2", 9, 17, 8_000), // 01:00 on the 11th in Shanghai
    ("O5", "p2", 65, 2, 3_000),
    ("O6", "p3", 15, 2, 6_000),
    ("O7", "p3", 20, 2, 4_000),  // refunded in full
    ("O8", "p4", 45, 2, 12_000), // refunded in part
    ("O9", "p5", 9, 15, 9_000),  // 23:00 on the 10th in Shanghai
];
/// (order, amount), refunded at [`refunded_at`].
const REFUNDS: [(&str, i64); 2] = [("O7", 4_000), ("O8", 2_000)];

/// Per buyer: counted orders in the range, first counted order, last counted order before the end.
type Span = (i64, DateTime<Utc>, Option<DateTime<Utc>>);
/// A cohort's month, customers, and customers active each month since.
type CohortRow = (String, i64, Vec<(u32, i64)>);
/// first ms, last ms, purchase days, orders, spent, repeat spent, first day, last day.
type Summary = (i64, i64, BTreeSet<NaiveDate>, u32, i64, i64, NaiveDate, NaiveDate);

fn refunded_at() -> DateTime<Utc> {
    day(70, 0)
}

fn zone() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn local(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&zone()).date_naive()
}

fn start_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap().and_local_timezone(zone()).unwrap().with_timezone(&Utc)
}

fn paid() -> Vec<Paid> {
    ORDERS.iter().map(|&(id, phone, d, h, amount)| (id, phone, day(d, h), amount)).collect()
}

fn refunded(id: &str) -> i64 {
    REFUNDS.iter().filter(|r| r.0 == id).map(|r| r.1).sum()
}

/// Counted orders (paid, not refunded in full) with their net amounts.
fn counted() -> Vec<(Paid, i64)> {
    paid().into_iter().filter(|o| refunded(o.0) < o.3).map(|o| (o, o.3 - refunded(o.0))).collect()
}

/// A shop with the orders and refunds above: (backend, shop, phone → customer).
fn sales_shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64, BTreeMap<&'static str, i64>) {
    let b = factory.fresh();
    let shop = b.create_shop("Sales", "Asia/Shanghai");
    let other = b.create_shop("Other", "Asia/Shanghai");
    let mut who = BTreeMap::new();
    for (id, phone, at, amount) in paid() {
        let event = json!({"id": format!("e-{id}"), "type": "order.paid", "identities": [{"kind": "phone", "value": format!("1380000000{}", &phone[1..])}],
                           "order": {"id": id, "amount": amount, "paid_at": at.to_rfc3339()}});
        let report = b.ingest(shop, vec![event.clone()], at);
        assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
        who.insert(phone, report.outcomes[0].customer_id.unwrap());
        // The other shop's sales must not count in this one's.
        b.ingest(other, vec![event], at);
    }
    for (order, amount) in REFUNDS {
        let event = json!({"id": format!("r-{order}"), "type": "order.refunded", "refund": {"order_id": order, "amount": amount}});
        let report = b.ingest(shop, vec![event], refunded_at());
        assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    }
    (b, shop, who)
}

pub fn metrics_overview_and_cohorts_match_the_orders(factory: &dyn Factory) {
    let (b, shop, _) = sales_shop(factory);
    let s = b.storage();
    let now = day(80, 0);
    let orders = paid();
    let first_paid: BTreeMap<&str, DateTime<Utc>> = orders.iter().fold(BTreeMap::new(), |mut m, o| {
        let e = m.entry(o.1).or_insert(o.2);
        *e = (*e).min(o.2);
        m
    });
    for (from, to) in [(date(2026, 3, 11), date(2026, 3, 31)), (date(2026, 3, 1), date(2026, 5, 31))] {
        let (start, end) = (start_of(from), start_of(to.succ_opt().unwrap()));
        let within = |t: DateTime<Utc>| start <= t && t < end;
        let q = OverviewQuery { from, to, active_days: 30, churn_days: 60 };
        let o = s.overview(shop, &q, now).unwrap();
        assert_eq!((o.from, o.to, o.time_zone.as_str()), (from, to, "Asia/Shanghai"));
        // Sales: every order paid in the range, refunds made in it.
        let in_range: Vec<&Paid> = orders.iter().filter(|o| within(o.2)).collect();
        let gmv: i64 = in_range.iter().map(|o| o.3).sum();
        let refunds: i64 = if within(refunded_at()) { REFUNDS.iter().map(|r| r.1).sum() } else { 0 };
        let first_revenue: i64 = in_range.iter().filter(|o| first_paid[o.1] == o.2).map(|o| o.3).sum();
        let sales = &o.sales;
        assert_eq!((sales.gmv, sales.orders, sales.aov), (gmv, in_range.len() as i64, Some(gmv / in_range.len() as i64)), "{from}");
        assert_eq!((sales.refunds, sales.net), (refunds, gmv - refunds), "{from}");
        assert_eq!((sales.new_customer_revenue, sales.returning_customer_revenue), (first_revenue, gmv - first_revenue), "{from}");
        // Customers: first seen at their first payment; buyers by counted orders.
        let total = first_paid.values().filter(|t| **t < end).count() as i64;
        let new = first_paid.values().filter(|t| within(**t)).count() as i64;
        let mut per: BTreeMap<&str, Span> = BTreeMap::new();
        for (o, _) in counted() {
            let e = per.entry(o.1).or_insert((0, o.2, None));
            e.0 += i64::from(within(o.2));
            e.1 = e.1.min(o.2);
            if o.2 < end {
                e.2 = e.2.max(Some(o.2));
            }
        }
        let buyers = per.values().filter(|p| p.0 > 0).count() as i64;
        let new_buyers = per.values().filter(|p| p.0 > 0 && p.1 >= start).count() as i64;
        let repeat = per.values().filter(|p| p.0 >= 2).count() as i64;
        let ages: Vec<Duration> = per.values().filter_map(|p| p.2).map(|last| end - last).collect();
        let active = ages.iter().filter(|a| **a <= Duration::days(30)).count() as i64;
        let sleeping = ages.iter().filter(|a| **a > Duration::days(30) && **a <= Duration::days(60)).count() as i64;
        let c = &o.customers;
        assert_eq!((c.total, c.new, c.buyers, c.new_buyers), (total, new, buyers, new_buyers), "{from}");
        assert_eq!((c.active, c.sleeping, c.churned), (active, sleeping, ages.len() as i64 - active - sleeping), "{from}");
        assert_eq!(c.never_bought, total - ages.len() as i64, "{from}");
        assert_eq!(c.repurchase_rate, Some(repeat as f64 / buyers as f64), "{from}");
    }

    // Cohorts by the month of the first order, followed month by month to now's.
    let month = |t: DateTime<Utc>| {
        let d = local(t);
        i64::from(d.year()) * 12 + i64::from(d.month0())
    };
    let mut months_of: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for o in &orders {
        months_of.entry(o.1).or_default().insert(month(o.2));
    }
    let table = s.cohorts(shop, date(2026, 3, 1), date(2026, 5, 1), now).unwrap();
    assert_eq!(table.time_zone, "Asia/Shanghai");
    let current = month(now);
    let mut want = Vec::new();
    for (label, m) in [("2026-03", month(day(0, 0))), ("2026-04", month(day(31, 0))), ("2026-05", month(day(61, 0)))] {
        let cohort: Vec<&BTreeSet<i64>> = months_of.values().filter(|ms| ms.first() == Some(&m)).collect();
        let active: Vec<(u32, i64)> =
            (0..=current - m).map(|k| (k as u32, cohort.iter().filter(|ms| ms.contains(&(m + k))).count() as i64)).collect();
        want.push((label.to_owned(), cohort.len() as i64, active));
    }
    let got: Vec<CohortRow> = table
        .cohorts
        .iter()
        .map(|c| (c.month.clone(), c.customers, c.months.iter().map(|m| (m.months_since, m.customers)).collect()))
        .collect();
    assert_eq!(got, want);
    for c in &table.cohorts {
        for m in &c.months {
            let rate = if c.customers > 0 { m.customers as f64 / c.customers as f64 } else { 0.0 };
            assert!((m.rate - rate).abs() < 1e-9, "{c:?}");
        }
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn metrics_score_distributions_and_buyer_summaries_match_what_was_written(factory: &dyn Factory) {
    let (b, shop, who) = sales_shop(factory);
    let s = b.storage();
    let manifest = "id = \"rfm\"\nversion = \"1.0.0\"\nkind = \"scoring-model\"\napi-version = \"0.2.0\"\n\
                    description = \"Stands in for a model\"\nvendor = \"Kith\"\ncapabilities = [\"scores:write\"]\n";
    b.enable_plugin(shop, manifest);
    let written: Vec<(&str, f64, &str)> =
        vec![("p1", 10.0, "low"), ("p2", 35.0, "mid"), ("p3", 35.0, "mid"), ("p4", 80.0, "high|高|High"), ("p5", 55.5, "mid")];
    let decisions: Vec<Decision> = written
        .iter()
        .map(|(p, v, l)| Decision::SetScore {
            customer_id: who[p],
            model: "rfm".into(),
            value: *v,
            label: Some((*l).into()),
            explanation: "stand-in".into(),
        })
        .collect();
    // Another shop's scores of the same model are its own.
    let other = s.list_shops().unwrap().into_iter().find(|x| x.id != shop).unwrap().id;
    b.enable_plugin(other, manifest);
    let theirs = s.counted_orders(other).unwrap();
    assert_eq!(theirs.len(), ORDERS.len(), "the other shop's orders, none refunded, are its own");
    let their_from = s.subscription(other, "rfm").unwrap().cursor;
    let attempt = Attempt { shop_id: other, plugin_id: "rfm", logs: &[], duration: std::time::Duration::from_millis(1), now: day(80, 0) };
    let foreign = [Decision::SetScore {
        customer_id: theirs[0].0,
        model: "rfm".into(),
        value: 1000.0,
        label: Some("huge".into()),
        explanation: "x".into(),
    }];
    s.commit_delivery(&attempt, their_from, their_from, &Effects { decisions: &foreign, kv_writes: &[], chain: None }).unwrap();
    let from = s.subscription(shop, "rfm").unwrap().cursor;
    let attempt = Attempt { shop_id: shop, plugin_id: "rfm", logs: &[], duration: std::time::Duration::from_millis(1), now: day(80, 0) };
    s.commit_delivery(&attempt, from, from, &Effects { decisions: &decisions, kv_writes: &[], chain: None }).unwrap();

    let d = s.score_distribution(shop, "rfm").unwrap();
    let mut values: Vec<f64> = written.iter().map(|w| w.1).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    assert_eq!((d.model.as_str(), d.customers, d.sum), ("rfm", n as i64, values.iter().sum::<f64>()));
    assert_eq!((d.min, d.max, d.mean), (Some(10.0), Some(80.0), Some(values.iter().sum::<f64>() / n as f64)));
    let quantiles: Vec<(u8, f64)> = d.quantiles.iter().map(|q| (q.p, q.value)).collect();
    let want: Vec<(u8, f64)> = (1..=9u8).map(|k| (k * 10, values[(n * usize::from(k) * 10).div_ceil(100) - 1])).collect();
    assert_eq!(quantiles, want);
    assert_eq!(d.histogram.iter().map(|b| b.customers).sum::<i64>(), n as i64);
    let labels: Vec<(String, i64)> = d.labels.iter().map(|l| (l.code.clone(), l.customers)).collect();
    assert_eq!(labels, [("mid".to_owned(), 3), ("high".to_owned(), 1), ("low".to_owned(), 1)], "largest first, then by code");
    let none = s.score_distribution(shop, "nobody").unwrap();
    assert_eq!((none.customers, none.sum, none.quantiles.len(), none.mean), (0, 0.0, 0, None));

    // Counted orders and buyers' summaries: paid, not refunded in full, net of refunds.
    let mut rows: Vec<(i64, DateTime<Utc>, NaiveDate, i64)> =
        counted().into_iter().map(|(o, net)| (who[o.1], o.2, local(o.2), net)).collect();
    rows.sort_by_key(|r| (r.0, r.1));
    let got = s.counted_orders(shop).unwrap();
    assert_eq!(got, rows.iter().map(|r| (r.0, r.2, r.3)).collect::<Vec<_>>());
    let now = day(80, 0);
    let mut want: BTreeMap<i64, Summary> = BTreeMap::new();
    for (c, at, d, net) in &rows {
        let e = want.entry(*c).or_insert((at.timestamp_millis(), 0, BTreeSet::new(), 0, 0, 0, *d, *d));
        e.1 = at.timestamp_millis();
        e.2.insert(*d);
        e.3 += 1;
        e.4 += net;
        if *d != e.6 {
            e.5 += net;
        }
        e.7 = *d;
    }
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = s.buyer_summaries(shop, after, 2, now).unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.customer_id);
        pages.extend(page);
    }
    assert_eq!(pages.iter().map(|p| p.customer_id).collect::<Vec<_>>(), want.keys().copied().collect::<Vec<_>>());
    for p in &pages {
        let w = &want[&p.customer_id];
        let got = (p.first_order_at_ms, p.last_order_at_ms, p.purchase_days, p.order_count, p.total_spent, p.repeat_spent);
        assert_eq!(got, (w.0, w.1, w.2.len() as u32, w.3, w.4, w.5), "buyer {}", p.customer_id);
        assert_eq!((p.span_days, p.age_days), ((w.7 - w.6).num_days() as u32, (local(now) - w.6).num_days() as u32));
    }
}
