//! Fixtures: one call of a plugin, with the shop it sees and what it should decide.
//!
//! A fixture is JSON (the format is in `docs/plugins.md`): the call, the clock, the config and grant,
//! the shop context, customers in the API's shape (partial: the rest defaults), the batch, histories,
//! buyers, the plugin's kv space, a message or an inbound request for connectors, a stand-in provider's
//! answers, and what to expect. Unknown keys are refused, so a typo never passes silently.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use kith_domain::model::Customer;
use kith_domain::plugin::{
    BehaviourSnapshot, BuyerSummary, EventSnapshot, Grant, History, InboundRequest, Kind, Manifest, OrderItemSnapshot, OrderSnapshot,
    OutboundMessage, ShopContext, Snapshot, Subject,
};
use kith_host::{Input, KvUsage, PluginEnv};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The call a fixture makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Call {
    Evaluate,
    Score,
    OnEvents,
    Review,
    Deliver,
    ParseReceipt,
}

impl Call {
    fn default_for(kind: Kind) -> Call {
        match kind {
            Kind::TagRule => Call::Evaluate,
            Kind::ScoringModel => Call::Score,
            Kind::LoyaltyScheme => Call::OnEvents,
            Kind::ChannelConnector => Call::Deliver,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    call: Option<Call>,
    #[serde(default)]
    now: Option<DateTime<Utc>>,
    #[serde(default = "empty_object")]
    pub config: Value,
    #[serde(default)]
    grant: Option<Grant>,
    #[serde(default = "empty_object")]
    shop: Value,
    #[serde(default)]
    customers: Vec<Value>,
    #[serde(default)]
    batch: Option<Vec<Value>>,
    #[serde(default)]
    histories: BTreeMap<i64, HistoryFixture>,
    #[serde(default)]
    buyers: Vec<BuyerSummary>,
    #[serde(default)]
    kv: BTreeMap<String, Value>,
    #[serde(default)]
    message: Option<MessageFixture>,
    #[serde(default)]
    request: Option<RequestFixture>,
    /// Read before the rest ([`Fixture::provider_answers`]): the stand-in's URL is substituted into it.
    #[serde(default, rename = "provider")]
    _provider: Option<ProviderFixture>,
    #[serde(default)]
    pub expect: Expect,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectFixture {
    customer: i64,
    #[serde(default)]
    event: Option<EventFixture>,
    #[serde(default)]
    order: Option<OrderFixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFixture {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "empty_object")]
    payload: Value,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderFixture {
    id: String,
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    refunded_amount: i64,
    #[serde(default = "paid")]
    status: String,
    #[serde(default)]
    coupon_code: Option<String>,
    #[serde(default)]
    paid_at: Option<DateTime<Utc>>,
    #[serde(default)]
    items: Vec<ItemFixture>,
}

fn paid() -> String {
    "paid".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFixture {
    sku: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default = "one")]
    quantity: u32,
    #[serde(default)]
    unit_price: i64,
    #[serde(default)]
    discount: i64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFixture {
    #[serde(default)]
    orders: Vec<OrderFixture>,
    #[serde(default)]
    behaviours: Vec<BehaviourFixture>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviourFixture {
    kind: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    category: Option<String>,
    occurred_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageFixture {
    #[serde(default = "message_id")]
    id: String,
    #[serde(default)]
    customer_id: i64,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

fn message_id() -> String {
    "m1".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestFixture {
    #[serde(default = "post")]
    method: String,
    #[serde(default = "root")]
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

fn post() -> String {
    "POST".into()
}

fn root() -> String {
    "/".into()
}

/// The answers of the stand-in provider, in order; the last one repeats.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFixture {
    pub answers: Vec<Answer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Value,
}

fn ok() -> u16 {
    200
}

/// What a fixture expects; only what it names is checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub decisions: Option<Vec<Value>>,
    #[serde(default)]
    pub delivery: Option<Value>,
    #[serde(default)]
    pub receipts: Option<Vec<Value>>,
    /// The kind of error the call fails with: a guest error's (`invalid`, `failed`, `access-denied`,
    /// `not-found`, `quota-exceeded`) or a limit's (`timeout`, `memory`, `fuel`, `trap`, `output`, …).
    #[serde(default)]
    pub error: Option<String>,
    /// The field the shop's config is refused at (`config.min_spent`): the call is not made.
    #[serde(default)]
    pub config_error: Option<String>,
    #[serde(default)]
    pub kv: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub logs: Vec<String>,
    #[serde(default)]
    pub requests: Option<Vec<Value>>,
}

/// A request the stand-in provider received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// A fixture ready to call: its input and the answers to the plugin's reads.
pub struct Prepared {
    pub input: Input,
    pub grant: Grant,
    pub now_ms: i64,
    pub env: FixtureEnv,
}

/// The default clock of a fixture: 2026-01-01T00:00:00Z.
const DEFAULT_NOW_MS: i64 = 1_767_225_600_000;

impl Fixture {
    /// Parse a fixture; `${provider}` in its strings becomes `provider` (the stand-in's base URL) when given.
    pub fn parse(text: &str, provider: Option<&str>) -> Result<Fixture> {
        let mut value: Value = serde_json::from_str(text).context("not JSON")?;
        if let Some(url) = provider {
            substitute(&mut value, url);
        }
        serde_path_to_error::deserialize(value).map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner()))
    }

    /// Whether the fixture needs a stand-in provider (peeked before parsing, which needs its URL).
    /// The stand-in's scripted answers, checked: a status and headers an HTTP server can send.
    pub fn provider_answers(text: &str) -> Result<Option<Vec<Answer>>> {
        let raw: Value = serde_json::from_str(text).context("not JSON")?;
        if raw.get("provider").is_none_or(Value::is_null) {
            return Ok(None);
        }
        let provider: ProviderFixture = serde_path_to_error::deserialize(raw["provider"].clone())
            .map_err(|e| anyhow::anyhow!("provider.{}: {}", e.path(), e.inner()))?;
        for (i, answer) in provider.answers.iter().enumerate() {
            if !(100..=599).contains(&answer.status) {
                bail!("provider.answers[{i}].status: {} is not an HTTP status", answer.status);
            }
            for (name, value) in &answer.headers {
                if axum::http::HeaderName::try_from(name.as_str()).is_err() || axum::http::HeaderValue::try_from(value.as_str()).is_err() {
                    bail!("provider.answers[{i}].headers.{name}: not a valid HTTP header");
                }
            }
        }
        if provider.answers.is_empty() {
            bail!("provider.answers: give at least one answer");
        }
        Ok(Some(provider.answers))
    }

    pub fn prepare(&self, manifest: &Manifest, stand_in: Option<&str>) -> Result<Prepared> {
        let now_ms = self.now.map_or(DEFAULT_NOW_MS, |t| t.timestamp_millis());
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let mut customers = BTreeMap::new();
        for (i, given) in self.customers.iter().enumerate() {
            let customer = customer(given, now).with_context(|| format!("customers[{i}]"))?;
            if customers.insert(customer.id, customer).is_some() {
                bail!("customers[{i}]: a second customer with this id");
            }
        }
        let buyers = customers.values().filter(|c| c.stats.order_count > 0).count();
        let shop_default = json!({
            "shop_id": 1, "now_ms": now_ms, "window_days": null, "time_zone": "Asia/Shanghai", "currency": "CNY",
            "customer_count": customers.len(), "buyer_count": buyers,
            "recency_days": {"average": 0.0, "quintiles": []}, "frequency": {"average": 0.0, "quintiles": []},
            "monetary": {"average": 0.0, "quintiles": []}, "average_order_value": 0.0,
        });
        let shop: ShopContext = serde_json::from_value(merge(shop_default, &self.shop, "shop")?).context("shop")?;
        let reads = manifest.reads();
        let read = |id: i64, at: &str| -> Result<Snapshot> {
            let mut c = customers.get(&id).cloned().with_context(|| format!("{at}: no customer {id} in `customers`"))?;
            reads.blank(&mut c);
            Ok(c)
        };
        let call = self.call.unwrap_or(Call::default_for(manifest.kind));
        let input = match call {
            Call::Evaluate | Call::OnEvents => {
                let subjects = match &self.batch {
                    None => customers
                        .keys()
                        .map(|&id| Ok(Subject { customer: read(id, "customers")?, event: None, order: None }))
                        .collect::<Result<Vec<_>>>()?,
                    Some(batch) => {
                        let mut subjects = Vec::new();
                        for (i, item) in batch.iter().enumerate() {
                            let at = format!("batch[{i}]");
                            let item: SubjectFixture = serde_path_to_error::deserialize(item.clone())
                                .map_err(|e| anyhow::anyhow!("{at}.{}: {}", e.path(), e.inner()))?;
                            let order = item.order.map(|o| order(o, item.customer, now_ms));
                            let event = item.event.map(|e| EventSnapshot {
                                seq: e.seq.unwrap_or(i as i64 + 1),
                                kind: e.kind,
                                customer_id: Some(item.customer),
                                payload: e.payload.to_string(),
                                order_id: e.order_id.or_else(|| order.as_ref().map(|o| o.external_id.clone())),
                                created_at_ms: e.created_at.map_or(now_ms, |t| t.timestamp_millis()),
                            });
                            subjects.push(Subject { customer: read(item.customer, &at)?, event, order });
                        }
                        subjects
                    }
                };
                if call == Call::Evaluate { Input::Evaluate(shop.clone(), subjects) } else { Input::OnEvents(shop.clone(), subjects) }
            }
            Call::Score | Call::Review => {
                let ids: Vec<i64> = match &self.batch {
                    None => customers.keys().copied().collect(),
                    Some(batch) => batch
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            v.as_i64().with_context(|| {
                                format!("batch[{i}]: a {} batch lists customer ids", if call == Call::Score { "score" } else { "review" })
                            })
                        })
                        .collect::<Result<_>>()?,
                };
                let batch = ids.iter().map(|&id| read(id, "batch")).collect::<Result<Vec<_>>>()?;
                if call == Call::Score { Input::Score(shop.clone(), batch) } else { Input::Review(shop.clone(), batch) }
            }
            Call::Deliver => {
                let m = self.message.as_ref().context("a deliver fixture needs a `message`")?;
                Input::Send(
                    shop.clone(),
                    OutboundMessage {
                        id: m.id.clone(),
                        customer_id: m.customer_id,
                        channel: m.channel.clone().or_else(|| manifest.channel.clone()).unwrap_or_else(|| "webhook".into()),
                        recipient: m.recipient.clone(),
                        template: m.template.clone(),
                        variables: m.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    },
                )
            }
            Call::ParseReceipt => {
                let r = self.request.as_ref().context("a parse-receipt fixture needs a `request`")?;
                let body = match &r.body {
                    Value::String(text) => text.clone().into_bytes(),
                    Value::Null => Vec::new(),
                    other => other.to_string().into_bytes(),
                };
                Input::ParseReceipt(
                    shop.clone(),
                    InboundRequest {
                        method: r.method.clone(),
                        path: r.path.clone(),
                        headers: r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
                        body,
                    },
                )
            }
        };
        // A grant the fixture states must be one a shop could give; the default is everything the
        // manifest asks for. The stand-in's host is then granted too, when `http` is.
        let mut grant = match &self.grant {
            Some(grant) => {
                grant.check(manifest).map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.reason))?;
                grant.clone()
            }
            None => Grant::all_requested(manifest),
        };
        if let Some(url) = stand_in
            && grant.has(kith_domain::plugin::Capability::Http)
        {
            let host = url.trim_start_matches("http://").split(':').next().unwrap_or("127.0.0.1").to_owned();
            if !grant.allowed_hosts.contains(&host) {
                grant.allowed_hosts.push(host);
            }
        }
        let mut histories = BTreeMap::new();
        for (&id, h) in &self.histories {
            let orders = h.orders.iter().map(|o| order(clone_order(o), id, now_ms)).collect();
            let behaviours = h
                .behaviours
                .iter()
                .map(|b| BehaviourSnapshot {
                    kind: b.kind.clone(),
                    sku: b.sku.clone(),
                    category: b.category.clone(),
                    occurred_at_ms: b.occurred_at.timestamp_millis(),
                })
                .collect();
            let mut history = History { customer_id: id, orders, behaviours, truncated: h.truncated };
            // Newest first, as the kernel answers them.
            history.orders.sort_by_key(|o| std::cmp::Reverse(o.paid_at_ms));
            history.behaviours.sort_by_key(|b| std::cmp::Reverse(b.occurred_at_ms));
            histories.insert(id, history);
        }
        let kv = self.kv.iter().map(|(k, v)| (k.clone(), v.to_string().into_bytes())).collect();
        let env = FixtureEnv { customers, shop, histories, buyers: self.buyers.clone(), kv };
        Ok(Prepared { input, grant, now_ms, env })
    }
}

