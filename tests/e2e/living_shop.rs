//! The living-shop test (issue 25): one shop run the way a merchant runs it,
//! on the real binary over loopback HTTP, with every first-party plugin on,
//! segments, journeys, loyalty, coupons and messages, driven by the test
//! clock for weeks of simulated time, and a second shop beside it. After each
//! simulated day it asserts invariants, each computed again here from the
//! traffic the test sent: nothing stuck, nothing counted twice, every figure
//! equal to its definition (plugins/README.md, `kith_domain::metrics`).
//!
//! Shop A (Asia/Shanghai) runs every first-party plugin (tiered-points with
//! three tiers; predict with its minimum data lowered to the shop's size; the
//! sms-http, email-http and webhook connectors send to a
//! `kith_provider::Provider`), seven segments (an RFM group, lifecycle tags,
//! stats with a time condition, points, a behaviour in a window without a
//! purchase, tiers, high churn risk), four journeys (the demo's three and a cart reminder
//! after a two-hour wait), a coupon template with budgets and a points-mall
//! reward, an SMS frequency cap and e-mail quiet hours. Its history (orders
//! paid before the clock's start, refunds, behaviours) arrives through
//! `POST /v1/events`; shop B's (UTC, rfm, lifecycle, tiered-points without
//! tiers, webhook) through `kith import orders`. Each simulated day brings new
//! customers, repeat orders (some with a coupon the customer holds), refunds,
//! behaviours, merges of a nickname-only browser with a phone, redemptions
//! (each sent twice), SMS delivery receipts, and on day 20 a late import of
//! old orders. The clock moves a day in two halves, so that held e-mails go.
//!
//! After each day, with the bus idle: no subscriber lags, trips or
//! dead-letters, no run fails, the server's log holds no ERROR and no
//! "storage failure"; stats, RFM group and score, AIPL stage, lifecycle tag,
//! high-value, category affinity and tier equal the README's definitions
//! computed here; the ledger sums to every balance, an order earns once and
//! loses its refunded share; coupons stay within budget and each is redeemed
//! by the order that carried it; every message is sent, suppressed or held,
//! and the provider got each sent one once; a journey step acts at most once
//! per run, a conversion has an order within the goal's window after entry;
//! segment members equal the definition and the entry and exit events replay
//! to them. Every tenth day the dashboard's figures equal sums over the data
//! for ranges before, across and after the import.
//!
//! The whole of it runs twice, on a SQLite file and on a throwaway PostgreSQL
//! server (`kith_postgres::cluster::Cluster`): a feature is done when it works
//! beside all the others, on either backend.
//!
//! `KITH_SOAK=1` runs a year with more customers; `KITH_LIVING_ALL=1` goes on
//! past a broken day and reports every broken invariant at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::{KITH, kith, kith_json};

const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;
/// How long the test waits for the kernel to get somewhere, in real time.
const PATIENCE: StdDuration = StdDuration::from_secs(90);

const CATALOGUE: &[(&str, &str, i64)] = &[
    ("BE-001", "beauty", 29900),
    ("BE-002", "beauty", 8900),
    ("AP-001", "apparel", 9900),
    ("AP-002", "apparel", 89900),
    ("FD-001", "food", 15900),
    ("FD-002", "food", 6900),
    ("HM-001", "home", 19900),
    ("DG-001", "digital", 39900),
];

struct Scale {
    days: u32,
    history: [usize; 2],
    new_per_day: [f64; 2],
}

fn scale() -> Scale {
    if std::env::var_os("KITH_SOAK").is_some() {
        Scale { days: 365, history: [200, 60], new_per_day: [2.0, 0.5] }
    } else {
        Scale { days: 60, history: [30, 12], new_per_day: [0.6, 0.25] }
    }
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("a time in range")
}

/// `kith serve` on the test clock, its JSON log in a file; killed when dropped.
struct Kith {
    child: Child,
    url: String,
    log: PathBuf,
    log_read: usize,
}

impl Kith {
    fn start(dir: &Path, database: &str) -> Kith {
        let config = dir.join("living.toml");
        std::fs::write(&config, "bind = \"127.0.0.1:0\"\nlog_format = \"json\"\n[testing]\nclock = true\n").unwrap();
        let log = dir.join("kith.log");
        let mut child = Command::new(KITH)
            .current_dir(dir)
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("KITH_DATABASE", database)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start kith serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
        Kith { child, url, log, log_read: 0 }
    }

