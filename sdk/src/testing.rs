//! Native tests of a plugin, on the fixtures `kith plugin test` runs (feature `testing`).
//!
//! Outside WebAssembly the host's imports are not linked; with this feature the SDK's host
//! functions ([`crate::config`], [`crate::kv`], [`crate::log`], [`crate::now`],
//! [`crate::read_customer`], [`crate::histories`], [`crate::shop_context`],
//! [`crate::summaries`], and `http::request` for connectors) answer from a fake host kept per
//! test thread, which a [`Fixture`] fills. So the plugin's own exports run in `cargo test`:
//!
//! ```no_run
//! # #[cfg(feature = "tag-rule")] fn demo() {
//! use kith_sdk::testing::Fixture;
//! # struct Rule;
//! # impl kith_sdk::TagRule for Rule {
//! #     fn evaluate(_: &kith_sdk::ShopContext, _: Vec<kith_sdk::Subject>) -> Result<Vec<kith_sdk::Decision>, kith_sdk::Error> { Ok(vec![]) }
//! # }
//! let fixture = Fixture::load("fixtures/basic.json");
//! let decisions = <Rule as kith_sdk::TagRule>::evaluate(&fixture.context(), fixture.subjects()).unwrap();
//! fixture.assert_decisions(&decisions);
//! # }
//! ```
//!
//! The fixture format is the one of `kith plugin test` (docs/plugins.md): customers in the API's
//! JSON shape, partial. What the native run does not do that the kernel's host does: blank the
//! parts of a customer the manifest does not `read`, check the grant and the limits. For those,
//! `kith plugin test` runs the built component.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::{
    Behaviour, BehaviourKind, BuyerSummary, Customer, Decision, Distribution, Event, History, InboundRequest, LogLevel, Message, Order,
    OrderItem, Profile, Score, ShopContext, Stats, Subject, Tag,
};

/// Header names (lower-case) and values.
pub type Headers = Vec<(String, String)>;
/// A scripted answer to an outbound request: status, headers, body.
pub type Answer = (u16, Headers, Vec<u8>);
/// An outbound request made: method, URL, headers, body.
pub type Request = (String, String, Headers, Vec<u8>);

/// What the fake host answers, and what the plugin did to it.
#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    /// The configuration, JSON text.
    pub config: String,
    /// The key-value space.
    pub kv: BTreeMap<String, Vec<u8>>,
    /// Lines logged.
    pub logs: Vec<(LogLevel, String)>,
    /// The kernel's clock, milliseconds.
    pub now: i64,
    /// Customers `read_customer` finds.
    pub customers: BTreeMap<i64, Customer>,
    /// Histories by customer id (orders and behaviours at any time; `histories` keeps those since the time asked).
    pub histories: BTreeMap<i64, History>,
    /// What `shop_context` answers (its `window_days` set to the one asked).
    pub context: Option<ShopContext>,
    /// Buyers `summaries` pages through.
    pub buyers: Vec<BuyerSummary>,
    /// Answers to outbound HTTP requests (connectors), in order; the last repeats.
    pub responses: Vec<Answer>,
    /// Requests made: method, URL, headers, body.
    pub requests: Vec<Request>,
}

thread_local! {
    static HOST: RefCell<FakeHost> = RefCell::new(FakeHost { config: "{}".into(), ..FakeHost::default() });
}

/// Set this thread's fake host.
pub fn install(host: FakeHost) {
    HOST.with(|h| *h.borrow_mut() = host);
}

/// This thread's fake host as it is now (what the plugin logged and wrote, the requests it made).
pub fn host() -> FakeHost {
    HOST.with(|h| h.borrow().clone())
}

