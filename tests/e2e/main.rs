//! End-to-end: the real `kith` binary, a real SQLite file, real HTTP on loopback.

use kith_core::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use futures::StreamExt;
use serde_json::{Value, json};

mod console;
mod http;
mod languages;
mod living_shop;
mod multinode;
mod plugin_workflow;
mod predict;
mod robots;

const KITH: &str = env!("CARGO_BIN_EXE_kith");

fn kith(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(KITH).current_dir(dir).args(args).env("RUST_LOG", "warn").output().expect("run kith");
    assert!(
        out.status.success(),
        "kith {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kith_json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&kith(dir, args).stdout).expect("kith printed JSON")
}

/// The repository's top folder.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kith plugin ARGS` in `dir`, whatever its exit status, with the toolchains and compiled
/// components of every run kept in `target/kith-cache`, and Rust projects built in one shared
/// target directory (`target/templates`).
fn kith_plugin_run(dir: &Path, args: &[&str]) -> Output {
    Command::new(KITH)
        .current_dir(dir)
        .arg("plugin")
        .args(args)
        .env("KITH_CACHE", repository().join("target/kith-cache"))
        .env("CARGO_TARGET_DIR", repository().join("target/templates"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run kith plugin")
}

/// `kith plugin ARGS` in `dir`, required to succeed; what it printed on standard output.
fn kith_plugin(dir: &Path, args: &[&str]) -> String {
    let out = kith_plugin_run(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kith plugin {args:?} in {} failed ({}):\n{stdout}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running `kith serve`, killed (not stopped) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Start the server with a config file that binds an ephemeral port; env names the database.
    fn start(dir: &Path, database: &Path) -> Server {
        Server::start_with(dir, database, "")
    }

    /// Start with more configuration (TOML sections after the defaults).
    fn start_with(dir: &Path, database: &Path, more: &str) -> Server {
        let config = dir.join("kith.toml");
        std::fs::write(&config, format!("bind = \"127.0.0.1:0\"\nlog_format = \"json\"\n[identity]\ndefault = 3\n{more}")).unwrap();
        let mut child = Command::new(KITH)
            .current_dir(dir)
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("KITH_DATABASE", database)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kith serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_owned();
        Server { child, url }
    }

    /// Simulate a crash: SIGKILL, no chance to flush anything.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already dead after crash(); a second kill of a reaped child is an error we do not care about.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_json(http: &reqwest::Client, url: &str, auth: &str) -> Value {
    http.get(url).header("authorization", auth).send().await.unwrap().json().await.unwrap()
}

async fn post_json(http: &reqwest::Client, url: &str, auth: &str, body: &Value) -> Value {
    http.post(url).header("authorization", auth).json(body).send().await.unwrap().json().await.unwrap()
}

fn setup(dir: &Path) -> (PathBuf, i64, String) {
    let db = dir.join("data").join("kith.db");
    let db_arg = db.to_str().unwrap();
    let shop = kith_json(dir, &["--database", db_arg, "admin", "create-shop", "--name", "E2E Shop"]);
    let shop_id = shop["id"].as_i64().unwrap();
    let key = kith_json(dir, &["--database", db_arg, "admin", "create-key", "--shop", &shop_id.to_string(), "--role", "owner"]);
    (db, shop_id, key["token"].as_str().unwrap().to_owned())
}

/// A new admin key's and the shop owner's `authorization` headers.
fn bearers(dir: &Path, db_arg: &str, owner: &str) -> (String, String) {
    let admin = kith_json(dir, &["--database", db_arg, "admin", "create-key", "--role", "admin"]);
    (format!("Bearer {}", admin["token"].as_str().unwrap()), format!("Bearer {owner}"))
}

fn batch() -> Value {
    json!({"events": [
        {"id": "c1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13812345678"}], "profile": {"name": "张伟", "city": "杭州"}},
        {"id": "o1", "type": "order.paid", "identities": [{"kind": "phone", "value": "+86 138 1234 5678"}],
         "order": {"id": "TB1001", "paid_at": "2026-10-01T12:00:00Z", "items": [{"sku": "BE-001", "category": "beauty", "quantity": 2, "unit_price": 29900, "discount": 1000}]}},
        {"id": "v1", "type": "behaviour", "identities": [{"kind": "phone", "value": "13812345678"}], "behaviour": {"kind": "view", "sku": "AP-002"}},
    ]})
}

#[tokio::test]
async fn ingest_survives_a_crash_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _, token) = setup(dir.path());
    let http = reqwest::Client::new();
    let auth = format!("Bearer {token}");

    let server = Server::start(dir.path(), &db);
    let health = get_json(&http, &format!("{}/healthz", server.url), "").await;
    assert_eq!(health["status"], "ok");

    // Open the event stream before ingesting; the events arrive on it live.
    let stream = http.get(format!("{}/v1/events/stream", server.url)).header("authorization", &auth).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let reply: Value = post_json(&http, &format!("{}/v1/events", server.url), &auth, &batch()).await;
    assert_eq!(reply["accepted"], 3, "{reply}");
    let customer = reply["outcomes"][0]["customer_id"].as_i64().unwrap();

    let mut body = stream.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: order.paid") {
        text.push_str(&String::from_utf8_lossy(&body.next().await.expect("stream open").unwrap()));
    }
    drop(body);

    // Acknowledged means durable: kill the process without warning.
    server.crash();
    let server = Server::start(dir.path(), &db);
    let profile: Value = get_json(&http, &format!("{}/v1/customers/{customer}", server.url), &auth).await;
    assert_eq!(profile["profile"]["name"], "张伟");
    assert_eq!(profile["stats"]["total_spent"], 58800);
    assert_eq!(profile["stats"]["order_count"], 1);
    assert_eq!(profile["identities"][0]["value"], "+8613812345678");
    let kinds: Vec<&str> = profile["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["behaviour.recorded", "order.paid", "customer.updated", "customer.created"]);

    let again: Value = post_json(&http, &format!("{}/v1/events", server.url), &auth, &batch()).await;
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "resending after a restart applies nothing");

    let problem = http.get(format!("{}/v1/customers/424242", server.url)).header("authorization", &auth).send().await.unwrap();
    assert_eq!(problem.status(), 404);
    assert_eq!(problem.headers()["content-type"], "application/problem+json");
    let request_id = problem.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = problem.json().await.unwrap();
    assert_eq!(body["request_id"], request_id);
}