fn clone_order(o: &OrderFixture) -> OrderFixture {
    OrderFixture {
        id: o.id.clone(),
        amount: o.amount,
        refunded_amount: o.refunded_amount,
        status: o.status.clone(),
        coupon_code: o.coupon_code.clone(),
        paid_at: o.paid_at,
        items: o
            .items
            .iter()
            .map(|i| ItemFixture {
                sku: i.sku.clone(),
                name: i.name.clone(),
                category: i.category.clone(),
                quantity: i.quantity,
                unit_price: i.unit_price,
                discount: i.discount,
            })
            .collect(),
    }
}

fn order(o: OrderFixture, customer_id: i64, now_ms: i64) -> OrderSnapshot {
    OrderSnapshot {
        external_id: o.id,
        customer_id,
        amount: o.amount,
        refunded_amount: o.refunded_amount,
        status: o.status,
        coupon_code: o.coupon_code,
        paid_at_ms: o.paid_at.map_or(now_ms, |t| t.timestamp_millis()),
        items: o
            .items
            .into_iter()
            .map(|i| OrderItemSnapshot {
                sku: i.sku,
                name: i.name,
                category: i.category,
                quantity: i.quantity,
                unit_price: i.unit_price,
                discount: i.discount,
            })
            .collect(),
    }
}

