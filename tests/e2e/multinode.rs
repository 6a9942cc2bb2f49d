//! Several kernel nodes on one PostgreSQL (issue 29): three `kith serve`
//! processes share a database while clients ingest through all three at once,
//! plugins decide, a journey sends messages and issues coupons; one node is
//! killed with SIGKILL mid-run and restarted. Afterwards every acknowledged
//! event was applied once, every plugin decision and journey step happened
//! once, no message went to the provider twice (but one the killed node had sent and
//! not yet recorded, again with its idempotency key), and every subscriber's lag is 0.
//!
//! The journey waits one minute (the language's shortest wait), so the nodes run
//! on the test clock (`[testing] clock = true`): the test keeps the three clocks
//! together at the real time (each starts at its own process's start, a restarted
//! node's later than the others'), then moves all three a minute at a time. Clocks
//! apart by more than a message lease's margin make one node take another's claim
//! for expired and send its message again (the first version of this test showed it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::http::Http;
use crate::{KITH, kith_json};

const NODES: usize = 3;
const CUSTOMERS: usize = 72;
const BATCH: usize = 6;
const PLUGINS: &[&str] = &["aipl", "lifecycle", "category-affinity", "tiered-points", "sms-http"];
const CATALOGUE: &[(&str, &str, i64)] =
    &[("BE-001", "beauty", 29900), ("AP-001", "apparel", 9900), ("FD-001", "food", 15900), ("HM-001", "home", 19900)];
/// How long the test waits, in real time, for the nodes to get somewhere.
const PATIENCE: Duration = Duration::from_secs(90);