#[test]
fn import_applies_a_file_once_and_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (db, shop_id, _) = setup(dir.path());
    let db_arg = db.to_str().unwrap();
    let shop = shop_id.to_string();

    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "\u{feff}手机号,姓名,性别,生日,城市,会员等级\n\
         13812345678,张伟,男,1990-05-20,杭州,gold\n\
         null,无名,女,,上海,\n\
         13912345678,李娜,女,1988/02/03,深圳,silver\n\
         13712345678,王芳,unknown-gender,,北京,\n",
    )
    .unwrap();
    let out = kith(
        dir.path(),
        &["--database", db_arg, "import", "customers", customers.to_str().unwrap(), "--shop", &shop, "--map", "会员等级=attr:level"],
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("4 rows: 2 events accepted, 0 duplicates, 2 rows rejected"), "{summary}");
    let errors = std::fs::read_to_string(dir.path().join("customers.errors.csv")).unwrap();
    assert_eq!(
        errors.lines().collect::<Vec<_>>(),
        vec![
            "line,field,reason",
            "3,identities[0].value,\"is a placeholder value (`null`), not an identifier\"",
            "5,性别,\"`unknown-gender` is not a gender (male/female, 男/女)\"",
        ]
    );

    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "订单号,手机号,付款时间,实付金额,商品编码,类目,数量,单价\n\
         TB1,13812345678,2026-10-01 20:00:00,587.00,BE-001,beauty,2,299.00\n\
         TB1,13812345678,2026-10-01 20:00:00,587.00,FD-002,food,1,69.00\n\
         TB2,13912345678,2026-10-03 09:30:00,99.5,AP-001,apparel,1,99.50\n\
         TB3,13912345678,someday,10,AP-001,apparel,1,10\n",
    )
    .unwrap();
    let args = ["--database", db_arg, "import", "orders", orders.to_str().unwrap(), "--shop", &shop];
    let summary = String::from_utf8_lossy(&kith(dir.path(), &args).stdout).into_owned();
    assert!(summary.contains("4 rows: 2 events accepted, 0 duplicates, 1 rows rejected"), "{summary}");
    let summary = String::from_utf8_lossy(&kith(dir.path(), &args).stdout).into_owned();
    assert!(summary.contains("4 rows: 0 events accepted, 2 duplicates, 1 rows rejected"), "re-running applies nothing: {summary}");
    let summary = String::from_utf8_lossy(
        &kith(
            dir.path(),
            &["--database", db_arg, "import", "customers", customers.to_str().unwrap(), "--shop", &shop, "--map", "会员等级=attr:level"],
        )
        .stdout,
    )
    .into_owned();
    assert!(summary.contains("2 duplicates"), "{summary}");

    let store = kith_sqlite::Store::open(&db, kith_sqlite::StoreOptions::default()).unwrap();
    let customers = store.list_customers(shop_id, &kith_core::customers::CustomerFilter::default(), 0, 100).unwrap();
    assert_eq!(customers.len(), 2);
    let zhang = &customers[0];
    assert_eq!(zhang.profile.name.as_deref(), Some("张伟"));
    assert_eq!(zhang.profile.attributes["level"], "gold");
    assert_eq!(zhang.profile.birthday.map(|d| d.to_string()).as_deref(), Some("1990-05-20"));
    assert_eq!((zhang.stats.total_spent, zhang.stats.order_count), (58700, 1));
    // 20:00 in Asia/Shanghai is 12:00 UTC.
    assert_eq!(zhang.stats.first_order_at.unwrap().to_rfc3339(), "2026-10-01T12:00:00+00:00");
    assert_eq!(customers[1].stats.total_spent, 9950);
    assert!(store.verify_stats(shop_id).unwrap().is_empty());
}