    /// Log lines since the last call that report an error or a storage failure.
    fn new_problems(&mut self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let fresh = text.get(self.log_read..).unwrap_or_default().to_owned();
        // Only whole lines: a line being written is read next time.
        let end = fresh.rfind('\n').map_or(0, |i| i + 1);
        self.log_read += end;
        fresh[..end]
            .lines()
            .filter(|line| {
                let level = serde_json::from_str::<Value>(line).ok().and_then(|v| v["level"].as_str().map(str::to_owned));
                level.as_deref() == Some("ERROR") || line.contains("storage failure")
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Kith {
    fn drop(&mut self) {
        // The process may be gone already; there is nothing to do about a failed kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shop's node, as the suite's JSON client.
type Api = crate::http::Http;

struct Deadline {
    until: Instant,
}

impl Deadline {
    fn new() -> Deadline {
        Deadline { until: Instant::now() + PATIENCE }
    }

    async fn tick(&self, what: &str, state: &dyn std::fmt::Debug) {
        assert!(Instant::now() < self.until, "timed out ({PATIENCE:?}) waiting for {what}: {state:?}");
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone)]
struct Person {
    phone: Option<String>,
    email: Option<String>,
    nick: Option<String>,
    birthday: Option<NaiveDate>,
    first_seen: i64,
    parent: usize,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    person: usize,
    amount: i64,
    paid_at: i64,
    refunds: Vec<(i64, i64)>,
    categories: BTreeSet<String>,
    coupon: Option<String>,
}

impl Order {
    fn refunded(&self) -> i64 {
        self.refunds.iter().map(|r| r.0).sum()
    }
    fn counted(&self) -> bool {
        self.refunded() < self.amount
    }
    fn net(&self) -> i64 {
        self.amount - self.refunded()
    }
}

#[derive(Debug, Clone)]
struct Behaviour {
    person: usize,
    kind: &'static str,
    at: i64,
}

#[derive(Default)]
struct Model {
    persons: Vec<Person>,
    orders: Vec<Order>,
    behaviours: Vec<Behaviour>,
}

impl Model {
    fn root(&self, mut p: usize) -> usize {
        while self.persons[p].parent != p {
            p = self.persons[p].parent;
        }
        p
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            let (keep, other) = (a.min(b), a.max(b));
            self.persons[other].parent = keep;
        }
    }

    fn add_person(&mut self, phone: Option<String>, email: Option<String>, nick: Option<String>, first_seen: i64) -> usize {
        let id = self.persons.len();
        self.persons.push(Person { phone, email, nick, birthday: None, first_seen, parent: id });
        id
    }

    fn identities(&self, p: usize) -> Vec<Value> {
        let person = &self.persons[p];
        let mut out = Vec::new();
        if let Some(v) = &person.phone {
            out.push(json!({"kind": "phone", "value": v}));
        }
        if let Some(v) = &person.email {
            out.push(json!({"kind": "email", "value": v}));
        }
        if let Some(v) = &person.nick {
            out.push(json!({"kind": "nick", "value": v}));
        }
        out
    }

    /// Roots that Kith knows as customers.
    fn roots(&self) -> BTreeSet<usize> {
        (0..self.persons.len()).filter(|&p| self.persons[p].parent == p).collect()
    }

    fn orders_of(&self, root: usize) -> Vec<&Order> {
        self.orders.iter().filter(|o| self.root(o.person) == root).collect()
    }

    fn behaviours_of(&self, root: usize) -> Vec<&Behaviour> {
        self.behaviours.iter().filter(|b| self.root(b.person) == root).collect()
    }

    /// When the data first shows the customer: their earliest event, whenever it arrived.
    fn first_seen(&self, root: usize) -> i64 {
        let persons = (0..self.persons.len()).filter(|&p| self.root(p) == root).map(|p| self.persons[p].first_seen);
        let orders = self.orders_of(root).into_iter().map(|o| o.paid_at);
        let behaviours = self.behaviours_of(root).into_iter().map(|b| b.at);
        persons.chain(orders).chain(behaviours).min().unwrap()
    }

    fn person_by_identity(&self, kind: &str, value: &str) -> Option<usize> {
        self.persons.iter().position(|p| match kind {
            "phone" => p.phone.as_deref() == Some(value),
            "email" => p.email.as_deref() == Some(value),
            "nick" => p.nick.as_deref() == Some(value),
            _ => false,
        })
    }
}

/// What Kith shows of one customer, as read back.
#[derive(Debug, Clone)]
struct Seen {
    id: i64,
    stats: Value,
    tags: BTreeSet<String>,
    scores: BTreeMap<String, (f64, Option<String>)>,
    tier: Option<String>,
    points: i64,
}

impl Seen {
    fn code(&self, model: &str) -> Option<String> {
        self.scores.get(model).and_then(|(_, l)| l.as_deref()).map(|l| l.split('|').next().unwrap().to_owned())
    }
}

// ---------------------------------------------------------------- the rules, written plainly from plugins/README.md

#[derive(Clone)]
struct Tier {
    name: &'static str,
    threshold: i64,
    multiplier: f64,
}

#[derive(Clone)]
struct Rules {
    rfm_window_days: i64,
    lifecycle_new_days: i64,
    points_per_unit: f64,
    tiers: Vec<Tier>,
    aipl: bool,
    high_value: bool,
    category_affinity: bool,
}

fn rfm_expected(model: &Model, seen: &BTreeMap<usize, Seen>, window_days: i64, now: i64) -> BTreeMap<usize, (String, f64)> {
    // Buyers in the window in Kith's id order (the order the kernel sums them in).
    let mut buyers: Vec<(i64, usize, f64, f64, f64)> = Vec::new();
    for (&root, s) in seen {
        let orders: Vec<&Order> =
            model.orders_of(root).into_iter().filter(|o| o.counted() && o.paid_at >= now - window_days * DAY_MS).collect();
        if let Some(last) = orders.iter().map(|o| o.paid_at).max() {
            let recency = (now - last).max(0) as f64 / DAY_MS as f64;
            buyers.push((s.id, root, recency, orders.len() as f64, orders.iter().map(|o| o.net()).sum::<i64>() as f64));
        }
    }
    buyers.sort_by_key(|b| b.0);
    let dist = |values: Vec<f64>| {
        let mut v = values;
        let average = v.iter().sum::<f64>() / v.len() as f64;
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        (average, [rank(0.2), rank(0.4), rank(0.6), rank(0.8)])
    };
    let mut out = BTreeMap::new();
    if buyers.is_empty() {
        return out;
    }
    let (ra, rq) = dist(buyers.iter().map(|b| b.2).collect());
    let (fa, fq) = dist(buyers.iter().map(|b| b.3).collect());
    let (ma, mq) = dist(buyers.iter().map(|b| b.4).collect());
    for (_, root, r, f, m) in buyers {
        let code = match (r <= ra, f >= fa, m >= ma) {
            (true, true, true) => "important-value",
            (true, false, true) => "important-development",
            (false, true, true) => "important-retention",
            (false, false, true) => "important-winback",
            (true, true, false) => "general-value",
            (true, false, false) => "general-development",
            (false, true, false) => "general-retention",
            (false, false, false) => "general-winback",
        };
        let rs = 1 + rq.iter().filter(|q| r < **q).count();
        let fs = 1 + fq.iter().filter(|q| f > **q).count();
        let ms = 1 + mq.iter().filter(|q| m > **q).count();
        out.insert(root, (code.to_owned(), (rs * 100 + fs * 10 + ms) as f64));
    }
    out
}

fn aipl_expected(orders: &[&Order], behaviours: &[&Behaviour], has_tier: bool, now: i64) -> Option<&'static str> {
    let within = |t: i64, days: i64| t >= now - days * DAY_MS;
    let bought = orders.iter().filter(|o| o.counted() && within(o.paid_at, 365)).count();
    let count = |kind: &str, days: i64| behaviours.iter().filter(|b| b.kind == kind && within(b.at, days)).count();
    if bought >= 2 || has_tier {
        Some("L")
    } else if bought == 1 {
        Some("P")
    } else if count("favorite", 30) + count("cart", 30) > 0 || count("view", 30) >= 2 {
        Some("I")
    } else if count("view", 90) > 0 {
        Some("A")
    } else {
        None
    }
}

fn lifecycle_expected(orders: &[&Order], new_days: i64, now: i64) -> Option<&'static str> {
    let counted: Vec<i64> = orders.iter().filter(|o| o.counted()).map(|o| o.paid_at).collect();
    let (first, last) = (*counted.iter().min()?, *counted.iter().max()?);
    Some(if now - first < new_days * DAY_MS {
        "lifecycle:new"
    } else if now - last < 90 * DAY_MS {
        "lifecycle:active"
    } else if now - last < 180 * DAY_MS {
        "lifecycle:sleeping"
    } else {
        "lifecycle:churned"
    })
}

fn affinity_expected(orders: &[&Order], now: i64) -> BTreeSet<String> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.counted() && o.paid_at >= now - 365 * DAY_MS) {
        for c in &o.categories {
            *counts.entry(c).or_default() += 1;
        }
    }
    counts.into_iter().filter(|(_, n)| *n >= 2).map(|(c, _)| format!("prefers:{c}")).collect()
}

fn last_review(now: i64) -> i64 {
    // review_months = [1]: the first of January (UTC) at or before now.
    let today = at(now);
    let this_year = Utc.with_ymd_and_hms(today.year(), 1, 1, 0, 0, 0).unwrap();
    if ms(this_year) <= now { ms(this_year) } else { ms(Utc.with_ymd_and_hms(today.year() - 1, 1, 1, 0, 0, 0).unwrap()) }
}

fn tier_expected(tiers: &[Tier], orders: &[&Order], held: bool, now: i64) -> Option<usize> {
    if tiers.is_empty() {
        return None;
    }
    if !held && orders.iter().all(|o| !o.counted()) {
        return None;
    }
    let spend = |t: i64| orders.iter().filter(|o| o.paid_at > t - YEAR_MS && o.paid_at <= t).map(|o| o.net()).sum::<i64>();
    let earned = |spend: i64| tiers.iter().rposition(|t| spend >= t.threshold);
    let review = last_review(now);
    let at_review = earned(spend(review));
    let since = orders.iter().filter(|o| o.paid_at > review && o.paid_at <= now).filter_map(|o| earned(spend(o.paid_at))).max();
    match at_review.max(since) {
        None if held => Some(0),
        rank => rank,
    }
}

// ---------------------------------------------------------------- one shop

/// A segment's definition as the test evaluates it: the customer as read, the model, the person, now.
type Membership = fn(&Seen, &Model, usize, i64) -> bool;

struct Segment {
    id: i64,
    name: &'static str,
    test: Membership,
}

struct Shop {
    name: &'static str,
    id: i64,
    owner: String,
    plugins: Vec<&'static str>,
    rules: Rules,
    model: Model,
    rng: ChaCha8Rng,
    provider: kith_provider::Provider,
    segments: Vec<Segment>,
    /// Members per segment as the entry and exit events tell.
    replayed: BTreeMap<i64, BTreeSet<i64>>,
    events_after: i64,
    journeys: Vec<(i64, i64)>,
    template: Option<i64>,
    reward: Option<i64>,
    /// Receipts posted: message id → the status they report.
    receipts: BTreeMap<String, &'static str>,
    held_tier: BTreeSet<i64>,
    next_order: usize,
    next_event: usize,
}

impl Shop {
    /// A shop with nothing sent yet: its plugins, the rules they are enabled with, and the seed of its traffic.
    fn new(name: &'static str, id: i64, owner: String, plugins: Vec<&'static str>, rules: Rules, seed: u64) -> Shop {
        Shop {
            name,
            id,
            owner,
            plugins,
            rules,
            model: Model::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            provider: kith_provider::Provider::start().unwrap(),
            segments: Vec::new(),
            replayed: BTreeMap::new(),
            events_after: 0,
            journeys: Vec::new(),
            template: None,
            reward: None,
            receipts: BTreeMap::new(),
            held_tier: BTreeSet::new(),
            next_order: 0,
            next_event: 0,
        }
    }

    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("{}-e{}", self.name, self.next_event)
    }

    fn order_event(&mut self, person: usize, paid_at: i64, coupon: Option<String>) -> Value {
        self.next_order += 1;
        let id = format!("{}-T{:05}", self.name, self.next_order);
        let lines = self.rng.random_range(1..=3);
        let mut items = Vec::new();
        let mut categories = BTreeSet::new();
        let mut amount = 0;
        for _ in 0..lines {
            let (sku, category, price) = CATALOGUE[self.rng.random_range(0..CATALOGUE.len())];
            let quantity = self.rng.random_range(1..=2);
            items.push(json!({"sku": sku, "category": category, "quantity": quantity, "unit_price": price}));
            categories.insert(category.to_owned());
            amount += quantity * price;
        }
        self.model.orders.push(Order { id: id.clone(), person, amount, paid_at, refunds: Vec::new(), categories, coupon: coupon.clone() });
        let mut order = json!({"id": id, "paid_at": at(paid_at), "items": items});
        if let Some(code) = coupon {
            order["coupon_code"] = json!(code);
        }
        json!({"id": self.event_id(), "type": "order.paid", "identities": self.model.identities(person), "order": order})
    }

    fn refund_event(&mut self, order: usize, amount: i64, refunded_at: i64) -> Value {
        self.model.orders[order].refunds.push((amount, refunded_at));
        let order_id = self.model.orders[order].id.clone();
        json!({"id": self.event_id(), "type": "order.refunded",
               "refund": {"order_id": order_id, "amount": amount, "refunded_at": at(refunded_at), "reason": "living shop"}})
    }

    fn behaviour_event(&mut self, person: usize, at_ms: i64) -> Value {
        let kind = match self.rng.random_range(0..10) {
            0 | 1 => "favorite",
            2 | 3 => "cart",
            _ => "view",
        };
        let (sku, category, _) = CATALOGUE[self.rng.random_range(0..CATALOGUE.len())];
        self.model.behaviours.push(Behaviour { person, kind, at: at_ms });
        json!({"id": self.event_id(), "type": "behaviour", "occurred_at": at(at_ms), "identities": self.model.identities(person),
               "behaviour": {"kind": kind, "sku": sku, "category": category}})
    }