/// A customer from its partial JSON: the API's shape, every field not given at its empty default.
fn customer(given: &Value, now: DateTime<Utc>) -> Result<Customer> {
    let now = now.to_rfc3339();
    let mut given = given.clone();
    // Tags and scores default field by field too.
    for (list, default) in [
        ("tags", json!({"tag": "", "source": "manual", "reason": null, "created_at": now})),
        ("scores", json!({"model": "", "value": 0.0, "label": null, "explanation": null, "scored_at": now})),
        ("identities", json!({"kind": "", "value": "", "created_at": now})),
    ] {
        if let Some(Value::Array(items)) = given.get_mut(list) {
            for (i, item) in items.iter_mut().enumerate() {
                *item = merge(default.clone(), item, &format!("{list}[{i}]"))?;
            }
        }
    }
    let default = json!({
        "id": 0,
        "profile": {"name": null, "gender": null, "birthday": null, "province": null, "city": null, "attributes": {}},
        "identities": [],
        "stats": {"total_spent": 0, "order_count": 0, "first_order_at": null, "last_order_at": null, "average_order_value": null, "refund_count": 0, "refund_amount": 0},
        "tags": [], "scores": [], "points": 0, "tier": null, "created_at": now, "updated_at": now,
    });
    if given.get("id").and_then(Value::as_i64).is_none() {
        bail!("id: every customer needs an integer id");
    }
    let merged = merge(default, &given, "")?;
    serde_path_to_error::deserialize(merged).map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner()))
}