fn with<T>(f: impl FnOnce(&mut FakeHost) -> T) -> T {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// The host's imports, answered by this thread's [`FakeHost`]: the same signatures as the bindings'.
pub(crate) mod fake {
    pub mod log {
        pub use crate::LogLevel as Level;

        pub fn write(level: Level, message: &str) -> Result<(), crate::Error> {
            super::super::with(|h| h.logs.push((level, message.to_owned())));
            Ok(())
        }
    }

    pub mod config {
        pub fn get() -> Result<String, crate::Error> {
            Ok(super::super::with(|h| h.config.clone()))
        }
    }

    pub mod kv {
        pub fn get(key: &str) -> Result<Option<Vec<u8>>, crate::Error> {
            Ok(super::super::with(|h| h.kv.get(key).cloned()))
        }

        pub fn set(key: &str, value: &[u8]) -> Result<(), crate::Error> {
            super::super::with(|h| h.kv.insert(key.to_owned(), value.to_vec()));
            Ok(())
        }

        pub fn delete(key: &str) -> Result<(), crate::Error> {
            super::super::with(|h| h.kv.remove(key));
            Ok(())
        }
    }

    pub mod clock {
        pub fn now() -> Result<i64, crate::Error> {
            Ok(super::super::with(|h| h.now))
        }
    }

    pub mod customers {
        use crate::{Customer, Error, History};

        pub fn read(id: i64) -> Result<Customer, Error> {
            super::super::with(|h| h.customers.get(&id).cloned()).ok_or_else(|| Error::NotFound(format!("customer {id}")))
        }

        pub fn histories(ids: &[i64], since: i64) -> Result<Vec<History>, Error> {
            if ids.len() > 1000 {
                return Err(Error::Invalid(format!("{} ids; at most 1000 per call", ids.len())));
            }
            Ok(super::super::with(|h| {
                ids.iter()
                    .filter(|id| h.customers.contains_key(id))
                    .map(|&id| {
                        let mut history = h.histories.get(&id).cloned().unwrap_or(History {
                            customer_id: id,
                            orders: vec![],
                            behaviours: vec![],
                            truncated: false,
                        });
                        history.orders.retain(|o| o.paid_at >= since);
                        history.behaviours.retain(|b| b.occurred_at >= since);
                        history
                    })
                    .collect()
            }))
        }
    }

    pub mod shop {
        use crate::{Error, ShopContext};

        pub fn context(window_days: Option<u32>) -> Result<ShopContext, Error> {
            let context =
                super::super::with(|h| h.context.clone()).ok_or_else(|| Error::NotFound("no shop context in the fake host".into()))?;
            Ok(ShopContext { window_days, ..context })
        }
    }

    pub mod summaries {
        use crate::{BuyerSummary, Error};

        pub fn buyers(after: Option<i64>, limit: u32) -> Result<Vec<BuyerSummary>, Error> {
            Ok(super::super::with(|h| {
                let mut buyers: Vec<BuyerSummary> = h.buyers.iter().filter(|b| after.is_none_or(|a| b.customer_id > a)).cloned().collect();
                buyers.sort_by_key(|b| b.customer_id);
                buyers.truncate(limit as usize);
                buyers
            }))
        }
    }

    /// An outbound request, answered by the next scripted response.
    #[cfg(feature = "channel-connector")]
    pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<crate::http::Response, crate::Error> {
        super::with(|h| {
            h.requests.push((
                method.to_owned(),
                url.to_owned(),
                headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned())).collect(),
                body.to_vec(),
            ));
            let answered = h.requests.len() - 1;
            let (status, headers, body) = h
                .responses
                .get(answered.min(h.responses.len().saturating_sub(1)))
                .cloned()
                .ok_or_else(|| crate::Error::Failed("the fake host has no response scripted".into()))?;
            Ok(crate::http::Response { status, headers, body })
        })
    }
}

/// A fixture of `kith plugin test`, read natively into the SDK's types.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The fixture as written.
    pub json: Value,
    now: i64,
    customers: BTreeMap<i64, Customer>,
    context: ShopContext,
}

/// The default clock of a fixture, as `kith plugin test`'s: 2026-01-01T00:00:00Z.
const DEFAULT_NOW: i64 = 1_767_225_600_000;