    fn new_person(&mut self, first_seen: i64, browser: bool) -> (usize, Value) {
        let n = self.model.persons.len();
        let shop = if self.name == "A" { 1 } else { 2 };
        let (phone, email, nick) = if browser {
            (None, None, Some(format!("tb_{}_{n:05}", self.name)))
        } else {
            let email = self.rng.random_bool(0.5).then(|| format!("p{n}@{}.example", self.name.to_lowercase()));
            (Some(format!("+86139{shop}{n:07}")), email, None)
        };
        let p = self.model.add_person(phone, email, nick, first_seen);
        let mut profile = json!({"name": format!("客户{n}")});
        if !browser && self.rng.random_bool(0.3) {
            // Birthdays fall inside the simulated weeks, so that the birthday journey and bonus fire.
            let day = at(first_seen.max(ms(Utc::now()))).date_naive() + Duration::days(self.rng.random_range(0..70));
            let birthday = NaiveDate::from_ymd_opt(self.rng.random_range(1970..2004), day.month(), day.day().min(28)).unwrap();
            self.model.persons[p].birthday = Some(birthday);
            profile["birthday"] = json!(birthday.to_string());
        }
        let event = json!({"id": self.event_id(), "type": "customer.upsert", "occurred_at": at(first_seen),
                           "identities": self.model.identities(p), "profile": profile});
        (p, event)
    }
}

async fn ingest(api: &Api, shop: &Shop, events: Vec<Value>) {
    for chunk in events.chunks(500) {
        let report = api.post(&shop.owner, "/v1/events", &json!({"events": chunk})).await;
        assert_eq!(report["rejected"], 0, "shop {}: every event is accepted: {report}", shop.name);
    }
}

async fn clock(api: &Api, admin: &str, advance_seconds: i64) -> i64 {
    let answer = api.post(admin, "/v1/admin/clock", &json!({"advance_seconds": advance_seconds})).await;
    assert_eq!(answer["test"], true, "{answer}");
    ms(answer["now"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap())
}

/// Wait until the shop is idle at `now`: every subscriber caught up (and, with
/// `runs`, its scheduled run of this moment done), no message being sent or
/// due, no journey run due. A tripped plugin, a dead letter or a failed run fails at once.
async fn settle(api: &Api, shop: &Shop, now: i64, runs: bool) {
    let deadline = Deadline::new();
    loop {
        let mut pending = Vec::new();
        for plugin in &shop.plugins {
            let s = api.get(&shop.owner, &format!("/v1/shop/plugins/{plugin}")).await;
            assert_eq!(s["status"], "enabled", "shop {}: {plugin} is not enabled: {s}", shop.name);
            assert_eq!(s["open_dead_letters"], 0, "shop {}: {plugin} has dead letters: {s}", shop.name);
            assert!(s["last_error"].is_null(), "shop {}: {plugin} failed: {}", shop.name, s["last_error"]);
            if s["lag"] != 0 {
                pending.push(format!("{plugin} lag {}", s["lag"]));
            }
            if runs && s["kind"] != "channel-connector" {
                let run = &s["runs"][0];
                assert_ne!(run["status"], "failed", "shop {}: {plugin}'s run failed: {run}", shop.name);
                let created = run["created_at"].as_str().map(|t| ms(t.parse::<DateTime<Utc>>().unwrap()));
                if created.is_none_or(|c| c < now) || run["status"] != "done" {
                    pending.push(format!("{plugin} run {run}"));
                }
            }
        }
        for status in ["sending", "queued"] {
            for m in api.get(&shop.owner, &format!("/v1/messages?status={status}&limit=200")).await["items"].as_array().unwrap() {
                let due = m["next_attempt_at"].as_str().map(|t| ms(t.parse::<DateTime<Utc>>().unwrap()));
                if status == "sending" || due.is_none_or(|d| d <= now) {
                    pending.push(format!("message {} {status}", m["id"]));
                }
            }
        }
        for (journey, _) in &shop.journeys {
            for run in
                api.get(&shop.owner, &format!("/v1/journeys/{journey}/runs?status=active&limit=500")).await["items"].as_array().unwrap()
            {
                let due = run["due_at"].as_str().map(|t| ms(t.parse::<DateTime<Utc>>().unwrap()));
                if due.is_none_or(|d| d <= now) {
                    pending.push(format!("journey {journey} run {} due {:?}", run["id"], run["due_at"]));
                }
            }
        }
        if pending.is_empty() {
            return;
        }
        deadline.tick(&format!("shop {} to settle", shop.name), &pending).await;
    }
}

/// Settle every shop, then again until nothing moved over a quiet window: the kernel
/// has no signal for "idle" (a journey's event cursor is not shown), and a bus pass
/// in progress may still write a segment event, a run or a message after a look.
async fn settle_all(api: &Api, shops: &[&Shop], now: i64, runs: bool) {
    let deadline = Deadline::new();
    let mut last = None;
    loop {
        let mut fingerprint = Vec::new();
        for shop in shops {
            settle(api, shop, now, runs).await;
            let events = api.get(&shop.owner, &format!("/v1/events?after={}&limit=1000", shop.events_after)).await;
            let messages = api.get(&shop.owner, "/v1/messages?limit=1").await;
            fingerprint.push((events["next_after"].clone(), events["items"].as_array().map(Vec::len), messages["items"][0]["id"].clone()));
        }
        if last.as_ref() == Some(&fingerprint) {
            return;
        }
        last = Some(fingerprint);
        deadline.tick("a quiet moment", &last).await;
        tokio::time::sleep(StdDuration::from_millis(150)).await;
    }
}

// ---------------------------------------------------------------- the invariants

/// Read every customer back and pair each with the model's person.
async fn read_customers(api: &Api, shop: &Shop) -> BTreeMap<usize, Seen> {
    let items = api.all(&shop.owner, "/v1/customers?limit=200").await;
    let mut seen = BTreeMap::new();
    for c in items {
        let roots: BTreeSet<usize> = c["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let (kind, value) = (i["kind"].as_str().unwrap(), i["value"].as_str().unwrap());
                let p = shop.model.person_by_identity(kind, value).unwrap_or_else(|| panic!("shop {}: unknown identity {i}", shop.name));
                shop.model.root(p)
            })
            .collect();
        assert_eq!(roots.len(), 1, "shop {}: customer {} holds identities of different people: {c}", shop.name, c["id"]);
        let root = *roots.first().unwrap();
        let tags = c["tags"].as_array().unwrap().iter().map(|t| t["tag"].as_str().unwrap().to_owned()).collect();
        let scores = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["model"].as_str().unwrap().to_owned(), (s["value"].as_f64().unwrap(), s["label"].as_str().map(str::to_owned))))
            .collect();
        let s = Seen {
            id: c["id"].as_i64().unwrap(),
            stats: c["stats"].clone(),
            tags,
            scores,
            tier: c["tier"].as_str().map(str::to_owned),
            points: c["points"].as_i64().unwrap(),
        };
        let previous = seen.insert(root, s);
        assert!(previous.is_none(), "shop {}: one person is two customers: {previous:?} and {c}", shop.name);
    }
    let expected = shop.model.roots();
    let missing: Vec<_> = expected.iter().filter(|r| !seen.contains_key(r)).collect();
    assert!(missing.is_empty(), "shop {}: people without a customer: {missing:?}", shop.name);
    seen
}