/// `given` over `default`, object by object; a key the default lacks is refused (but anything goes
/// inside `attributes` and `payload`, which are free-form).
fn merge(default: Value, given: &Value, at: &str) -> Result<Value> {
    match (default, given) {
        (Value::Object(mut base), Value::Object(over)) => {
            for (key, value) in over {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                match base.remove(key) {
                    Some(inner) if key != "attributes" && key != "payload" => {
                        base.insert(key.clone(), merge(inner, value, &path)?);
                    }
                    Some(_) => {
                        base.insert(key.clone(), value.clone());
                    }
                    None => bail!("{path}: unknown field (known: {})", base.keys().cloned().collect::<Vec<_>>().join(", ")),
                }
            }
            Ok(Value::Object(base))
        }
        (_, given) => Ok(given.clone()),
    }
}

fn substitute(value: &mut Value, url: &str) {
    match value {
        Value::String(text) if text.contains("${provider}") => *text = text.replace("${provider}", url),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, url)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, url)),
        _ => {}
    }
}

/// The host's reads of one call, answered from the fixture.
pub struct FixtureEnv {
    customers: BTreeMap<i64, Customer>,
    shop: ShopContext,
    histories: BTreeMap<i64, History>,
    buyers: Vec<BuyerSummary>,
    kv: BTreeMap<String, Vec<u8>>,
}