impl Fixture {
    /// Read a fixture file and install it as this thread's fake host (its config, kv, clock,
    /// customers, histories, shop context, buyers, and its provider's answers). Panics with the
    /// reason when the file is not a fixture: this is for tests.
    pub fn load(path: impl AsRef<Path>) -> Fixture {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Fixture::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A fixture from its JSON text, installed as [`Fixture::load`] does.
    pub fn parse(source: &str) -> Result<Fixture, String> {
        let json: Value = serde_json::from_str(source).map_err(|e| format!("not JSON: {e}"))?;
        let keys = json.as_object().ok_or("a fixture is a JSON object")?;
        if let Some(unknown) = keys.keys().find(|k| !FIXTURE_KEYS.contains(&k.as_str())) {
            return Err(format!("{unknown}: unknown field (known: {})", FIXTURE_KEYS.join(", ")));
        }
        let now = time(&json["now"], "now", DEFAULT_NOW)?;
        let mut customers = BTreeMap::new();
        for (i, c) in json["customers"].as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            let customer = customer(c, now).map_err(|e| format!("customers[{i}]: {e}"))?;
            if customers.insert(customer.id, customer).is_some() {
                return Err(format!("customers[{i}]: a second customer with this id"));
            }
        }
        let shop = &json["shop"];
        let distribution = |v: &Value| Distribution {
            average: v["average"].as_f64().unwrap_or(0.0),
            quintiles: v["quintiles"].as_array().map(|q| q.iter().filter_map(Value::as_f64).collect()).unwrap_or_default(),
        };
        let context = ShopContext {
            shop_id: 1,
            now,
            window_days: None,
            time_zone: shop["time_zone"].as_str().unwrap_or("Asia/Shanghai").to_owned(),
            currency: shop["currency"].as_str().unwrap_or("CNY").to_owned(),
            customer_count: shop["customer_count"].as_u64().unwrap_or(customers.len() as u64),
            buyer_count: shop["buyer_count"].as_u64().unwrap_or(customers.values().filter(|c| c.stats.order_count > 0).count() as u64),
            recency_days: distribution(&shop["recency_days"]),
            frequency: distribution(&shop["frequency"]),
            monetary: distribution(&shop["monetary"]),
            average_order_value: shop["average_order_value"].as_f64().unwrap_or(0.0),
        };
        let mut histories = BTreeMap::new();
        if let Some(map) = json["histories"].as_object() {
            for (id, h) in map {
                let id: i64 = id.parse().map_err(|_| format!("histories: `{id}` is not a customer id"))?;
                let mut orders = h["orders"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(i, o)| order(o, id, now).map_err(|e| format!("histories.{id}.orders[{i}].{e}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut behaviours = Vec::new();
                for (i, b) in h["behaviours"].as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
                    let kind = match b["kind"].as_str() {
                        Some("view") => BehaviourKind::View,
                        Some("favorite") => BehaviourKind::Favorite,
                        Some("cart") => BehaviourKind::Cart,
                        Some("purchase") => BehaviourKind::Purchase,
                        _ => return Err(format!("histories.{id}.behaviours[{i}].kind: view, favorite, cart or purchase")),
                    };
                    let occurred_at =
                        time(&b["occurred_at"], "occurred_at", now).map_err(|e| format!("histories.{id}.behaviours[{i}].{e}"))?;
                    behaviours.push(Behaviour { kind, sku: text(&b["sku"]), category: text(&b["category"]), occurred_at });
                }
                // Newest first, as the kernel answers them.
                orders.sort_by_key(|o| std::cmp::Reverse(o.paid_at));
                behaviours.sort_by_key(|b| std::cmp::Reverse(b.occurred_at));
                histories.insert(id, History { customer_id: id, orders, behaviours, truncated: h["truncated"].as_bool().unwrap_or(false) });
            }
        }
        let buyers = json["buyers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|b| BuyerSummary {
                customer_id: b["customer_id"].as_i64().unwrap_or(0),
                first_order_at: b["first_order_at_ms"].as_i64().unwrap_or(0),
                last_order_at: b["last_order_at_ms"].as_i64().unwrap_or(0),
                purchase_days: b["purchase_days"].as_u64().unwrap_or(0) as u32,
                order_count: b["order_count"].as_u64().unwrap_or(0) as u32,
                total_spent: b["total_spent"].as_i64().unwrap_or(0),
                repeat_spent: b["repeat_spent"].as_i64().unwrap_or(0),
                span_days: b["span_days"].as_u64().unwrap_or(0) as u32,
                age_days: b["age_days"].as_u64().unwrap_or(0) as u32,
            })
            .collect();
        let kv =
            json["kv"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string().into_bytes())).collect()).unwrap_or_default();
        let responses = json["provider"]["answers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let headers = a["headers"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                let body = match &a["body"] {
                    Value::String(s) => s.clone().into_bytes(),
                    Value::Null => Vec::new(),
                    other => other.to_string().into_bytes(),
                };
                (a["status"].as_u64().unwrap_or(200) as u16, headers, body)
            })
            .collect();
        install(FakeHost {
            config: json.get("config").map_or_else(|| "{}".to_owned(), Value::to_string),
            kv,
            logs: Vec::new(),
            now,
            customers: customers.clone(),
            histories,
            context: Some(context.clone()),
            buyers,
            responses,
            requests: Vec::new(),
        });
        Ok(Fixture { json, now, customers, context })
    }

    /// The shop context the call gets.
    pub fn context(&self) -> ShopContext {
        self.context.clone()
    }

    /// The batch of a tag rule's or loyalty scheme's call: the fixture's `batch`, or every customer without an event.
    pub fn subjects(&self) -> Vec<Subject> {
        let Some(batch) = self.json["batch"].as_array() else {
            return self.customers.values().map(|c| Subject { customer: c.clone(), event: None, order: None }).collect();
        };
        batch
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let id = item["customer"].as_i64().unwrap_or_else(|| panic!("batch[{i}]: a subject names its customer's id"));
                let customer = self.customers.get(&id).cloned().unwrap_or_else(|| panic!("batch[{i}]: no customer {id}"));
                let order = (!item["order"].is_null())
                    .then(|| order(&item["order"], id, self.now).unwrap_or_else(|e| panic!("batch[{i}].order.{e}")));
                let event = (!item["event"].is_null()).then(|| {
                    let e = &item["event"];
                    Event {
                        seq: e["seq"].as_i64().unwrap_or(i as i64 + 1),
                        event_type: e["type"].as_str().unwrap_or_default().to_owned(),
                        customer_id: Some(id),
                        payload: e.get("payload").map_or_else(|| "{}".to_owned(), Value::to_string),
                        created_at: time(&e["created_at"], "created_at", self.now).unwrap_or_else(|e| panic!("batch[{i}].event.{e}")),
                    }
                });
                Subject { customer, event, order }
            })
            .collect()
    }

    /// The batch of a scoring model's or a review's call: the fixture's `batch` of ids, or every customer.
    pub fn customers(&self) -> Vec<Customer> {
        match self.json["batch"].as_array() {
            Some(ids) => ids
                .iter()
                .map(|id| {
                    let id = id.as_i64().expect("a score or review batch lists customer ids");
                    self.customers.get(&id).cloned().unwrap_or_else(|| panic!("batch: no customer {id}"))
                })
                .collect(),
            None => self.customers.values().cloned().collect(),
        }
    }

    /// The message of a connector's `deliver`.
    pub fn message(&self) -> Message {
        let m = &self.json["message"];
        Message {
            id: m["id"].as_str().unwrap_or("m1").to_owned(),
            customer_id: m["customer_id"].as_i64().unwrap_or(0),
            channel: m["channel"].as_str().unwrap_or("webhook").to_owned(),
            recipient: m["recipient"].as_str().unwrap_or_default().to_owned(),
            template: m["template"].as_str().unwrap_or_default().to_owned(),
            variables: m["variables"]
                .as_object()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default(),
        }
    }

    /// The inbound request of a connector's `parse-receipt`.
    pub fn request(&self) -> InboundRequest {
        let r = &self.json["request"];
        InboundRequest {
            method: r["method"].as_str().unwrap_or("POST").to_owned(),
            path: r["path"].as_str().unwrap_or("/").to_owned(),
            headers: r["headers"]
                .as_object()
                .map(|h| h.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default(),
            body: match &r["body"] {
                Value::String(s) => s.clone().into_bytes(),
                Value::Null => Vec::new(),
                other => other.to_string().into_bytes(),
            },
        }
    }

    /// Assert the decisions are the fixture's `expect.decisions`, in order (numbers within a relative 1e-9).
    pub fn assert_decisions(&self, decisions: &[Decision]) {
        let expected = self.json["expect"]["decisions"].as_array().unwrap_or_else(|| panic!("the fixture expects no decisions"));
        let actual: Vec<Value> = decisions.iter().map(decision_json).collect();
        assert_eq!(actual.len(), expected.len(), "decisions: expected {expected:#?}\ngot {actual:#?}");
        for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
            assert!(same(want, got), "decisions[{i}]: expected {want}\ngot {got}");
        }
    }
}