fn check_stats(shop: &Shop, seen: &BTreeMap<usize, Seen>, failures: &mut Vec<String>) {
    for (&root, s) in seen {
        let orders = shop.model.orders_of(root);
        let time = |t: Option<i64>| t.map_or(Value::Null, |t| json!(at(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        let total: i64 = orders.iter().map(|o| o.net()).sum();
        let count = orders.iter().filter(|o| o.counted()).count() as i64;
        let expected = json!({
            "total_spent": total,
            "order_count": count,
            // First and last of the orders that count (fully refunded ones do not).
            "first_order_at": time(orders.iter().filter(|o| o.counted()).map(|o| o.paid_at).min()),
            "last_order_at": time(orders.iter().filter(|o| o.counted()).map(|o| o.paid_at).max()),
            "average_order_value": if count > 0 { json!(total.div_euclid(count)) } else { Value::Null },
            "refund_count": orders.iter().map(|o| o.refunds.len()).sum::<usize>(),
            "refund_amount": orders.iter().map(|o| o.refunded()).sum::<i64>(),
        });
        let mut actual = s.stats.clone();
        for key in ["first_order_at", "last_order_at"] {
            if let Some(t) = actual[key].as_str() {
                actual[key] = time(Some(ms(t.parse::<DateTime<Utc>>().unwrap())));
            }
        }
        if actual != expected {
            failures.push(format!("stats of customer {}: kith {actual}, recomputed {expected}", s.id));
        }
    }
}

fn check_plugins(shop: &mut Shop, seen: &BTreeMap<usize, Seen>, now: i64, failures: &mut Vec<String>) {
    let rules = shop.rules.clone();
    let model = &shop.model;
    let rfm = rfm_expected(model, seen, rules.rfm_window_days, now);
    // high-value: the shop's average order value over all buyers, all time.
    let (mut spent, mut orders_n) = (0.0, 0.0);
    for &root in seen.keys() {
        let orders = model.orders_of(root);
        let count = orders.iter().filter(|o| o.counted()).count();
        if count > 0 {
            spent += orders.iter().map(|o| o.net()).sum::<i64>() as f64;
            orders_n += count as f64;
        }
    }
    let aov = if orders_n > 0.0 { spent / orders_n } else { 0.0 };
    for (&root, s) in seen {
        let orders = model.orders_of(root);
        let behaviours = model.behaviours_of(root);
        let history: Vec<String> = orders
            .iter()
            .map(|o| format!("{} paid {} days ago {} refunded {}", o.id, (now - o.paid_at) / DAY_MS, o.amount, o.refunded()))
            .collect();
        let mut wrong = |what: &str, kith: String, expected: String| {
            failures.push(format!("{what} of customer {} (person {root}): kith {kith}, expected {expected}; orders {history:?}", s.id));
        };
        let (group, value) = rfm.get(&root).cloned().map_or((None, 0.0), |(g, v)| (Some(g), v));
        let kith_rfm = s.scores.get("rfm").cloned();
        if s.code("rfm") != group || kith_rfm.as_ref().map(|r| r.0) != Some(value) {
            wrong("RFM", format!("{kith_rfm:?}"), format!("{group:?} {value}"));
        }
        let tier = tier_expected(&rules.tiers, &orders, shop.held_tier.contains(&s.id), now);
        let tier_name = tier.map(|t| rules.tiers[t].name.to_owned());
        if s.tier != tier_name {
            wrong("tier", format!("{:?}", s.tier), format!("{tier_name:?}"));
        }
        if tier.is_some() {
            shop.held_tier.insert(s.id);
        }
        if rules.aipl {
            let stage = aipl_expected(&orders, &behaviours, tier.is_some(), now).map(str::to_owned);
            if s.code("aipl") != stage {
                wrong("AIPL", format!("{:?}", s.scores.get("aipl")), format!("{stage:?}"));
            }
        }
        let lifecycle: BTreeSet<String> = s.tags.iter().filter(|t| t.starts_with("lifecycle:")).cloned().collect();
        let expected: BTreeSet<String> =
            lifecycle_expected(&orders, rules.lifecycle_new_days, now).into_iter().map(str::to_owned).collect();
        if lifecycle != expected {
            wrong("lifecycle", format!("{lifecycle:?}"), format!("{expected:?}"));
        }
        if rules.high_value {
            let total = orders.iter().map(|o| o.net()).sum::<i64>() as f64;
            let count = orders.iter().filter(|o| o.counted()).count();
            let expected = (aov > 0.0 && total > 2.0 * aov) || count > 3;
            if s.tags.contains("high-value") != expected {
                wrong("high-value", format!("{}", s.tags.contains("high-value")), format!("{expected} (aov {aov})"));
            }
        }
        if rules.category_affinity {
            let held: BTreeSet<String> = s.tags.iter().filter(|t| t.starts_with("prefers:")).cloned().collect();
            let expected = affinity_expected(&orders, now);
            if held != expected {
                wrong("category affinity", format!("{held:?}"), format!("{expected:?}"));
            }
        }
    }
}

async fn check_points(api: &Api, shop: &Shop, seen: &BTreeMap<usize, Seen>, failures: &mut Vec<String>) {
    let multipliers: Vec<f64> = std::iter::once(1.0).chain(shop.rules.tiers.iter().map(|t| t.multiplier)).collect();
    let mut earned_by_order: BTreeMap<String, i64> = BTreeMap::new();
    for (&root, s) in seen {
        let account = api.get(&shop.owner, &format!("/v1/customers/{}/points", s.id)).await;
        let ledger = api.all(&shop.owner, &format!("/v1/customers/{}/points/ledger?limit=500", s.id)).await;
        let sum: i64 = ledger.iter().map(|e| e["points"].as_i64().unwrap()).sum();
        if sum != account["balance"].as_i64().unwrap() || sum != s.points {
            failures
                .push(format!("points of customer {}: ledger sums to {sum}, balance {}, listed {}", s.id, account["balance"], s.points));
        }
        let orders: BTreeMap<String, &Order> = shop.model.orders_of(root).into_iter().map(|o| (o.id.clone(), o)).collect();
        let mut clawed: BTreeMap<String, i64> = BTreeMap::new();
        for e in &ledger {
            let key = e["source_key"].as_str().unwrap_or_default();
            match e["kind"].as_str().unwrap() {
                "earn" if key.starts_with("order:") => {
                    let id = &key["order:".len()..];
                    let Some(order) = orders.get(id) else {
                        failures.push(format!("customer {} earned points for an order not theirs: {e}", s.id));
                        continue;
                    };
                    let points = e["points"].as_i64().unwrap();
                    let possible: Vec<i64> =
                        multipliers.iter().map(|m| (order.amount as f64 / 100.0 * shop.rules.points_per_unit * m).floor() as i64).collect();
                    if !possible.contains(&points) {
                        failures.push(format!("order {id} earned {points} points, not one of {possible:?}: {e}"));
                    }
                    if earned_by_order.insert(id.to_owned(), points).is_some() {
                        failures.push(format!("order {id} earned points twice"));
                    }
                }
                "clawback" => {
                    let id = e["order_id"].as_str().map(str::to_owned).unwrap_or_else(|| key.to_owned());
                    *clawed.entry(id).or_default() -= e["points"].as_i64().unwrap();
                }
                _ => {}
            }
        }
        for order in orders.values() {
            let Some(&earned) = earned_by_order.get(&order.id) else {
                if (order.amount as f64 / 100.0 * shop.rules.points_per_unit).floor() as i64 > 0 {
                    failures.push(format!("order {} of customer {} earned no points", order.id, s.id));
                }
                continue;
            };
            let expected = earned - (earned as i128 * order.net() as i128 / order.amount as i128) as i64;
            let taken = clawed.iter().filter(|(k, _)| k.contains(&order.id)).map(|(_, v)| *v).sum::<i64>();
            if taken != expected {
                failures.push(format!(
                    "order {} (amount {}, refunded {}): {taken} points clawed back, expected {expected}",
                    order.id,
                    order.amount,
                    order.refunded()
                ));
            }
        }
    }
}

async fn check_coupons(api: &Api, shop: &Shop, seen: &BTreeMap<usize, Seen>, failures: &mut Vec<String>) {
    let Some(template) = shop.template else { return };
    let stats = api.get(&shop.owner, &format!("/v1/coupon-templates/{template}/stats")).await;
    let terms = api.get(&shop.owner, &format!("/v1/coupon-templates/{template}")).await;
    let issued = stats["issued"].as_i64().unwrap();
    let face = terms["face_value"].as_i64().unwrap();
    if let Some(budget) = terms["budget_count"].as_i64()
        && issued > budget
    {
        failures.push(format!("template {template}: {issued} coupons issued over a budget of {budget}"));
    }
    if let Some(budget) = terms["budget_money"].as_i64()
        && issued * face > budget
    {
        failures.push(format!("template {template}: {} of face value issued over a budget of {budget}", issued * face));
    }
    let mut redeemed = 0;
    let mut orders_used = BTreeSet::new();
    let mut all = 0;
    for (&root, s) in seen {
        let coupons = api.get(&shop.owner, &format!("/v1/customers/{}/coupons", s.id)).await;
        for c in coupons["items"].as_array().unwrap_or_else(|| panic!("{coupons}")) {
            all += 1;
            if c["status"] != "redeemed" {
                continue;
            }
            redeemed += 1;
            let order = c["order_id"].as_str().unwrap_or_default();
            let mine = shop.model.orders_of(root).into_iter().find(|o| o.id == order);
            match mine {
                Some(o) if o.coupon.as_deref() == c["code"].as_str() => {}
                _ => failures.push(format!("coupon {} redeemed by order {order}, which did not carry it: {c}", c["code"])),
            }
            if !orders_used.insert(order.to_owned()) {
                failures.push(format!("order {order} redeemed two coupons"));
            }
        }
    }
    if all == issued && stats["redeemed"].as_i64() != Some(redeemed) {
        failures.push(format!("template {template}: stats say {} redeemed, coupons say {redeemed}: {stats}", stats["redeemed"]));
    }
}

/// Messages: each in a final state or held by quiet hours, none twice at the provider.
async fn check_messages(api: &Api, shop: &Shop, now: i64, failures: &mut Vec<String>) -> Vec<Value> {
    let messages = api.all(&shop.owner, "/v1/messages?limit=200").await;
    let mut sent = BTreeSet::new();
    let (mut suppressed, mut held) = (0, 0);
    for m in &messages {
        let id = m["id"].as_str().unwrap().to_owned();
        match m["status"].as_str().unwrap() {
            "sent" | "delivered" | "failed" => {
                sent.insert(id.clone());
            }
            "suppressed" => suppressed += 1,
            "queued" if m["next_attempt_at"].as_str().is_some_and(|t| ms(t.parse::<DateTime<Utc>>().unwrap()) > now) => held += 1,
            other => failures.push(format!("message {id} is {other} at rest: {m}")),
        }
        if let Some(&receipt) = shop.receipts.get(&id)
            && m["status"] != receipt
        {
            failures.push(format!("message {id} got a {receipt} receipt but is {}", m["status"]));
        }
    }
    let mut at_provider: BTreeMap<String, usize> = BTreeMap::new();
    for r in shop.provider.received() {
        let key = r.header("idempotency-key").or(r.header("webhook-id")).unwrap_or_default().to_owned();
        *at_provider.entry(key).or_default() += 1;
    }
    for (id, n) in at_provider.iter().filter(|(_, n)| **n > 1) {
        let detail = api.get(&shop.owner, &format!("/v1/messages/{id}")).await;
        failures.push(format!("message {id} went to the provider {n} times: {detail}"));
    }
    let keys: BTreeSet<String> = at_provider.into_keys().collect();
    if keys != sent {
        failures.push(format!(
            "{} messages queued, {suppressed} suppressed, {held} held: {} should have gone out, the provider got {} (only there: {:?}; only in kith: {:?})",
            messages.len(),
            sent.len(),
            keys.len(),
            keys.difference(&sent).collect::<Vec<_>>(),
            sent.difference(&keys).collect::<Vec<_>>()
        ));
    }
    messages
}

async fn check_journeys(api: &Api, shop: &Shop, seen: &BTreeMap<usize, Seen>, messages: &[Value], failures: &mut Vec<String>) {
    let message_ids: BTreeSet<&str> = messages.iter().filter_map(|m| m["id"].as_str()).collect();
    let mut used = BTreeSet::new();
    let by_id: BTreeMap<i64, usize> = seen.iter().map(|(&root, s)| (s.id, root)).collect();
    let mut runs_of: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for &(journey, within_days) in &shop.journeys {
        for run in api.all(&shop.owner, &format!("/v1/journeys/{journey}/runs?limit=500")).await {
            let mut customer = run["customer_id"].as_i64().unwrap();
            if !by_id.contains_key(&customer) {
                // A merged-away customer's finished run keeps its id; the profile answers with the survivor.
                customer = api.get(&shop.owner, &format!("/v1/customers/{customer}")).await["id"].as_i64().unwrap();
            }
            runs_of.entry(customer).or_default().push(run["id"].as_i64().unwrap());
            let mut steps = BTreeSet::new();
            for step in run["history"].as_array().unwrap() {
                if !steps.insert(step["step"].as_str().unwrap().to_owned()) {
                    failures.push(format!("journey {journey} run {} took step {} twice: {run}", run["id"], step["step"]));
                }
                if let Some(m) = step["message_id"].as_str() {
                    if !message_ids.contains(m) {
                        failures.push(format!("journey {journey} run {} queued message {m}, which does not exist", run["id"]));
                    }
                    if !used.insert(m.to_owned()) {
                        failures.push(format!("message {m} belongs to two journey steps"));
                    }
                }
            }
            if run["status"] == "converted" {
                // A goal counts from when the run's trigger happened (an order paid after the first
                // one converts the first-order run even when the engine reads both in one pass),
                // until the window's days after entry (a late import's old order enters today).
                let entered = ms(run["triggered_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap());
                let entry = ms(run["entered_at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap());
                if entered > entry {
                    failures.push(format!("journey {journey} run {} was triggered after it was entered: {run}", run["id"]));
                }
                let Some(&root) = by_id.get(&customer) else {
                    failures.push(format!("journey {journey} run {} belongs to no customer: {run}", run["id"]));
                    continue;
                };
                let goal = shop
                    .model
                    .orders_of(root)
                    .into_iter()
                    .filter(|o| o.paid_at >= entered && o.paid_at <= entry + within_days * DAY_MS)
                    .any(|o| run["revenue"].as_i64() == Some(o.amount));
                if !goal {
                    failures.push(format!(
                        "journey {journey} run {} converted without an order paid after its trigger and within {within_days} days of entry: {run}",
                        run["id"]
                    ));
                }
            }
        }
    }
    // A customer's own view lists the same runs.
    for s in seen.values().take(8) {
        let mine = api.get(&shop.owner, &format!("/v1/customers/{}/journeys", s.id)).await;
        let mut ids: Vec<i64> = mine["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        ids.sort_unstable();
        let mut expected = runs_of.get(&s.id).cloned().unwrap_or_default();
        expected.sort_unstable();
        if ids != expected {
            failures.push(format!("customer {}'s journeys list runs {ids:?}, the journeys list {expected:?}", s.id));
        }
    }
}

async fn check_segments(api: &Api, shop: &mut Shop, seen: &BTreeMap<usize, Seen>, now: i64, failures: &mut Vec<String>) {
    // Entry and exit events since the last look.
    loop {
        let page = api.get(&shop.owner, &format!("/v1/events?after={}&limit=1000", shop.events_after)).await;
        let items = page["items"].as_array().unwrap();
        for e in items {
            let kind = e["type"].as_str().unwrap();
            if kind != "segment.entered" && kind != "segment.exited" {
                continue;
            }
            let p = &e["payload"];
            let segment =
                p["segment_id"].as_i64().or(p["segment"]["id"].as_i64()).or(p["segment"].as_i64()).unwrap_or_else(|| panic!("{e}"));
            let customer = e["customer_id"].as_i64().unwrap();
            let members = shop.replayed.entry(segment).or_default();
            let fresh = if kind == "segment.entered" { members.insert(customer) } else { members.remove(&customer) };
            if !fresh {
                failures.push(format!("segment {segment}: {kind} for customer {customer} who already was there: {e}"));
            }
        }
        shop.events_after = page["next_after"].as_i64().unwrap_or(shop.events_after);
        if items.len() < 1000 {
            break;
        }
    }
    for segment in &shop.segments {
        let mut live = BTreeSet::new();
        let mut count = None;
        let mut cursor = String::new();
        loop {
            let page = api.get(&shop.owner, &format!("/v1/segments/{}/members?count=true&limit=1000{cursor}", segment.id)).await;
            count = count.or(page["count"].as_i64());
            live.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let expected: BTreeSet<i64> =
            seen.iter().filter(|(root, s)| (segment.test)(s, &shop.model, **root, now)).map(|(_, s)| s.id).collect();
        if live != expected || count != Some(expected.len() as i64) {
            failures.push(format!(
                "segment {} ({}): members {live:?} (count {count:?}), the definition gives {expected:?}",
                segment.name, segment.id
            ));
        }
        let replayed = shop.replayed.get(&segment.id).cloned().unwrap_or_default();
        if replayed != live {
            failures.push(format!(
                "segment {} ({}): entry and exit events leave {replayed:?}, the members are {live:?}",
                segment.name, segment.id
            ));
        }
    }
}

/// The dashboard's customer and sales figures against sums over the model, for a range of shop dates.
async fn check_overview(
    api: &Api,
    shop: &Shop,
    seen: &BTreeMap<usize, Seen>,
    zone: chrono_tz::Tz,
    from: NaiveDate,
    to: NaiveDate,
    failures: &mut Vec<String>,
) {
    let start = ms(zone.from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap()).earliest().unwrap().with_timezone(&Utc));
    let end = ms(zone.from_local_datetime(&to.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap()).earliest().unwrap().with_timezone(&Utc));
    let o = api.get(&shop.owner, &format!("/v1/metrics/overview?from={from}&to={to}")).await;
    let model = &shop.model;
    let (mut total, mut new, mut buyers, mut new_buyers, mut repeat) = (0, 0, 0, 0, 0);
    let (mut active, mut sleeping, mut churned, mut ever) = (0, 0, 0, 0);
    for &root in seen.keys() {
        let first_seen = model.first_seen(root);
        if first_seen >= end {
            continue;
        }
        total += 1;
        new += i64::from(first_seen >= start);
        let counted: Vec<i64> = model.orders_of(root).into_iter().filter(|o| o.counted()).map(|o| o.paid_at).collect();
        let in_range = counted.iter().filter(|&&t| t >= start && t < end).count();
        if in_range > 0 {
            buyers += 1;
            repeat += i64::from(in_range >= 2);
            new_buyers += i64::from(counted.iter().min().is_some_and(|&f| f >= start));
        }
        if let Some(last) = counted.iter().filter(|&&t| t < end).max() {
            ever += 1;
            let age = end - last;
            if age <= 90 * DAY_MS {
                active += 1;
            } else if age <= 180 * DAY_MS {
                sleeping += 1;
            } else {
                churned += 1;
            }
        }
    }
    let in_range: Vec<&Order> = model.orders.iter().filter(|o| o.paid_at >= start && o.paid_at < end).collect();
    let gmv: i64 = in_range.iter().map(|o| o.amount).sum();
    let first_ever = |o: &Order| {
        let root = model.root(o.person);
        model.orders_of(root).iter().all(|p| p.paid_at > o.paid_at || std::ptr::eq(*p, o))
    };
    let new_revenue: i64 = in_range.iter().filter(|o| first_ever(o)).map(|o| o.amount).sum();
    let refunds: i64 = model.orders.iter().flat_map(|o| &o.refunds).filter(|r| r.1 >= start && r.1 < end).map(|r| r.0).sum();
    let expected = json!({
        "customers": {"total": total, "new": new, "buyers": buyers, "new_buyers": new_buyers, "active": active, "sleeping": sleeping,
                      "churned": churned, "never_bought": total - ever},
        "sales": {"gmv": gmv, "orders": in_range.len(), "refunds": refunds, "net": gmv - refunds,
                  "new_customer_revenue": new_revenue, "returning_customer_revenue": gmv - new_revenue},
    });
    let mut actual = json!({"customers": {}, "sales": {}});
    for (part, keys) in [
        ("customers", &["total", "new", "buyers", "new_buyers", "active", "sleeping", "churned", "never_bought"][..]),
        ("sales", &["gmv", "orders", "refunds", "net", "new_customer_revenue", "returning_customer_revenue"][..]),
    ] {
        for key in keys {
            actual[part][key] = o[part][key].clone();
        }
    }
    let rate = o["customers"]["repurchase_rate"].as_f64();
    let expected_rate = (buyers > 0).then(|| repeat as f64 / buyers as f64);
    // A ratio: equal up to rounding, however it is divided.
    let rates_agree = match (rate, expected_rate) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-12,
        (a, b) => a == b,
    };
    if actual != expected || !rates_agree {
        failures.push(format!(
            "overview {from}..{to}: kith {actual} (repurchase {rate:?}), from the data {expected} (repurchase {expected_rate:?})"
        ));
    }
}

// ---------------------------------------------------------------- the test

async fn install_and_enable(api: &Api, admin: &str, shops: &[&Shop]) {
    use kith_test_plugins as p;
    for package in [
        p::RFM,
        p::AIPL,
        p::LIFECYCLE,
        p::HIGH_VALUE,
        p::CATEGORY_AFFINITY,
        p::TIERED_POINTS,
        p::WEBHOOK,
        p::SMS_HTTP,
        p::EMAIL_HTTP,
        p::PREDICT,
    ] {
        let response = api
            .client
            .post(format!("{}/v1/plugins", api.base))
            .header("authorization", admin)
            .header("content-type", "application/gzip")
            .body(package.tar_gz())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    for shop in shops {
        for plugin in &shop.plugins {
            let provider = &shop.provider;
            let connector = |config: Value| json!({"config": config, "grant": {"capabilities": ["log", "config", "http"], "allowed_hosts": [provider.host()]}});
            let body = match *plugin {
                "tiered-points" => {
                    let tiers: Vec<Value> = shop
                        .rules
                        .tiers
                        .iter()
                        .map(|t| json!({"name": t.name, "threshold": t.threshold, "multiplier": t.multiplier}))
                        .collect();
                    json!({"config": {"points_per_unit": shop.rules.points_per_unit, "tiers": tiers, "expiry_days": 365, "birthday_bonus": 100}})
                }
                "rfm" => json!({"config": {"window_days": shop.rules.rfm_window_days}}),
                "lifecycle" => json!({"config": {"new_days": shop.rules.lifecycle_new_days}}),
                // A shop of tens of buyers: fitted once a few bought twice over a month of history.
                "predict" => json!({"config": {"min_buyers": 10, "min_repeat_buyers": 3, "min_history_days": 30}}),
                "sms-http" => connector(json!({"endpoint": provider.url("/sms"), "api_key": "k", "sign_name": "【Kith】"})),
                "email-http" => connector(json!({"endpoint": provider.url("/email"), "api_key": "k", "from": "Kith <shop@kith.example>"})),
                "webhook" => connector(json!({"url": provider.url("/webhook"), "secret": "whsec_ZGVtby1zaWduaW5nLXNlY3JldC0xMjM0"})),
                _ => json!({"config": {}}),
            };
            api.put(&shop.owner, &format!("/v1/shop/plugins/{plugin}"), &body).await;
        }
    }
}

fn segment_defs(shop: &str) -> Vec<(&'static str, Value, Membership)> {
    let mut defs: Vec<(&'static str, Value, Membership)> = vec![
        ("Important value (RFM)", json!({"score": "rfm", "label": "important-value"}), |s, _, _, _| {
            s.code("rfm").as_deref() == Some("important-value")
        }),
        ("New or active", json!({"or": [{"tag": "lifecycle:new"}, {"tag": "lifecycle:active"}]}), |s, _, _, _| {
            s.tags.contains("lifecycle:new") || s.tags.contains("lifecycle:active")
        }),
    ];
    if shop == "A" {
        defs.extend([
            (
                "Sleeping big spenders",
                json!({"and": [{"stat": "total_spent", "op": "gte", "value": 100_000}, {"stat": "days_since_last_order", "op": "gt", "value": 45}]}),
                (|s: &Seen, _: &Model, _: usize, now: i64| {
                    let last = s.stats["last_order_at"].as_str().map(|t| ms(t.parse::<DateTime<Utc>>().unwrap()));
                    s.stats["total_spent"].as_i64().unwrap() >= 100_000 && last.is_some_and(|l| (now - l) / DAY_MS > 45)
                }) as Membership,
            ),
            ("Points 500+", json!({"stat": "points", "op": "gte", "value": 500}), |s, _, _, _| s.points >= 500),
            (
                "Carted this week, no order",
                json!({"and": [{"behaviour": "cart", "window": {"last_days": 7}}, {"not": {"purchase": {}, "window": {"last_days": 7}}}]}),
                |_, m, root, now| {
                    let from = now - 7 * DAY_MS;
                    m.behaviours_of(root).iter().any(|b| b.kind == "cart" && b.at >= from && b.at <= now)
                        && !m.orders_of(root).iter().any(|o| o.counted() && o.paid_at >= from && o.paid_at <= now)
                },
            ),
            ("Gold or better", json!({"profile": "tier", "op": "in", "value": ["gold", "platinum"]}), |s, _, _, _| {
                matches!(s.tier.as_deref(), Some("gold" | "platinum"))
            }),
            ("High churn risk (predict)", json!({"score": "predict.churn_risk", "label": "high"}), |s, _, _, _| {
                s.code("predict.churn_risk").as_deref() == Some("high")
            }),
        ]);
    }
    defs
}

async fn create_segments(api: &Api, shop: &mut Shop) {
    for (name, definition, test) in segment_defs(shop.name) {
        let created = api.post(&shop.owner, "/v1/segments", &json!({"name": name, "definition": definition})).await;
        shop.segments.push(Segment { id: created["id"].as_i64().unwrap(), name, test });
    }
}

async fn create_loyalty_and_journeys(api: &Api, shop: &mut Shop, now: i64) {
    let template = api
        .post(
            &shop.owner,
            "/v1/coupon-templates",
            &json!({"name": "满100减10", "face_value": 1000, "threshold": 10_000, "valid_days": 30, "per_customer_limit": 3,
                    "budget_count": 40, "budget_money": 40_000}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    shop.template = Some(template);
    let reward = api
        .post(
            &shop.owner,
            "/v1/rewards",
            &json!({"name": "10-yuan coupon", "points_cost": 500, "coupon_template_id": template, "stock": 25, "active": true}),
        )
        .await;
    shop.reward = reward["id"].as_i64();
    // E-mail's quiet hours surround the clock's time of day, when the simulated days begin:
    // what a journey sends then is held until they end, half a day before the next.
    let local = at(now).with_timezone(&chrono_tz::Asia::Shanghai).time();
    let quiet = |hours: i64| (local + Duration::hours(hours)).format("%H:%M").to_string();
    api.put(
        &shop.owner,
        "/v1/shop/settings/messaging",
        &json!({"channels": {"sms": {"frequency_cap": {"max": 2, "window_hours": 168}, "cost_per_message": 5},
                             "email": {"quiet_hours": {"start": quiet(-1), "end": quiet(2)}}}}),
    )
    .await;
    let sleeping = shop.segments.iter().find(|s| s.name == "Sleeping big spenders").unwrap().id;
    let journeys = [
        (
            "First order: member card, then a coupon",
            30,
            json!({"trigger": {"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]},
            "goal": {"event": "order.paid", "within_days": 30}, "holdout_percent": 10,
            "start": "card", "steps": {
                "card": {"send": {"channel": "sms", "template": "SMS_MEMBER_CARD", "variables": {"name": "{{customer.name}}"}}, "next": "wait"},
                "wait": {"wait": {"days": 15, "until": "10:00"}, "next": "coupon"},
                "coupon": {"coupon": {"template_id": template}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "SMS_COUPON", "variables": {"code": "{{coupon.code}}"}}}
            }}),
        ),
        (
            "Birthday greeting",
            14,
            json!({"trigger": {"date": {"field": "birthday", "offset_days": -7, "at": "10:00"}},
            "entry": {"reentry": true, "min_interval_days": 300},
            "goal": {"event": "order.paid", "within_days": 14},
            "start": "gift", "steps": {
                "gift": {"coupon": {"template_id": template}, "next": "greet"},
                "greet": {"send": {"channel": "sms", "template": "SMS_BIRTHDAY", "variables": {"code": "{{coupon.code}}"}}}
            }}),
        ),
        (
            "Win back sleeping big spenders",
            90,
            json!({"trigger": {"segment": sleeping}, "goal": {"event": "order.paid", "within_days": 90}, "holdout_percent": 10,
            "start": "first", "steps": {
                "first": {"send": {"channel": "webhook", "template": "WINBACK"}, "next": "wait"},
                "wait": {"wait": {"days": 30}, "next": "second"},
                "second": {"send": {"channel": "sms", "template": "SMS_WINBACK_2"}}
            }}),
        ),
        (
            "Cart reminder after two hours",
            3,
            json!({"trigger": {"event": "behaviour.recorded", "where": [{"field": "kind", "op": "eq", "value": "cart"}]},
            "goal": {"event": "order.paid", "within_days": 3},
            "start": "wait", "steps": {
                "wait": {"wait": {"hours": 2}, "next": "bought"},
                "bought": {"branch": {"event": "order.paid"}, "no": "remind"},
                "remind": {"send": {"channel": "email", "template": "EMAIL_CART"}}
            }}),
        ),
    ];
    for (name, within, definition) in journeys {
        let created = api.post(&shop.owner, "/v1/journeys", &json!({"name": name, "definition": definition})).await;
        let id = created["id"].as_i64().unwrap_or_else(|| panic!("{created}"));
        let active = api.post(&shop.owner, &format!("/v1/journeys/{id}/activate"), &json!({})).await;
        assert_eq!(active["status"], "active", "{active}");
        shop.journeys.push((id, within));
    }
}

/// Past orders, refunds and behaviours of the shop's first customers, paid before the clock's start.
fn history(shop: &mut Shop, customers: usize, now: i64) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..customers {
        let browser = shop.rng.random_bool(0.2);
        let first_seen = now - shop.rng.random_range(30..420) * DAY_MS - shop.rng.random_range(0..DAY_MS);
        let (p, upsert) = shop.new_person(first_seen, browser);
        events.push(upsert);
        let mut t = first_seen + shop.rng.random_range(0..3 * DAY_MS);
        let orders = if browser { 0 } else { shop.rng.random_range(0..6) };
        for _ in 0..orders {
            if t >= now - DAY_MS {
                break;
            }
            events.push(shop.order_event(p, t, None));
            if shop.rng.random_bool(0.15) {
                let o = shop.model.orders.len() - 1;
                let amount = if shop.rng.random_bool(0.5) { shop.model.orders[o].amount } else { shop.model.orders[o].amount / 3 };
                events.push(shop.refund_event(o, amount, t + 2 * DAY_MS));
            }
            t += shop.rng.random_range(5..90) * DAY_MS;
        }
        for _ in 0..shop.rng.random_range(0..4) {
            let at_ms = now - shop.rng.random_range(1..100 * DAY_MS);
            if at_ms > first_seen {
                events.push(shop.behaviour_event(p, at_ms));
            }
        }
    }
    events
}

/// Shop B's history arrives as a CSV export through `kith import orders`.
fn import_csv(dir: &Path, db: &str, shop: &mut Shop, customers: usize, now: i64) {
    let mut csv = String::from("订单号,手机号,付款时间,实付金额,商品编码,类目,数量,单价\n");
    for _ in 0..customers {
        let p = shop.model.add_person(None, None, None, 0);
        let phone = format!("+861392{p:07}");
        shop.model.persons[p].phone = Some(phone.clone());
        let mut t = now - shop.rng.random_range(20..300) * DAY_MS;
        t -= t % 1000;
        shop.model.persons[p].first_seen = t;
        for _ in 0..shop.rng.random_range(1..4) {
            if t >= now - DAY_MS {
                break;
            }
            shop.next_order += 1;
            let id = format!("B-CSV{:05}", shop.next_order);
            let (sku, category, price) = CATALOGUE[shop.rng.random_range(0..CATALOGUE.len())];
            shop.model.orders.push(Order {
                id: id.clone(),
                person: p,
                amount: price,
                paid_at: t,
                refunds: Vec::new(),
                categories: [category.to_owned()].into(),
                coupon: None,
            });
            let when = at(t).format("%Y-%m-%d %H:%M:%S");
            csv.push_str(&format!(
                "{id},{},{when},{}.{:02},{sku},{category},1,{}.{:02}\n",
                &phone[3..],
                price / 100,
                price % 100,
                price / 100,
                price % 100
            ));
            t += shop.rng.random_range(3..60) * DAY_MS;
        }
    }
    let file = dir.join("shop-b-orders.csv");
    std::fs::write(&file, csv).unwrap();
    let out = kith(dir, &["--database", db, "import", "orders", file.to_str().unwrap(), "--shop", &shop.id.to_string()]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("0 rows rejected"), "{summary}");
}

/// One simulated day's traffic, at the clock's `now`: events carry times within the last hours.
async fn day_traffic(api: &Api, shop: &mut Shop, seen: &BTreeMap<usize, Seen>, new_per_day: f64, now: i64) {
    let mut events = Vec::new();
    let earlier = |rng: &mut ChaCha8Rng| now - rng.random_range(0..6 * 3_600_000);
    // New customers, most of whom buy at once.
    let arrivals = new_per_day.floor() as usize + usize::from(shop.rng.random_bool(new_per_day.fract()));
    for _ in 0..arrivals {
        let t = earlier(&mut shop.rng);
        let browser = shop.rng.random_bool(0.25);
        let (p, upsert) = shop.new_person(t, browser);
        events.push(upsert);
        // A minute later, but never after the clock's now (an order paid in the future would
        // trigger a journey after the run it starts was entered).
        let next = (t + 60_000).min(now);
        if !browser && shop.rng.random_bool(0.7) {
            events.push(shop.order_event(p, next, None));
        } else {
            events.push(shop.behaviour_event(p, next));
        }
    }
    // Repeat orders, some with a coupon the customer holds.
    let roots: Vec<usize> =
        shop.model.roots().into_iter().filter(|&r| shop.model.persons[r].nick.is_none() || shop.model.persons[r].phone.is_some()).collect();
    for &root in &roots {
        if !shop.rng.random_bool(0.06) {
            continue;
        }
        let mut coupon = None;
        if let Some(s) = seen.get(&root)
            && shop.rng.random_bool(0.7)
        {
            let coupons = api.get(&shop.owner, &format!("/v1/customers/{}/coupons", s.id)).await;
            coupon = coupons["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["status"] == "issued")
                .and_then(|c| c["code"].as_str())
                .map(str::to_owned);
        }
        let person =
            (0..shop.model.persons.len()).find(|&p| shop.model.root(p) == root && shop.model.persons[p].phone.is_some()).unwrap_or(root);
        let t = earlier(&mut shop.rng);
        events.push(shop.order_event(person, t, coupon));
    }
    // Refunds of recent orders, whole or in part.
    if shop.rng.random_bool(0.3) {
        let recent: Vec<usize> = (0..shop.model.orders.len())
            .filter(|&o| shop.model.orders[o].paid_at > now - 20 * DAY_MS && shop.model.orders[o].counted())
            .collect();
        if !recent.is_empty() {
            let o = recent[shop.rng.random_range(0..recent.len())];
            let left = shop.model.orders[o].net();
            let amount = if shop.rng.random_bool(0.5) { left } else { (left / 2).max(1) };
            events.push(shop.refund_event(o, amount, now));
        }
    }
    // Behaviours.
    let all: Vec<usize> = (0..shop.model.persons.len()).collect();
    for _ in 0..shop.rng.random_range(1..5) {
        let p = all[shop.rng.random_range(0..all.len())];
        let t = earlier(&mut shop.rng);
        events.push(shop.behaviour_event(p, t));
    }
    // A browser known by nickname tells their phone: their customers merge.
    if shop.rng.random_bool(0.15) {
        let browsers: Vec<usize> = shop.model.roots().into_iter().filter(|&r| shop.model.persons[r].phone.is_none()).collect();
        let buyers: Vec<usize> = shop.model.roots().into_iter().filter(|&r| shop.model.persons[r].phone.is_some()).collect();
        if !browsers.is_empty() && !buyers.is_empty() {
            let (b, p) = (browsers[shop.rng.random_range(0..browsers.len())], buyers[shop.rng.random_range(0..buyers.len())]);
            let nick = shop.model.persons[b].nick.clone().unwrap();
            let phone = shop.model.persons[p].phone.clone().unwrap();
            shop.model.union(b, p);
            events.push(json!({"id": shop.event_id(), "type": "customer.upsert", "occurred_at": at(now),
                               "identities": [{"kind": "nick", "value": nick}, {"kind": "phone", "value": phone}]}));
        }
    }
    ingest(api, shop, events).await;
}

/// Redemptions of the points-mall reward by customers who can afford it, with the bus idle;
/// each request is sent twice, as a client retrying would.
async fn redemptions(api: &Api, shop: &mut Shop, now: i64) {
    let Some(reward) = shop.reward else { return };
    for c in api.all(&shop.owner, "/v1/customers?limit=200").await {
        let (id, points) = (c["id"].as_i64().unwrap(), c["points"].as_i64().unwrap());
        if points < 500 || !shop.rng.random_bool(0.1) {
            continue;
        }
        let key = format!("redeem-{id}-{now}");
        let path = format!("/v1/customers/{id}/redemptions");
        let body = json!({"reward_id": reward, "idempotency_key": key});
        let (status, first) = api.call(reqwest::Method::POST, &shop.owner, &path, Some(&body)).await;
        let (again_status, again) = api.call(reqwest::Method::POST, &shop.owner, &path, Some(&body)).await;
        let balance = api.get(&shop.owner, &format!("/v1/customers/{id}/points")).await["balance"].as_i64().unwrap();
        if (200..300).contains(&status) {
            assert!(
                (200..300).contains(&again_status) && again["id"] == first["id"],
                "a resent redemption answers the first: {first} / {again}"
            );
            assert_eq!(balance, points - 500, "a redemption spends its points once: {first}");
        } else {
            assert!(status == 409 || status == 422, "redemption refused with {status}: {first}");
            assert_eq!(balance, points, "a refused redemption spends nothing: {first}");
        }
    }
}

/// Delivery reports for the SMS the provider took since the last call.
async fn receipts(api: &Api, shop: &mut Shop) {
    let channels = api.get(&shop.owner, "/v1/shop/channels").await;
    let Some(path) = channels["items"].as_array().unwrap().iter().find(|c| c["channel"] == "sms").and_then(|c| c["receipt_path"].as_str())
    else {
        return;
    };
    let mut reports = Vec::new();
    for (n, r) in shop.provider.received().iter().enumerate().filter(|(_, r)| r.path == "/sms") {
        let id = r.header("idempotency-key").unwrap_or_default().to_owned();
        if id.is_empty() || shop.receipts.contains_key(&id) {
            continue;
        }
        let delivered = shop.rng.random_bool(0.85);
        shop.receipts.insert(id.clone(), if delivered { "delivered" } else { "failed" });
        reports.push(json!({"out_id": id, "biz_id": format!("biz-{}", n + 1), "status": if delivered { "DELIVERED" } else { "FAILED" },
                            "err_code": if delivered { Value::Null } else { json!("MOBILE_NOT_ON_SERVICE") }}));
    }
    if !reports.is_empty() {
        api.post("", path, &Value::Array(reports)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_living_shop_keeps_every_figure_true_for_weeks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("living.db");
    living_shop(dir.path(), db.to_str().unwrap()).await;
}

/// The same shop, the same weeks and the same checks on PostgreSQL: the binary is given a
/// `postgres://` URL for `--database` and `KITH_DATABASE`, and migrates the empty database itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_living_shop_on_postgresql_keeps_every_figure_true_for_weeks() {
    // The cluster's set-up blocks (its own runtime): off this runtime's threads.
    let (cluster, url) = tokio::task::spawn_blocking(|| {
        let cluster = kith_postgres::cluster::Cluster::start().expect("a throwaway PostgreSQL starts");
        let url = cluster.create_database("living").expect("a database for the living shop");
        (cluster, url)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    living_shop(dir.path(), &url).await;
    drop(cluster);
}

/// The living shop on `db_arg`, a SQLite file's path or a `postgres://` URL, as the binary takes
/// it (`--database`, `KITH_DATABASE`). Nothing here is particular to one backend: the shop is
/// read only through the binary's HTTP API and commands, never from the database itself, so
/// there is no SQLite-only check (file sizes, `kith check`) to leave out on PostgreSQL.
async fn living_shop(dir: &Path, db_arg: &str) {
    let started = Instant::now();
    let scale = scale();
    let mut ids = Vec::new();
    for (name, zone) in [("Living Shop", "Asia/Shanghai"), ("Second Shop", "UTC")] {
        let shop = kith_json(
            dir,
            &["--database", db_arg, "admin", "create-shop", "--name", name, "--time-zone", zone, "--currency", "CNY", "--region", "CN"],
        );
        let id = shop["id"].as_i64().unwrap();
        let key = kith_json(dir, &["--database", db_arg, "admin", "create-key", "--shop", &id.to_string(), "--role", "owner"]);
        ids.push((id, format!("Bearer {}", key["token"].as_str().unwrap())));
    }
    let admin =
        format!("Bearer {}", kith_json(dir, &["--database", db_arg, "admin", "create-key", "--role", "admin"])["token"].as_str().unwrap());
    let tiers = vec![
        Tier { name: "silver", threshold: 50_000, multiplier: 1.0 },
        Tier { name: "gold", threshold: 200_000, multiplier: 1.5 },
        Tier { name: "platinum", threshold: 600_000, multiplier: 2.0 },
    ];
    let mut a = Shop::new(
        "A",
        ids[0].0,
        ids[0].1.clone(),
        vec![
            "rfm",
            "aipl",
            "lifecycle",
            "high-value",
            "category-affinity",
            "tiered-points",
            "predict",
            "sms-http",
            "email-http",
            "webhook",
        ],
        Rules {
            rfm_window_days: 365,
            lifecycle_new_days: 30,
            points_per_unit: 1.0,
            tiers,
            aipl: true,
            high_value: true,
            category_affinity: true,
        },
        25,
    );
    let mut b = Shop::new(
        "B",
        ids[1].0,
        ids[1].1.clone(),
        vec!["rfm", "lifecycle", "tiered-points", "webhook"],
        Rules {
            rfm_window_days: 90,
            lifecycle_new_days: 14,
            points_per_unit: 2.0,
            tiers: Vec::new(),
            aipl: false,
            high_value: false,
            category_affinity: false,
        },
        52,
    );

    let mut kith = Kith::start(dir, db_arg);
    let api = Api::new(reqwest::Client::new(), kith.url.clone());
    let mut now = ms(api.get(&admin, "/v1/admin/clock").await["now"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap());
    let start = now;

    // A merchant's first day: segments, plugins, the history import, then the journeys.
    create_segments(&api, &mut a).await;
    create_segments(&api, &mut b).await;
    install_and_enable(&api, &admin, &[&a, &b]).await;
    let events = history(&mut a, scale.history[0], now);
    ingest(&api, &a, events).await;
    import_csv(dir, db_arg, &mut b, scale.history[1], now);
    create_loyalty_and_journeys(&api, &mut a, now).await;
    for shop in [&a, &b] {
        settle(&api, shop, now, true).await;
    }
    eprintln!("living shop: set up in {:?}", started.elapsed());

    let zones = [chrono_tz::Asia::Shanghai, chrono_tz::UTC];
    let mut failures: Vec<String> = Vec::new();
    for day in 1..=scale.days {
        let mut seen = Vec::new();
        for shop in [&a, &b] {
            seen.push(read_customers(&api, shop).await);
        }
        day_traffic(&api, &mut a, &seen[0], scale.new_per_day[0], now).await;
        day_traffic(&api, &mut b, &seen[1], scale.new_per_day[1], now).await;
        // A late second import, on day 20: orders paid weeks ago for customers who are in journeys now.
        if day == 20 {
            // The newest customers, who entered the first-order journey lately.
            let roots: Vec<usize> = a.model.roots().into_iter().rev().filter(|&r| a.model.persons[r].phone.is_some()).take(6).collect();
            let events: Vec<Value> = roots.into_iter().map(|r| a.order_event(r, now - 40 * DAY_MS, None)).collect();
            ingest(&api, &a, events).await;
        }
        for shop in [&a, &b] {
            settle(&api, shop, now, false).await;
        }
        redemptions(&api, &mut a, now).await;
        settle_all(&api, &[&a, &b], now, false).await;
        // The day passes in two halves, so that messages held by quiet hours go out.
        now = clock(&api, &admin, 12 * 3600).await;
        settle_all(&api, &[&a, &b], now, false).await;
        now = clock(&api, &admin, 12 * 3600).await;
        for shop in [&a, &b] {
            settle(&api, shop, now, true).await;
        }
        receipts(&api, &mut a).await;
        receipts(&api, &mut b).await;
        settle_all(&api, &[&a, &b], now, true).await;

        let problems = kith.new_problems();
        assert!(problems.is_empty(), "day {day}: the server logged errors:\n{}", problems.join("\n"));
        for (i, shop) in [&mut a, &mut b].into_iter().enumerate() {
            let seen = read_customers(&api, shop).await;
            let mut f = Vec::new();
            check_stats(shop, &seen, &mut f);
            check_plugins(shop, &seen, now, &mut f);
            // An AIPL or tier finding shows the customer's tier history, which says when the tier came.
            let tiered: Vec<i64> = f
                .iter()
                .filter(|f| f.starts_with("AIPL") || f.starts_with("tier"))
                .filter_map(|f| f.split_whitespace().nth(3).and_then(|id| id.parse().ok()))
                .collect();
            for id in tiered {
                let account = api.get(&shop.owner, &format!("/v1/customers/{id}/points")).await;
                f.push(format!("(customer {id}'s tier history: {})", account["tier_history"]));
            }
            check_points(&api, shop, &seen, &mut f).await;
            check_coupons(&api, shop, &seen, &mut f).await;
            let messages = check_messages(&api, shop, now, &mut f).await;
            check_journeys(&api, shop, &seen, &messages, &mut f).await;
            // Tracked membership may trail a sweep: wait for it, then judge.
            let deadline = Deadline::new();
            loop {
                let mut s = Vec::new();
                check_segments(&api, shop, &seen, now, &mut s).await;
                if s.is_empty() || Instant::now() > deadline.until {
                    f.extend(s);
                    break;
                }
                deadline.tick("segments", &s).await;
            }
            if day % 10 == 0 || day == scale.days {
                let today = at(now).with_timezone(&zones[i]).date_naive();
                let first = at(start).with_timezone(&zones[i]).date_naive();
                for (from, to) in [
                    (first - Duration::days(400), first - Duration::days(1)),
                    (first - Duration::days(200), first - Duration::days(100)),
                    (first - Duration::days(30), first + Duration::days(5)),
                    (today - Duration::days(6), today),
                    (first, today),
                    (first - Duration::days(500), today),
                ] {
                    check_overview(&api, shop, &seen, zones[i], from, to, &mut f).await;
                }
            }
            if day % 10 == 0 {
                let sizes: Vec<usize> = shop.segments.iter().map(|g| shop.replayed.get(&g.id).map_or(0, BTreeSet::len)).collect();
                eprintln!(
                    "  shop {}: {} customers, {} orders, {} messages ({} at the provider), segment sizes {sizes:?}",
                    shop.name,
                    seen.len(),
                    shop.model.orders.len(),
                    messages.len(),
                    shop.provider.received().len()
                );
            }
            failures.extend(f.into_iter().map(|f| format!("day {day}, shop {}: {f}", shop.name)));
        }
        // KITH_LIVING_ALL=1 goes on to the last day and reports every broken invariant then.
        if std::env::var_os("KITH_LIVING_ALL").is_none() {
            assert!(failures.is_empty(), "{} invariants broken:\n{}", failures.len(), failures.join("\n"));
        } else if !failures.is_empty() {
            eprintln!("living shop: day {day}: {} invariants broken so far", failures.len());
            for f in failures.iter().filter(|f| f.starts_with(&format!("day {day},"))) {
                eprintln!("  {f}");
            }
        }
        eprintln!("living shop: day {day} at {} ({:?})", at(now), started.elapsed());
    }
    // Every part of the shop was exercised.
    for &(journey, _) in &a.journeys {
        let runs = api.get(&a.owner, &format!("/v1/journeys/{journey}/runs?limit=1")).await;
        assert!(!runs["items"].as_array().unwrap().is_empty(), "journey {journey} never ran");
    }
    assert!(a.receipts.values().any(|r| *r == "delivered"), "receipts were posted");
    // Predict ran beside the rest every day without failing (`settle`). This shop's people never
    // stop buying (no one leaves after a purchase), which BG/NBD cannot identify (a → 0): it says
    // so in its status and scores no one, and the churn-risk segment follows the scores it reads.
    let predict = api.get(&a.owner, "/v1/shop/plugins/predict").await;
    let report = &predict["report"];
    let risk = api.get(&a.owner, "/v1/metrics/scores/predict.churn_risk").await;
    match report["state"].as_str() {
        Some("fitted") => assert!(risk["customers"].as_i64().unwrap() > 0, "a fitted shop's buyers hold a churn risk: {risk}"),
        Some("refused") => {
            assert!(!report["reasons"].as_array().unwrap().is_empty(), "a refusal says why: {report}");
            assert_eq!(risk["customers"], 0, "a refused fit scores no one: {risk}");
        }
        other => panic!("predict's status says {other:?}: {report}"),
    }
    assert!(!a.model.orders.iter().all(|o| o.coupon.is_none()), "some orders used a coupon");
    assert!(a.model.persons.iter().enumerate().any(|(i, p)| p.parent != i), "some customers merged");
    let problems = kith.new_problems();
    assert!(problems.is_empty(), "the server logged errors:\n{}", problems.join("\n"));
    assert!(
        failures.is_empty(),
        "{} invariants broken (the first 100):\n{}",
        failures.len(),
        failures[..failures.len().min(100)].join("\n")
    );
    eprintln!("living shop: {} days in {:?}", scale.days, started.elapsed());
}