/// One `kith serve` on the shared database, its JSON log in a file of its own; killed when dropped.
struct Node {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Node {
    /// Start node `index` (its own working folder, hence its own plugin cache); `life` names its log.
    fn start(dir: &Path, database: &str, index: usize, life: usize) -> Node {
        let work = dir.join(format!("node{index}"));
        std::fs::create_dir_all(&work).unwrap();
        let config = work.join("kith.toml");
        // A message claimed by the killed node goes out again once its lease has passed on the test clock.
        std::fs::write(
            &config,
            "bind = \"127.0.0.1:0\"\nlog_format = \"json\"\n[plugins]\noutbox_lease_secs = 5\n[testing]\nclock = true\n",
        )
        .unwrap();
        let log = dir.join(format!("node{index}-{life}.log"));
        let mut child = Command::new(KITH)
            .current_dir(&work)
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
        Node { child, url, log }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The process may be gone already; there is nothing to do about a failed kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log lines at ERROR (or reporting a storage failure) in a node's log.
fn problems(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| {
            let level = serde_json::from_str::<Value>(line).ok().and_then(|v| v["level"].as_str().map(str::to_owned));
            level.as_deref() == Some("ERROR") || line.contains("storage failure")
        })
        .map(str::to_owned)
        .collect()
}

fn ms(text: &str) -> i64 {
    text.parse::<DateTime<Utc>>().unwrap().timestamp_millis()
}

// ---------------------------------------------------------------- the model

struct Order {
    id: String,
    amount: i64,
    refunded: i64,
    categories: BTreeSet<&'static str>,
}

struct Customer {
    phone: String,
    orders: Vec<Order>,
}

/// Customers with one to three orders each (paid in the last three weeks) and a
/// partial refund of some orders: the events in the order they are sent (the
/// refunds after the orders they refund).
fn traffic(now: i64) -> (Vec<Customer>, Vec<Value>, Vec<Value>) {
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    let (mut customers, mut first, mut refunds) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..CUSTOMERS {
        let phone = format!("1370000{i:04}");
        let identities = json!([{"kind": "phone", "value": phone}]);
        first.push(
            json!({"id": format!("c{i}"), "type": "customer.upsert", "identities": identities, "profile": {"name": format!("客户{i}")}}),
        );
        let mut orders = Vec::new();
        for k in 0..rng.random_range(1..=3) {
            let id = format!("T{i}-{k}");
            let paid_at = now - rng.random_range(3_600_000..21 * 86_400_000);
            let (mut items, mut categories, mut amount) = (Vec::new(), BTreeSet::new(), 0);
            for _ in 0..rng.random_range(1..=2) {
                let (sku, category, price) = CATALOGUE[rng.random_range(0..CATALOGUE.len())];
                let quantity = rng.random_range(1..=2);
                items.push(json!({"sku": sku, "category": category, "quantity": quantity, "unit_price": price}));
                categories.insert(category);
                amount += quantity * price;
            }
            let paid = DateTime::from_timestamp_millis(paid_at).unwrap();
            first.push(json!({"id": format!("o{i}-{k}"), "type": "order.paid", "identities": identities,
                              "order": {"id": id, "paid_at": paid, "items": items}}));
            let mut refunded = 0;
            if rng.random_bool(0.2) {
                refunded = amount / 3;
                refunds.push(json!({"id": format!("r{i}-{k}"), "type": "order.refunded",
                    "refund": {"order_id": id, "amount": refunded, "refunded_at": DateTime::from_timestamp_millis(paid_at + 60_000).unwrap(),
                               "reason": "multinode"}}));
            }
            orders.push(Order { id, amount, refunded, categories });
        }
        customers.push(Customer { phone, orders });
    }
    (customers, first, refunds)
}

// ---------------------------------------------------------------- the clients

/// What the nodes acknowledged: per event id, each (node, outcome) an ingest answered.
#[derive(Default)]
struct Acks {
    by_event: BTreeMap<String, Vec<(usize, String)>>,
    batches: usize,
    /// Requests that failed on a node (refused, reset, unavailable) and went to another.
    failovers: usize,
}

/// Send one batch, starting at node `first` and going on round the nodes while a node
/// fails; the same batch (the same client event ids) each time.
async fn send(http: &Http, urls: &Mutex<Vec<String>>, acks: &Mutex<Acks>, owner: &str, first: usize, events: &[Value]) {
    let body = json!({"events": events});
    let deadline = Instant::now() + PATIENCE;
    let mut node = first;
    loop {
        let url = urls.lock().unwrap()[node % NODES].clone();
        let sent = http.client.post(format!("{url}/v1/events")).header("authorization", owner).json(&body).send().await;
        let answer = match sent {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            Ok(response) if response.status().is_server_error() => None,
            Ok(response) => {
                let status = response.status();
                panic!("node {} refused a batch: {status} {}", node % NODES, response.text().await.unwrap_or_default())
            }
            Err(_) => None,
        };
        if let Some(report) = answer {
            assert_eq!(report["rejected"], 0, "every event is valid: {report}");
            let mut acks = acks.lock().unwrap();
            acks.batches += 1;
            for outcome in report["outcomes"].as_array().unwrap() {
                let id = outcome["id"].as_str().unwrap().to_owned();
                acks.by_event.entry(id).or_default().push((node % NODES, outcome["status"].as_str().unwrap().to_owned()));
            }
            return;
        }
        acks.lock().unwrap().failovers += 1;
        assert!(Instant::now() < deadline, "no node took a batch within {PATIENCE:?}");
        node += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Send `events` in batches from `clients` clients at once, each going round the nodes
/// batch by batch, with a pause between batches so that the work overlaps the kill.
async fn ingest(http: &Http, urls: &Arc<Mutex<Vec<String>>>, acks: &Arc<Mutex<Acks>>, owner: &str, events: &[Value], pause: Duration) {
    let batches: Vec<Vec<Value>> = events.chunks(BATCH).map(<[Value]>::to_vec).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(batches);
    let mut clients = Vec::new();
    for client in 0..NODES {
        let (http, urls, acks, owner, next, batches) =
            (http.clone(), urls.clone(), acks.clone(), owner.to_owned(), next.clone(), batches.clone());
        clients.push(tokio::spawn(async move {
            let mut round = client;
            loop {
                let b = next.fetch_add(1, Ordering::SeqCst);
                let Some(batch) = batches.get(b) else { return };
                send(&http, &urls, &acks, &owner, round, batch).await;
                round += 1;
                tokio::time::sleep(pause).await;
            }
        }));
    }
    for client in clients {
        client.await.expect("a client failed");
    }
}

/// Keep the nodes' test clocks together: each at the real time plus a shared `offset`
/// (seconds), moved on by whole seconds every few hundred milliseconds. Each node's clock
/// starts at its process's start, so a restarted node's would otherwise run ahead of the
/// others' and take their claims (a message's lease) for expired.
fn clock_keeper(
    http: Http,
    urls: Arc<Mutex<Vec<String>>>,
    admin: String,
    offset: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let target = Utc::now().timestamp_millis() + offset.load(Ordering::SeqCst) * 1000;
            let current: Vec<String> = urls.lock().unwrap().clone();
            for url in current {
                // A killed node does not answer; it is moved once it is back.
                let Ok(response) = http.client.get(format!("{url}/v1/admin/clock")).header("authorization", &admin).send().await else {
                    continue;
                };
                let Ok(clock) = response.json::<Value>().await else { continue };
                let Some(now) = clock["now"].as_str().map(ms) else { continue };
                let behind = (target - now) / 1000;
                if behind > 0 {
                    let _ = http
                        .client
                        .post(format!("{url}/v1/admin/clock"))
                        .header("authorization", &admin)
                        .json(&json!({"advance_seconds": behind}))
                        .send()
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// What is not finished yet, as each node reports it: subscribers' lag (and any failure,
/// which fails the test), journey runs still active, messages queued or being sent.
async fn pending(http: &Http, urls: &[String], owner: &str, journey: i64) -> Vec<String> {
    let mut pending = Vec::new();
    for (n, url) in urls.iter().enumerate() {
        for plugin in PLUGINS {
            let s = http.get(owner, &format!("{url}/v1/shop/plugins/{plugin}")).await;
            assert_eq!(s["status"], "enabled", "node {n}: {plugin} is not enabled: {s}");
            assert_eq!(s["open_dead_letters"], 0, "node {n}: {plugin} has dead letters: {s}");
            assert!(s["last_error"].is_null(), "node {n}: {plugin} failed: {}", s["last_error"]);
            if s["lag"] != 0 {
                pending.push(format!("node {n}: {plugin} lag {}", s["lag"]));
            }
        }
    }
    let url = &urls[0];
    let active = http.get(owner, &format!("{url}/v1/journeys/{journey}/runs?status=active&limit=500")).await;
    let active = active["items"].as_array().unwrap().len();
    if active > 0 {
        pending.push(format!("{active} journey runs active"));
    }
    for status in ["queued", "sending"] {
        let messages = http.get(owner, &format!("{url}/v1/messages?status={status}&limit=200")).await;
        let n = messages["items"].as_array().unwrap().len();
        if n > 0 {
            pending.push(format!("{n} messages {status}"));
        }
    }
    pending
}

// ---------------------------------------------------------------- the test

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_on_one_postgres_apply_everything_once_across_a_kill() {
    let started = Instant::now();
    // The cluster's helpers run a runtime of their own: off this one's threads.
    let (_cluster, database) = tokio::task::spawn_blocking(|| {
        let cluster = kith_postgres::cluster::Cluster::start().expect("a throwaway PostgreSQL");
        let database = cluster.migrated_database("multinode").unwrap();
        (cluster, database)
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let shop = kith_json(dir.path(), &["--database", &database, "admin", "create-shop", "--name", "Multi-node Shop"]);
    let shop_id = shop["id"].as_i64().unwrap().to_string();
    let owner = kith_json(dir.path(), &["--database", &database, "admin", "create-key", "--shop", &shop_id, "--role", "owner"]);
    let owner = format!("Bearer {}", owner["token"].as_str().unwrap());
    let admin = kith_json(dir.path(), &["--database", &database, "admin", "create-key", "--role", "admin"]);
    let admin = format!("Bearer {}", admin["token"].as_str().unwrap());
    let provider = kith_provider::Provider::start().unwrap();
    // Whole URLs: the nodes are several.
    let http = Http::new(reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(), "");

    let mut nodes: Vec<Node> = (0..NODES).map(|i| Node::start(dir.path(), &database, i, 0)).collect();
    let mut logs: Vec<PathBuf> = nodes.iter().map(|n| n.log.clone()).collect();
    let urls = Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect::<Vec<_>>()));
    let url = |n: usize| urls.lock().unwrap()[n].clone();
    let offset = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = clock_keeper(http.clone(), urls.clone(), admin.clone(), offset.clone(), stop.clone());

    // Plugins installed through one node, enabled through another: the catalogue and the
    // subscriptions are the database's, every node delivers.
    use kith_test_plugins as p;
    for package in [p::AIPL, p::LIFECYCLE, p::CATEGORY_AFFINITY, p::TIERED_POINTS, p::SMS_HTTP] {
        let response = http
            .client
            .post(format!("{}/v1/plugins", url(0)))
            .header("authorization", &admin)
            .header("content-type", "application/gzip")
            .body(package.tar_gz())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    for plugin in PLUGINS {
        let body = match *plugin {
            "tiered-points" => json!({"config": {"points_per_unit": 1, "expiry_days": 365}}),
            "sms-http" => json!({"config": {"endpoint": provider.url("/sms"), "api_key": "k", "sign_name": "【Kith】"},
                                 "grant": {"capabilities": ["log", "config", "http"], "allowed_hosts": [provider.host()]}}),
            _ => json!({"config": {}}),
        };
        http.put(&owner, &format!("{}/v1/shop/plugins/{plugin}", url(1)), &body).await;
    }
    let template = http
        .post(
            &owner,
            &format!("{}/v1/coupon-templates", url(2)),
            &json!({"name": "满100减10", "face_value": 1000, "threshold": 10_000, "valid_days": 30}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let journey = http
        .post(
            &owner,
            &format!("{}/v1/journeys", url(2)),
            &json!({"name": "Welcome, then a coupon", "definition": {
            "trigger": {"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]},
            "start": "hello", "steps": {
                "hello": {"send": {"channel": "sms", "template": "SMS_HELLO"}, "next": "wait"},
                "wait": {"wait": {"minutes": 1}, "next": "gift"},
                "gift": {"coupon": {"template_id": template}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "SMS_COUPON", "variables": {"code": "{{coupon.code}}"}}}
            }}}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let active = http.post(&owner, &format!("{}/v1/journeys/{journey}/activate", url(0)), &json!({})).await;
    assert_eq!(active["status"], "active", "{active}");

    let clock = http.get(&admin, &format!("{}/v1/admin/clock", url(0))).await;
    let (customers, first, refunds) = traffic(ms(clock["now"].as_str().unwrap()));
    let batches = first.len().div_ceil(BATCH);
    let acks = Arc::new(Mutex::new(Acks::default()));

    // Customers and orders through all three nodes at once; node 1 is killed a third of the
    // way through or later and restarted a second later, while the clients go on through the others.
    let ingesting = {
        let (http, urls, acks, owner, first) = (http.clone(), urls.clone(), acks.clone(), owner.clone(), first.clone());
        tokio::spawn(async move { ingest(&http, &urls, &acks, &owner, &first, Duration::from_millis(100)).await })
    };
    let deadline = Instant::now() + PATIENCE;
    // The kill waits for the journey's first messages to be on their way (a node killed
    // mid-send), but not past two thirds of the batches.
    loop {
        let acked = acks.lock().unwrap().batches;
        if (acked >= batches / 3 && provider.received().len() >= 6) || acked >= 2 * batches / 3 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not get a third of the way");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut killed = nodes.remove(1);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    drop(killed);
    let received_at_kill = provider.received().len();
    let acked_at_kill = acks.lock().unwrap().batches;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let database_for_restart = database.clone();
    let dir_path = dir.path().to_owned();
    let restarted = tokio::task::spawn_blocking(move || Node::start(&dir_path, &database_for_restart, 1, 1)).await.unwrap();
    urls.lock().unwrap()[1] = restarted.url.clone();
    logs.push(restarted.log.clone());
    nodes.insert(1, restarted);
    ingesting.await.expect("the clients failed");
    let acked_after = acks.lock().unwrap().batches;
    assert!(acked_at_kill < batches && acked_after >= batches, "the kill came mid-run: {acked_at_kill} of {batches} batches before it");

    // Refunds of orders acknowledged, through all three nodes.
    ingest(&http, &urls, &acks, &owner, &refunds, Duration::ZERO).await;

    // Then the clocks move on a minute at a time, all three together, until the journey's
    // wait is over and everything has settled.
    let current: Vec<String> = urls.lock().unwrap().clone();
    let deadline = Instant::now() + PATIENCE;
    let mut last_move = Instant::now();
    loop {
        if last_move.elapsed() >= Duration::from_secs(2) {
            offset.fetch_add(60, Ordering::SeqCst);
            last_move = Instant::now();
        }
        let left = pending(&http, &current, &owner, journey).await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes did not settle within {PATIENCE:?}: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    keeper.await.unwrap();

    // Every event the clients sent was acknowledged; sent again, each is a duplicate.
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let all: Vec<Value> = first.iter().chain(&refunds).cloned().collect();
    for event in &all {
        let id = event["id"].as_str().unwrap();
        assert!(acks.by_event.contains_key(id), "event {id} was never acknowledged");
    }
    let accepted_twice: Vec<_> = acks.by_event.iter().filter(|(_, a)| a.iter().filter(|(_, s)| s == "accepted").count() > 1).collect();
    assert!(accepted_twice.is_empty(), "events accepted twice: {accepted_twice:?}");
    for (b, chunk) in all.chunks(50).enumerate() {
        let report = http.post(&owner, &format!("{}/v1/events", current[b % NODES]), &json!({"events": chunk})).await;
        assert_eq!((report["accepted"].as_u64(), report["duplicates"].as_u64()), (Some(0), Some(chunk.len() as u64)), "{report}");
    }

    // Customers as the model has them: one per phone, stats from the orders and refunds once each.
    let listed = http.all(&owner, &format!("{}/v1/customers?limit=200", current[1])).await;
    assert_eq!(listed.len(), CUSTOMERS, "one customer per phone");
    let by_phone: BTreeMap<String, &Value> = listed
        .iter()
        .map(|c| {
            let phone = c["identities"][0]["value"].as_str().unwrap().trim_start_matches("+86").to_owned();
            (phone, c)
        })
        .collect();
    let mut failures = Vec::new();
    for model in &customers {
        let c = by_phone.get(&model.phone).unwrap_or_else(|| panic!("no customer for {}", model.phone));
        let total: i64 = model.orders.iter().map(|o| o.amount - o.refunded).sum();
        let refunds = model.orders.iter().filter(|o| o.refunded > 0).count() as i64;
        let stats = &c["stats"];
        let seen = (stats["total_spent"].as_i64(), stats["order_count"].as_i64(), stats["refund_count"].as_i64());
        if seen != (Some(total), Some(model.orders.len() as i64), Some(refunds)) {
            failures.push(format!(
                "customer {}: stats {stats}, expected {total} spent in {} orders, {refunds} refunds",
                c["id"],
                model.orders.len()
            ));
        }
        // Tags: each once; lifecycle:new (every order is recent) and prefers:<category> for two orders in it.
        let tags: Vec<&str> = c["tags"].as_array().unwrap().iter().map(|t| t["tag"].as_str().unwrap()).collect();
        let unique: BTreeSet<&str> = tags.iter().copied().collect();
        if unique.len() != tags.len() {
            failures.push(format!("customer {}: a tag held twice: {tags:?}", c["id"]));
        }
        let mut expected: BTreeSet<String> = ["lifecycle:new".to_owned()].into();
        for &(_, category, _) in CATALOGUE {
            if model.orders.iter().filter(|o| o.categories.contains(category)).count() >= 2 {
                expected.insert(format!("prefers:{category}"));
            }
        }
        let held: BTreeSet<String> = unique.iter().map(|t| (*t).to_owned()).collect();
        if held != expected {
            failures.push(format!("customer {}: tags {held:?}, expected {expected:?}", c["id"]));
        }
        // AIPL: Loyalty for two orders in a year, Purchase for one; one score per model.
        let scores: Vec<(&str, Option<&str>)> =
            c["scores"].as_array().unwrap().iter().map(|s| (s["model"].as_str().unwrap(), s["label"].as_str())).collect();
        let aipl: Vec<_> = scores.iter().filter(|s| s.0 == "aipl").map(|s| s.1.map(|l| l.split('|').next().unwrap())).collect();
        let stage = if model.orders.len() >= 2 { "L" } else { "P" };
        if aipl != vec![Some(stage)] {
            failures.push(format!("customer {}: AIPL {aipl:?}, expected {stage}", c["id"]));
        }
        // Points: each order earned once, a yuan a point; a partial refund takes back its share.
        let id = c["id"].as_i64().unwrap();
        let ledger = http.all(&owner, &format!("{}/v1/customers/{id}/points/ledger?limit=500", current[2])).await;
        let sum: i64 = ledger.iter().map(|e| e["points"].as_i64().unwrap()).sum();
        if Some(sum) != c["points"].as_i64() {
            failures.push(format!("customer {id}: ledger sums to {sum}, balance {}", c["points"]));
        }
        let mut earned: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut clawed: BTreeMap<String, i64> = BTreeMap::new();
        for e in &ledger {
            let key = e["source_key"].as_str().unwrap_or_default();
            match e["kind"].as_str().unwrap() {
                "earn" => earned.entry(key.trim_start_matches("order:").to_owned()).or_default().push(e["points"].as_i64().unwrap()),
                "clawback" => {
                    let order = e["order_id"].as_str().map(str::to_owned).unwrap_or_else(|| key.to_owned());
                    *clawed.entry(order).or_default() -= e["points"].as_i64().unwrap();
                }
                other => failures.push(format!("customer {id}: a {other} ledger entry: {e}")),
            }
        }
        for order in &model.orders {
            let points = order.amount / 100;
            if earned.get(&order.id) != Some(&vec![points]) {
                failures.push(format!("order {}: earned {:?}, expected {points} once", order.id, earned.get(&order.id)));
            }
            let expected = points - (points as i128 * (order.amount - order.refunded) as i128 / order.amount as i128) as i64;
            let taken: i64 = clawed.iter().filter(|(k, _)| k.contains(&order.id)).map(|(_, v)| *v).sum();
            if taken != expected {
                failures.push(format!(
                    "order {} (refunded {} of {}): {taken} points taken back, expected {expected}",
                    order.id, order.refunded, order.amount
                ));
            }
        }
        if earned.len() != model.orders.len() {
            failures.push(format!("customer {id}: earned for {:?}", earned.keys().collect::<Vec<_>>()));
        }
        // One coupon, from the journey.
        let coupons = http.get(&owner, &format!("{}/v1/customers/{id}/coupons", current[0])).await;
        let coupons = coupons["items"].as_array().unwrap().len();
        if coupons != 1 {
            failures.push(format!("customer {id}: {coupons} coupons, expected the journey's one"));
        }
    }

    // Journey runs: one per customer (each bought), completed, each step once, each message its own.
    let runs = http.all(&owner, &format!("{}/v1/journeys/{journey}/runs?limit=500", current[0])).await;
    let mut runs_per_customer: BTreeMap<i64, usize> = BTreeMap::new();
    let mut run_messages = BTreeSet::new();
    for run in &runs {
        *runs_per_customer.entry(run["customer_id"].as_i64().unwrap()).or_default() += 1;
        let steps: Vec<&str> = run["history"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        if run["status"] != "completed" || steps != ["hello", "wait", "gift", "tell"] {
            failures.push(format!("journey run {}: {} through {steps:?}: {run}", run["id"], run["status"]));
        }
        for step in run["history"].as_array().unwrap() {
            if let Some(m) = step["message_id"].as_str()
                && !run_messages.insert(m.to_owned())
            {
                failures.push(format!("message {m} belongs to two journey steps"));
            }
        }
    }
    if runs.len() != CUSTOMERS || runs_per_customer.values().any(|n| *n != 1) {
        failures.push(format!("{} runs for {CUSTOMERS} customers: {runs_per_customer:?}", runs.len()));
    }

    // Messages: two per customer, each sent, and each at the provider once.
    let messages = http.all(&owner, &format!("{}/v1/messages?limit=200", current[1])).await;
    let sent: BTreeSet<String> = messages
        .iter()
        .filter(|m| m["status"] == "sent" || m["status"] == "delivered")
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    if messages.len() != 2 * CUSTOMERS || sent.len() != messages.len() || sent != run_messages {
        let statuses: BTreeMap<String, usize> = messages.iter().fold(BTreeMap::new(), |mut m, x| {
            *m.entry(x["status"].as_str().unwrap().to_owned()).or_default() += 1;
            m
        });
        failures.push(format!(
            "{} messages ({statuses:?}), {} from journey steps, expected {} sent",
            messages.len(),
            run_messages.len(),
            2 * CUSTOMERS
        ));
    }
    let mut at_provider: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut per_phone: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, r) in provider.received().into_iter().enumerate() {
        let key = r.header("idempotency-key").unwrap_or_default().to_owned();
        at_provider.entry(key.clone()).or_default().push(i);
        per_phone.entry(r.json()["phone"].as_str().unwrap_or_default().to_owned()).or_default().insert(key);
    }
    // A message the killed node had sent but not yet recorded goes out again, with the same
    // idempotency key, once its lease has passed: the kill explains that, nothing else does.
    let mut resent = 0;
    for (key, at) in at_provider.iter().filter(|(_, at)| at.len() > 1) {
        if at.len() == 2 && at[0] < received_at_kill && at[1] >= received_at_kill {
            resent += 1;
            continue;
        }
        let detail = http.get(&owner, &format!("{}/v1/messages/{key}", current[0])).await;
        failures.push(format!(
            "message {key} went to the provider {} times (receipts {at:?}, {received_at_kill} before the kill): {detail}",
            at.len()
        ));
    }
    let keys: BTreeSet<String> = at_provider.into_keys().collect();
    if keys != sent {
        failures.push(format!(
            "the provider got {} messages, kith sent {} (only at the provider: {:?}; only in kith: {:?})",
            keys.len(),
            sent.len(),
            keys.difference(&sent).collect::<Vec<_>>(),
            sent.difference(&keys).collect::<Vec<_>>()
        ));
    }
    if per_phone.len() != CUSTOMERS || per_phone.values().any(|k| k.len() != 2) {
        failures.push(format!("messages per phone: {:?}", per_phone.values().map(BTreeSet::len).collect::<Vec<_>>()));
    }

    // Plugins' committed calls, as each node reports them (a lost race to commit a batch leaves none).
    let mut calls = Vec::new();
    for plugin in PLUGINS {
        let s = http.get(&owner, &format!("{}/v1/shop/plugins/{plugin}", current[0])).await;
        calls.push(format!("{plugin} {}", s["calls"]["calls"]));
    }

    // No ERROR in any log; the killed node's log ends where it was killed.
    for log in &logs {
        let found = problems(log);
        if !found.is_empty() {
            failures.push(format!("{}: {found:#?}", log.display()));
        }
    }
    drop(nodes);
    eprintln!(
        "multinode: {} events in {} batches ({} failovers; {acked_at_kill} batches before the kill), {} runs, {} messages ({received_at_kill} at the provider at the kill, {resent} sent again after it), calls: {calls:?}, {:?}",
        all.len(),
        acks.batches,
        acks.failovers,
        runs.len(),
        messages.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{} broken:\n{}", failures.len(), failures.join("\n"));
}