/// A decision in the kernel's JSON shape, as fixtures write them.
pub fn decision_json(decision: &Decision) -> Value {
    match decision {
        Decision::AddTag(t) => json!({"type": "add-tag", "customer_id": t.customer_id, "tag": t.tag, "reason": t.reason}),
        Decision::RemoveTag(t) => json!({"type": "remove-tag", "customer_id": t.customer_id, "tag": t.tag, "reason": t.reason}),
        Decision::SetScore(s) => json!({"type": "set-score", "customer_id": s.customer_id, "model": s.model, "value": s.value,
                                        "label": s.label, "explanation": s.explanation}),
        Decision::AwardPoints(p) => json!({"type": "award-points", "customer_id": p.customer_id, "points": p.points,
                                           "source_key": p.source_key, "reason": p.reason, "expires_at_ms": p.expires_at}),
        Decision::ClawBackPoints(p) => json!({"type": "claw-back-points", "customer_id": p.customer_id, "points": p.points,
                                              "source_key": p.source_key, "reason": p.reason}),
        Decision::ChangeTier(t) => json!({"type": "change-tier", "customer_id": t.customer_id, "tier": t.tier, "reason": t.reason}),
        Decision::EmitEvent(e) => {
            json!({"type": "emit-event", "customer_id": e.customer_id, "event_type": e.event_type, "payload": e.payload})
        }
    }
}

fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        // Integers exactly (ids, points, times); other numbers within a relative 1e-9.
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            _ => a == b,
        },
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, v)| b.get(k).map_or(v.is_null(), |w| same(v, w))) && b.iter().all(|(k, w)| a.contains_key(k) || w.is_null())
        }
        _ => expected == actual,
    }
}

/// The keys a fixture may have (as `kith plugin test` reads them).
const FIXTURE_KEYS: &[&str] = &[
    "name",
    "call",
    "now",
    "config",
    "grant",
    "shop",
    "customers",
    "batch",
    "histories",
    "buyers",
    "kv",
    "message",
    "request",
    "provider",
    "expect",
];

/// An RFC 3339 time in milliseconds; `default` when absent or null.
fn time(value: &Value, field: &str, default: i64) -> Result<i64, String> {
    match value {
        Value::Null => Ok(default),
        Value::String(s) => parse_rfc3339(s).ok_or_else(|| format!("{field}: `{s}` is not an RFC 3339 time")),
        other => Err(format!("{field}: expected an RFC 3339 time, not {other}")),
    }
}

fn optional_time(value: &Value, field: &str) -> Result<Option<i64>, String> {
    if value.is_null() { Ok(None) } else { time(value, field, 0).map(Some) }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` in milliseconds since the epoch (no calendar crate in the SDK).
fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(at) => (&time[..at], &time[at..]),
        None => return None,
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(0..24).contains(&h) || !(0..60).contains(&min) || !(0..=60).contains(&s) {
        return None;
    }
    if !(1..=9999).contains(&y) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
    let offset_minutes = match offset {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60 + s) - offset_minutes * 60) * 1000 + millis)
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// A customer from its API-shaped JSON, partial.
fn customer(c: &Value, now: i64) -> Result<Customer, String> {
    let id = c["id"].as_i64().ok_or("every customer needs an integer id")?;
    let p = &c["profile"];
    let s = &c["stats"];
    Ok(Customer {
        id,
        profile: Profile {
            name: text(&p["name"]),
            gender: text(&p["gender"]),
            birthday: text(&p["birthday"]),
            province: text(&p["province"]),
            city: text(&p["city"]),
            attributes: p.get("attributes").map_or_else(|| "{}".to_owned(), Value::to_string),
        },
        stats: Stats {
            total_spent: s["total_spent"].as_i64().unwrap_or(0),
            order_count: s["order_count"].as_u64().unwrap_or(0) as u32,
            average_order_value: s["average_order_value"].as_i64(),
            first_order_at: optional_time(&s["first_order_at"], "stats.first_order_at")?,
            last_order_at: optional_time(&s["last_order_at"], "stats.last_order_at")?,
            refund_count: s["refund_count"].as_u64().unwrap_or(0) as u32,
            refund_amount: s["refund_amount"].as_i64().unwrap_or(0),
        },
        tags: c["tags"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|t| Tag {
                name: t["tag"].as_str().unwrap_or_default().to_owned(),
                source: t["source"].as_str().unwrap_or("manual").to_owned(),
            })
            .collect(),
        scores: c["scores"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| Score {
                model: s["model"].as_str().unwrap_or_default().to_owned(),
                value: s["value"].as_f64().unwrap_or(0.0),
                label: text(&s["label"]),
            })
            .collect(),
        points: c["points"].as_i64().unwrap_or(0),
        tier: text(&c["tier"]),
        created_at: time(&c["created_at"], "created_at", now)?,
    })
}

fn order(o: &Value, customer_id: i64, now: i64) -> Result<Order, String> {
    Ok(Order {
        id: o["id"].as_str().unwrap_or_default().to_owned(),
        customer_id,
        amount: o["amount"].as_i64().unwrap_or(0),
        refunded_amount: o["refunded_amount"].as_i64().unwrap_or(0),
        status: o["status"].as_str().unwrap_or("paid").to_owned(),
        coupon_code: text(&o["coupon_code"]),
        paid_at: time(&o["paid_at"], "paid_at", now)?,
        items: o["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|i| OrderItem {
                sku: i["sku"].as_str().unwrap_or_default().to_owned(),
                name: text(&i["name"]),
                category: text(&i["category"]),
                quantity: i["quantity"].as_u64().unwrap_or(1) as u32,
                unit_price: i["unit_price"].as_i64().unwrap_or(0),
                discount: i["discount"].as_i64().unwrap_or(0),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_times_are_read_in_milliseconds() {
        assert_eq!(super::parse_rfc3339("2026-01-01T00:00:00Z"), Some(1_767_225_600_000));
        assert_eq!(super::parse_rfc3339("2026-03-01T09:30:00.123Z"), Some(1_772_357_400_123));
        assert_eq!(super::parse_rfc3339("2026-03-01T17:30:00.123+08:00"), Some(1_772_357_400_123));
        assert_eq!(super::parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(super::parse_rfc3339("not a time"), None);
        assert_eq!(super::parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(super::parse_rfc3339("2026-01-45T00:00:00Z"), None);
        assert_eq!(super::parse_rfc3339("2026-01-01T24:00:00Z"), None);
        assert_eq!(super::parse_rfc3339("99999999999999-01-01T00:00:00Z"), None);
    }
}