#[test]
fn demo_seeds_a_shop_and_prints_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    // The first-party plugins, packaged as `cargo xtask demo` packages them (here as archives).
    let packages = dir.path().join("packages");
    std::fs::create_dir(&packages).unwrap();
    use kith_test_plugins as p;
    let first_party = [
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
    ];
    for package in first_party {
        std::fs::write(packages.join(format!("{}.tar.gz", package.name)), package.tar_gz()).unwrap();
    }
    let provider = kith_provider::Provider::start().unwrap();
    let base = provider.url("");
    let args = [
        "--database",
        db.to_str().unwrap(),
        "demo",
        "--no-serve",
        "--customers",
        "60",
        "--plugins",
        packages.to_str().unwrap(),
        "--provider",
        &base,
    ];
    let out = kith(dir.path(), &args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("with 60 customers"), "{text}");
    assert!(text.contains("API key: kith_"), "{text}");
    assert!(
        text.contains(
            "Plugins: aipl, category-affinity, email-http, high-value, lifecycle, predict, rfm, sms-http, tiered-points, webhook"
        ),
        "{text}"
    );
    let store = kith_sqlite::Store::open(&db, kith_sqlite::StoreOptions::default()).unwrap();
    let shop = store.find_shop_by_name("Demo Shop").unwrap().unwrap();
    assert!(store.verify_stats(shop.id).unwrap().is_empty());
    let customers = store.list_customers(shop.id, &Default::default(), 0, 100).unwrap();
    let buyers: Vec<_> = customers.iter().filter(|c| c.stats.order_count > 0).collect();
    assert!(!buyers.is_empty());
    for buyer in &buyers {
        assert!(buyer.scores.iter().any(|s| s.model == "rfm"), "every buyer is scored: {buyer:?}");
        assert_eq!(buyer.tags.iter().filter(|t| t.source == "lifecycle").count(), 1, "one lifecycle tag: {:?}", buyer.tags);
        // The demo's orders are at most 400 days old, so the review finds each buyer's spend.
        assert!(buyer.tier.is_some(), "tiered-points gives every buyer a tier: {buyer:?}");
    }
    assert!(store.points_mismatches(shop.id).unwrap().is_empty());
    // The prediction is fitted on the demo's buyers (with minimums so small a shop meets) and predicts each
    // (Gamma-Gamma does not converge on the order values of its 19 repeat buyers: the default 2,000 customers have CLV).
    let report: serde_json::Value = serde_json::from_slice(&store.plugin_kv_get(shop.id, "predict", "status").unwrap().unwrap()).unwrap();
    assert_eq!(report["state"], "fitted", "{report}");
    for buyer in &buyers {
        assert!(buyer.scores.iter().any(|s| s.model == "predict.expected_purchases"), "{buyer:?}");
    }
    let at_risk = customers.iter().filter(|c| c.scores.iter().any(|s| s.model == "predict.churn_risk")).count();
    assert!(at_risk > 0 && at_risk < buyers.len(), "repeat buyers have a churn risk, one-time buyers none: {at_risk}");
    // The demo's segments track the scores the plugins wrote after they were created.
    let segments = store.list_segments(shop.id).unwrap();
    assert_eq!(segments.len(), 4, "{segments:?}");
    let rfm = segments.iter().find(|s| s.name == "Important value (RFM)").unwrap();
    let important = customers
        .iter()
        .filter(|c| c.scores.iter().any(|s| s.model == "rfm" && s.label.as_deref().is_some_and(|l| l.starts_with("important-value|"))))
        .count();
    assert_eq!(rfm.members as usize, important);
    assert!(text.contains(&format!("Important value (RFM) ({important})")), "{text}");
    // The welcome SMS went through the connector to the provider stand-in.
    let sms: Vec<_> = provider.received().into_iter().filter(|r| r.path == "/sms").map(|r| r.json()).collect();
    assert_eq!(sms.iter().filter(|m| m["template_code"] == "SMS_WELCOME").count(), 3, "{sms:?}");
    // The journeys are active: only the birthday greeting can fire at once (for birthdays a week from today).
    assert!(sms.iter().all(|m| m["template_code"] == "SMS_WELCOME" || m["template_code"] == "SMS_BIRTHDAY"), "{sms:?}");
    let journeys = store.journeys(shop.id).unwrap();
    assert_eq!(journeys.iter().filter(|j| j.status == kith_domain::journeys::JourneyStatus::Active).count(), 3, "{journeys:?}");
    assert!(text.contains("Journeys: First order: member card, then a coupon (active)"), "{text}");
    assert!(customers.iter().any(|c| c.scores.iter().any(|s| s.model == "aipl" && s.label.is_some())));
    // A second run reuses the shop and only makes a new key.
    let again = kith(dir.path(), &args);
    let again = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.contains("with 60 customers"), "{again}");
    assert_eq!(store.list_shops().unwrap().len(), 1);
    drop(store);
    // The console, in a browser, on this shop, signed in with the password the second run printed
    // (it sets the demo user's password again, as it makes a new key).
    console::browse(dir.path(), &db, &again);
}