impl PluginEnv for FixtureEnv {
    fn read_customer(&mut self, id: i64) -> Result<Option<Snapshot>> {
        Ok(self.customers.get(&id).cloned())
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key).cloned())
    }

    fn kv_usage(&mut self) -> Result<KvUsage> {
        Ok(KvUsage { keys: self.kv.len() as u64, bytes: self.kv.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum() })
    }

    fn histories(&mut self, ids: &[i64], since_ms: i64) -> Result<Vec<History>> {
        Ok(ids
            .iter()
            .filter(|id| self.customers.contains_key(id))
            .map(|&id| {
                let mut h = self.histories.get(&id).cloned().unwrap_or(History {
                    customer_id: id,
                    orders: Vec::new(),
                    behaviours: Vec::new(),
                    truncated: false,
                });
                h.orders.retain(|o| o.paid_at_ms >= since_ms);
                h.behaviours.retain(|b| b.occurred_at_ms >= since_ms);
                h
            })
            .collect())
    }

    fn shop_context(&mut self, window_days: Option<u32>) -> Result<ShopContext> {
        Ok(ShopContext { window_days, ..self.shop.clone() })
    }

    fn buyers(&mut self, after: Option<i64>, limit: usize, _now_ms: i64) -> Result<Vec<BuyerSummary>> {
        let mut buyers: Vec<BuyerSummary> = self.buyers.iter().filter(|b| after.is_none_or(|a| b.customer_id > a)).cloned().collect();
        buyers.sort_by_key(|b| b.customer_id);
        buyers.truncate(limit);
        Ok(buyers)
    }
}

/// A provider on loopback that answers a fixture's scripted answers and records every request.
pub struct StandIn {
    pub url: String,
    pub recorded: Arc<Mutex<Vec<Recorded>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    pub fn start(answers: Vec<Answer>) -> Result<StandIn> {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = (recorded.clone(), Arc::new(Mutex::new((answers, 0usize))));
        let app = axum::Router::new().fallback(answer).with_state(state);
        let thread = std::thread::Builder::new().name("kith-stand-in".into()).spawn(move || {
            runtime.block_on(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
        Ok(StandIn { url, recorded, shutdown: Some(shutdown), thread: Some(thread) })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type StandInState = (Arc<Mutex<Vec<Recorded>>>, Arc<Mutex<(Vec<Answer>, usize)>>);

async fn answer(
    axum::extract::State((recorded, answers)): axum::extract::State<StandInState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let query = parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let headers = parts.headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    recorded.lock().expect("stand-in lock").push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        headers,
        body,
    });
    let answer = {
        let mut answers = answers.lock().expect("stand-in lock");
        let (list, next) = &mut *answers;
        let answer = list.get((*next).min(list.len().saturating_sub(1))).cloned();
        *next += 1;
        answer
    };
    let Some(answer) = answer else { return axum::http::StatusCode::OK.into_response() };
    let status = axum::http::StatusCode::from_u16(answer.status).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &answer.body {
        Value::String(text) => (status, text.clone()).into_response(),
        Value::Null => status.into_response(),
        other => (status, axum::Json(other.clone())).into_response(),
    };
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (axum::http::HeaderName::try_from(name.as_str()), axum::http::HeaderValue::try_from(value.as_str()))
        {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