/// Install a plugin package into the catalogue over HTTP with an admin key.
async fn install(http: &reqwest::Client, server: &Server, admin: &str, package: &kith_test_plugins::Package) {
    let installed = http
        .post(format!("{}/v1/plugins", server.url))
        .header("authorization", admin)
        .header("content-type", "application/gzip")
        .body(package.tar_gz())
        .send()
        .await
        .unwrap();
    assert_eq!(installed.status(), 201, "{}", installed.text().await.unwrap());
}

/// Poll a plugin's status until `done` holds; the bus works in the background.
async fn wait_for(http: &reqwest::Client, url: &str, auth: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = get_json(http, url, auth).await;
        if done(&status) {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the bus did not get there: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_plugin_installed_over_http_tags_customers_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _shop, owner) = setup(dir.path());
    let db_arg = db.to_str().unwrap();
    let (admin, owner) = bearers(dir.path(), db_arg, &owner);
    let http = reqwest::Client::new();

    let server = Server::start(dir.path(), &db);
    install(&http, &server, &admin, &kith_test_plugins::VIP_TAG).await;
    let enabled = http
        .put(format!("{}/v1/shop/plugins/vip-tag", server.url))
        .header("authorization", &owner)
        .json(&json!({"config": {"threshold": 10000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 201);

    let order = |id: &str, phone: &str| json!({"events": [{"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}], "order": {"id": id, "amount": 50000}}]});
    post_json(&http, &format!("{}/v1/events", server.url), &owner, &order("p1", "13600000001")).await;
    let status_url = format!("{}/v1/shop/plugins/vip-tag", server.url);
    wait_for(&http, &status_url, &owner, |s| s["calls"]["calls"] == 1 && s["lag"] == 0).await;
    let tagged = get_json(&http, &format!("{}/v1/customers?tag=vip", server.url), &owner).await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 1);

    server.crash();
    let cache = PathBuf::from(format!("{db_arg}.cache"));
    assert!(std::fs::read_dir(&cache).is_ok_and(|mut d| d.next().is_some()), "compiled components are cached in {}", cache.display());

    let server = Server::start(dir.path(), &db);
    post_json(&http, &format!("{}/v1/events", server.url), &owner, &order("p2", "13600000002")).await;
    let status_url = format!("{}/v1/shop/plugins/vip-tag", server.url);
    wait_for(&http, &status_url, &owner, |s| s["calls"]["calls"] == 2 && s["lag"] == 0).await;
    let tagged = get_json(&http, &format!("{}/v1/customers?tag=vip", server.url), &owner).await;
    assert_eq!(tagged["items"].as_array().unwrap().len(), 2, "deliveries resume after a restart");
}

/// A journey's actions survive a crash: SIGKILL while runs execute and messages go
/// out, restart, and every customer has exactly one message (one idempotency key at
/// the provider) and one points award, however the work was split around the crash.
#[tokio::test]
async fn a_journey_killed_mid_flight_resumes_without_sending_twice() {
    const CUSTOMERS: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let (db, _shop, owner) = setup(dir.path());
    let db_arg = db.to_str().unwrap();
    let (admin, owner) = bearers(dir.path(), db_arg, &owner);
    let http = reqwest::Client::new();
    let provider = kith_provider::Provider::start().unwrap();

    // A message claimed when the process died goes out again after the lease: 2 s here, not 2 minutes.
    let config = "[plugins]\noutbox_lease_secs = 2\n";
    let server = Server::start_with(dir.path(), &db, config);
    install(&http, &server, &admin, &kith_test_plugins::SMS_HTTP).await;
    let enabled = http
        .put(format!("{}/v1/shop/plugins/sms-http", server.url))
        .header("authorization", &owner)
        .json(&json!({"config": {"endpoint": provider.url("/sms"), "api_key": "k", "sign_name": "【Kith】"},
            "grant": {"capabilities": ["log", "config", "http"], "allowed_hosts": [provider.host()]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 201, "{}", enabled.text().await.unwrap());
    let journey = post_json(
        &http,
        &format!("{}/v1/journeys", server.url),
        &owner,
        &json!({"name": "thanks", "definition": {
            "trigger": {"event": "order.paid"},
            "start": "thanks",
            "steps": {
                "thanks": {"send": {"channel": "sms", "template": "THANKS"}, "next": "points"},
                "points": {"points": {"award": 10}}
            }
        }}),
    )
    .await;
    let id = journey["id"].as_i64().unwrap_or_else(|| panic!("{journey}"));
    let active = post_json(&http, &format!("{}/v1/journeys/{id}/activate", server.url), &owner, &json!({})).await;
    assert_eq!(active["status"], "active");

    let phone = |i: usize| format!("1390000{i:04}");
    for chunk in (0..CUSTOMERS).collect::<Vec<_>>().chunks(200) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"id": format!("o{i}"), "type": "order.paid", "identities": [{"kind": "phone", "value": phone(*i)}],
                "order": {"id": format!("T{i}"), "amount": 1000}})
            })
            .collect();
        let report = post_json(&http, &format!("{}/v1/events", server.url), &owner, &json!({"events": events})).await;
        assert_eq!(report["accepted"], 200, "{report}");
    }
    // Crash while the work is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while provider.received().len() < 20 {
        assert!(std::time::Instant::now() < deadline, "no message went out");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.crash();
    let before = provider.received().len();
    assert!(before < CUSTOMERS, "the crash came too late to prove anything: {before} sent");

    let server = Server::start_with(dir.path(), &db, config);
    let stats_url = format!("{}/v1/journeys/{id}/stats", server.url);
    let stats = wait_for(&http, &stats_url, &owner, |s| {
        s["entered"] == CUSTOMERS && s["completed"] == CUSTOMERS && s["messages"]["sent"] == CUSTOMERS
    })
    .await;
    assert_eq!(stats["steps"][1]["outcomes"]["done"], CUSTOMERS, "{stats}");
    let mut keys_by_phone: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for r in provider.received() {
        let phone = r.json()["phone"].as_str().unwrap().to_owned();
        keys_by_phone.entry(phone).or_default().insert(r.header("idempotency-key").unwrap().to_owned());
    }
    assert_eq!(keys_by_phone.len(), CUSTOMERS, "every customer got the message");
    assert!(keys_by_phone.values().all(|keys| keys.len() == 1), "no customer got two different messages");
    // And one points award each: the ledger's sum is 10 × customers.
    let (mut points, mut customers, mut cursor) = (0, 0, String::new());
    loop {
        let page = get_json(&http, &format!("{}/v1/customers?limit=200{cursor}", server.url), &owner).await;
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
        points += items.iter().map(|c| c["points"].as_i64().unwrap()).sum::<i64>();
        customers += items.len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!((customers, points), (CUSTOMERS, 10 * CUSTOMERS as i64));
}
