//! Containment (issue 27): hostile plugins built from source, run through the
//! bus on a real store with two shops. Each attack must end within its call's
//! deadline plus a margin, keep the kernel's memory bounded, leave the
//! first-party `lifecycle` plugin delivering in both shops, and fail, dead-letter
//! or trip the attacker with a reason that says what it did.

use kith_core::prelude::*;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use kith_bus::{Bus, BusConfig, BusError, Clock, EnableRequest, Package, TestClock};
use kith_core::Actor;
use kith_core::customers::CustomerFilter;
use kith_core::delivery::{Attempt, Effects, FailurePolicy};
use kith_domain::model::NewShop;
use kith_domain::plugin::{Grant, ShopContext, SubscriptionStatus};
use kith_host::{CallEnv, CallError, Host, HostConfig, Input, KvUsage, PluginEnv};
use kith_sqlite::Store;
use kith_test_plugins as plugins;
use serde_json::{Value, json};

/// The deadline of a call whose manifest asks for none: the host's default, so that on a
/// loaded machine a debug build's instantiation (which the deadline covers) and the canaries'
/// calls fit in it as they do in production; the hostile calls are asserted against it.
const DEADLINE: Duration = Duration::from_secs(2);
/// What a call may take past its deadline: the epoch ticks, the trap, a loaded machine.
const MARGIN: Duration = Duration::from_secs(2);

fn host() -> Arc<Host> {
    static HOST: OnceLock<Arc<Host>> = OnceLock::new();
    HOST.get_or_init(|| Arc::new(Host::new(HostConfig { default_timeout: DEADLINE, ..HostConfig::default() }).unwrap())).clone()
}

fn actor() -> Actor {
    Actor::cli("test")
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    bus: Arc<Bus>,
    clock: Arc<TestClock>,
    shops: [i64; 2],
}

fn world(workers: usize) -> World {
    world_with(workers, BusConfig::default().emission_window)
}

/// A world whose plugins' emission rates count over `emission_window` instead of a minute.
fn world_with(workers: usize, emission_window: Duration) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
    let new = |name: &str| NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shops = [store.create_shop(&new("A"), &actor()).unwrap().id, store.create_shop(&new("B"), &actor()).unwrap().id];
    let clock = Arc::new(TestClock::new(Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()));
    let policy = FailurePolicy { max_attempts: 2, breaker_threshold: 2, ..FailurePolicy::default() };
    let config = BusConfig { policy, workers, poll: Duration::from_millis(20), emission_window, ..BusConfig::default() };
    let bus = Bus::new(store.clone(), host(), clock.clone(), config);
    let w = World { _dir: dir, store, bus, clock, shops };
    // The canary: a first-party plugin in both shops.
    w.install(&plugins::LIFECYCLE);
    for shop in shops {
        w.enable(shop, "lifecycle", json!({})).unwrap();
    }
    w
}

impl World {
    fn install(&self, package: &plugins::Package) {
        self.bus.install(&Package::from_tar_gz(&package.tar_gz()).unwrap(), &actor()).unwrap();
    }

    /// Install a package's component under an edited manifest.
    fn install_as(&self, package: &plugins::Package, edit: impl Fn(String) -> String) -> Result<(), BusError> {
        let package = Package::from_tar_gz(&package.tar_gz_with(&edit(package.manifest())))?;
        self.bus.install(&package, &actor()).map(|_| ())
    }

    fn enable(&self, shop: i64, plugin: &str, config: Value) -> Result<(), BusError> {
        self.bus.enable(shop, plugin, &EnableRequest { config: Some(config), ..Default::default() }, &actor()).map(|_| ())
    }

    /// An order in each shop, by the same phone number.
    fn orders(&self, id: &str, phone: &str) {
        for shop in self.shops {
            let order = json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
                "order": {"id": id, "amount": 10_000}});
            assert_eq!(self.store.ingest_at(shop, vec![order], &actor(), self.clock.now()).unwrap().accepted, 1);
        }
        self.bus.notify();
    }

    fn tags(&self, shop: i64, phone: &str) -> Vec<(String, String)> {
        use kith_domain::identity::{IdentityKind, normalise};
        let value = normalise(&IdentityKind::Phone, phone, "CN").unwrap();
        let filter =
            CustomerFilter { identity: Some(kith_domain::ingest::Identifier { kind: IdentityKind::Phone, value }), ..Default::default() };
        let customer = self.store.list_customers(shop, &filter, 0, 1).unwrap().remove(0);
        customer.tags.into_iter().map(|t| (t.tag, t.source)).collect()
    }

    fn customer_id(&self, shop: i64, phone: &str) -> i64 {
        use kith_domain::identity::{IdentityKind, normalise};
        let value = normalise(&IdentityKind::Phone, phone, "CN").unwrap();
        let filter =
            CustomerFilter { identity: Some(kith_domain::ingest::Identifier { kind: IdentityKind::Phone, value }), ..Default::default() };
        self.store.list_customers(shop, &filter, 0, 1).unwrap().remove(0).id
    }

    /// The first-party canary delivered in both shops.
    fn assert_canaries(&self, phone: &str) {
        for shop in self.shops {
            let tags = self.tags(shop, phone);
            assert!(tags.contains(&("lifecycle:new".into(), "lifecycle".into())), "shop {shop}: {tags:?}");
        }
    }

    /// One pass of the bus, which must end within `bound` (a pass that hangs fails the test
    /// instead of hanging it).
    fn pass_within(&self, bound: Duration) -> Duration {
        let (tx, rx) = mpsc::channel();
        let bus = self.bus.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let done = bus.run_pending();
            // The test may have given up waiting; nobody listens then.
            tx.send((done.map(|_| ()).map_err(|e| e.to_string()), started.elapsed())).ok();
        });
        let (done, took) = rx.recv_timeout(bound).unwrap_or_else(|_| panic!("a pass of the bus did not end within {bound:?}"));
        done.unwrap();
        took
    }

    fn last_error(&self, shop: i64, plugin: &str) -> String {
        self.store.subscription(shop, plugin).unwrap().last_error.unwrap_or_default()
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap();
    kb << 10
}

/// Issue 27 (1): a sleep in WASI blocks in the host, where the epoch deadline cannot reach.
#[test]
fn a_blocking_wasi_sleep_ends_at_the_deadline() {
    let w = world(2);
    w.install(&plugins::HOSTILE_SLEEP);
    // An hour's sleep, in the first shop.
    w.enable(w.shops[0], "hostile-sleep", json!({})).unwrap();
    w.orders("o1", "13800000001");

    // The pass compiles the plugins too (no cache, a busy machine): the bound is a fail-safe,
    // the call's recorded duration is what is asserted.
    w.pass_within(Duration::from_secs(60));
    let took = w.store.call_stats(w.shops[0], "hostile-sleep").unwrap().p99_ms.expect("the call is recorded");
    assert!(took < (DEADLINE + MARGIN).as_secs_f64() * 1000.0, "the call took {took} ms");
    w.assert_canaries("13800000001");
    let error = w.last_error(w.shops[0], "hostile-sleep");
    assert!(error.contains("ran past its deadline"), "{error}");

    // Retried once, then dead-lettered and tripped (two failures in a row).
    w.clock.advance(chrono::Duration::minutes(1));
    w.pass_within(Duration::from_secs(60));
    let sub = w.store.subscription(w.shops[0], "hostile-sleep").unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Tripped);
    assert_eq!(w.store.dead_letters(w.shops[0], "hostile-sleep").unwrap().len(), 1);
}

/// A store-less environment for calls made straight through the host.
struct NoStore;

impl PluginEnv for NoStore {
    fn read_customer(&mut self, _id: i64) -> anyhow::Result<Option<kith_domain::model::Customer>> {
        Ok(None)
    }
    fn kv_get(&mut self, _key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn kv_usage(&mut self) -> anyhow::Result<KvUsage> {
        Ok(KvUsage::default())
    }
    fn histories(&mut self, _ids: &[i64], _since_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::History>> {
        Ok(Vec::new())
    }
    fn shop_context(&mut self, _window_days: Option<u32>) -> anyhow::Result<ShopContext> {
        Ok(ShopContext::default())
    }
    fn buyers(&mut self, _after: Option<i64>, _limit: usize, _now_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::BuyerSummary>> {
        Ok(Vec::new())
    }
}

fn send(package: &plugins::Package, config: Value, hosts: Vec<String>) -> kith_host::CallReport {
    let manifest = kith_domain::plugin::Manifest::parse(&package.manifest()).unwrap();
    let plugin = host().load(&manifest, &package.wasm()).unwrap();
    let grant = Grant { capabilities: manifest.capabilities.clone(), allowed_hosts: hosts };
    let env = CallEnv { shop_id: 1, grant, config, now_ms: 0, services: Box::new(NoStore) };
    let message = kith_domain::plugin::OutboundMessage {
        id: "m1".into(),
        customer_id: 1,
        channel: "webhook".into(),
        recipient: "r".into(),
        template: "t".into(),
        variables: Vec::new(),
    };
    host().call(&plugin, env, Input::Send(ShopContext::default(), message))
}

/// One deadline covers instantiation (a start function runs guest code) and the call: a
/// plugin that spends most of its deadline being instantiated has only the rest for the call.
#[test]
fn instantiation_counts_against_the_calls_deadline() {
    let deadline = Duration::from_secs(5);
    let text = format!("{}\n[limits]\ntimeout-ms = {}\n", plugins::HOSTILE_SLEEP.manifest(), deadline.as_millis());
    let manifest = kith_domain::plugin::Manifest::parse(&text).unwrap();
    let plugin = host().load(&manifest, &plugins::HOSTILE_SLEEP.wasm()).unwrap();
    let grant = Grant { capabilities: manifest.capabilities.clone(), allowed_hosts: Vec::new() };
    // 4 s at instantiation, then an hour in the call.
    let env = CallEnv { shop_id: 1, grant, config: json!({"init_sleep_ms": 4000}), now_ms: 0, services: Box::new(NoStore) };
    let report = host().call(&plugin, env, Input::Evaluate(ShopContext::default(), Vec::new()));
    assert!(report.instantiation >= Duration::from_secs(3), "the plugin slept at instantiation: {:?}", report.instantiation);
    assert_eq!(report.output.map(|_| ()), Err(CallError::Timeout(deadline)));
    assert!(report.duration < deadline + MARGIN, "{:?}", report.duration);
}

/// Issue 27 (2): header fields live in the host's memory, outside the call's memory limit.
/// The plugin makes 50,000 of 12 KiB and forgets them: 600 MB if the host kept them all.
#[test]
fn host_resources_a_call_holds_are_bounded() {
    let w = world(2);
    let before = rss();
    let report = send(&plugins::HOSTILE_FIELDS, json!({}), Vec::new());
    let grown = rss().saturating_sub(before);
    assert!(matches!(report.output, Err(CallError::Resources(_))), "{:?}", report.output);
    assert!(report.duration < DEADLINE + MARGIN, "{:?}", report.duration);
    assert!(grown < 200 << 20, "the process grew by {} MiB", grown >> 20);
    // The kernel goes on: both shops' canaries deliver.
    w.orders("o1", "13800000001");
    w.bus.drain().unwrap();
    w.assert_canaries("13800000001");
}

/// Issue 27 (5): a provider that never answers holds a connector no longer than its call's
/// deadline, whatever the HTTP budget (10 s).
#[test]
fn an_http_request_ends_with_the_calls_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and never answers, for as long as the test runs.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let report = send(&plugins::POST_CONNECTOR, json!({"url": format!("http://127.0.0.1:{port}/hook")}), vec!["127.0.0.1".into()]);
    assert_eq!(report.output, Err(CallError::Timeout(DEADLINE)));
    assert!(report.duration < DEADLINE + MARGIN, "{:?}", report.duration);
}

/// Issue 27 (3): `allOf: [{"$ref": "#"}]` sends a validator round in circles; refused at install.
#[test]
fn a_schema_that_refers_to_itself_is_refused_at_install() {
    let w = world(1);
    let err = w.install_as(&plugins::HOSTILE_SCHEMA, |m| m).unwrap_err();
    let BusError::Invalid(err) = err else { panic!("{err:?}") };
    assert_eq!(err.field, "plugin.toml.config-schema");
    assert!(err.reason.contains("leads back to itself"), "{err}");
    assert!(matches!(w.enable(w.shops[0], "hostile-schema", json!({})), Err(BusError::Store(kith_core::Error::NotFound(_)))));
    // Through a definition and a property too.
    let err = w
        .install_as(&plugins::HOSTILE_SCHEMA, |m| {
            m.replace(
                "allOf = [{ \"$ref\" = \"#\" }]",
                "properties.a = { \"$ref\" = \"#/$defs/x\" }\n\"$defs\".x = { anyOf = [{ \"$ref\" = \"#/$defs/x\" }] }",
            )
        })
        .unwrap_err();
    assert!(err.to_string().contains("leads back to itself"), "{err}");
    // Recursion that consumes input (a tree) is fine.
    w.install_as(&plugins::HOSTILE_SCHEMA, |m| {
        m.replace("allOf = [{ \"$ref\" = \"#\" }]", "properties.children = { type = \"array\", items = { \"$ref\" = \"#\" } }")
    })
    .unwrap();
    w.enable(w.shops[0], "hostile-schema", json!({"children": [{"children": []}]})).unwrap();
}

/// Issue 27 (4): two plugins answering each other's events with two of their own.
#[test]
fn plugins_answering_each_others_events_are_stopped_and_tripped() {
    let w = world(1);
    w.install_as(&plugins::HOSTILE_ECHO, |m| m.replace("id = \"hostile-echo\"", "id = \"hostile-ping\"")).unwrap();
    w.install_as(&plugins::HOSTILE_ECHO, |m| {
        m.replace("id = \"hostile-echo\"", "id = \"hostile-pong\"").replace("[\"order.paid\", \"plugin.pong\"]", "[\"plugin.ping\"]")
    })
    .unwrap();
    w.enable(w.shops[0], "hostile-ping", json!({"emit": "plugin.ping"})).unwrap();
    w.enable(w.shops[0], "hostile-pong", json!({"emit": "plugin.pong"})).unwrap();
    w.orders("o1", "13800000001");
    // Without a bound each pass doubles the events; a dozen passes would write thousands.
    for _ in 0..12 {
        w.pass_within(Duration::from_secs(30));
        w.clock.advance(chrono::Duration::minutes(10));
    }
    let emitted = w.store.events_after(w.shops[0], 0, 10_000).unwrap().into_iter().filter(|e| e.kind.starts_with("plugin.p")).count();
    assert!(emitted <= 2 + 4 + 8 + 16, "{emitted} events emitted");
    let sub = w.store.subscription(w.shops[0], "hostile-ping").unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Tripped, "{sub:?}");
    assert!(sub.last_error.as_deref().unwrap_or_default().contains("chain of events"), "{:?}", sub.last_error);
    w.assert_canaries("13800000001");

    // One plugin alone may not emit more than a few events per subject either.
    w.enable(w.shops[1], "hostile-ping", json!({"emit": "plugin.ping", "times": 10})).unwrap();
    w.orders("o2", "13800000002");
    w.pass_within(Duration::from_secs(30));
    assert!(w.last_error(w.shops[1], "hostile-ping").contains("at most 4 per subject"), "{}", w.last_error(w.shops[1], "hostile-ping"));
}

/// Issue 27 (4): a plugin may emit so many events per minute in a shop (`[limits]
/// events-per-minute`). Past it the plugin waits in that shop (its deliveries are held back,
/// not failed) until the window has room; the same plugin in the other shop counts its own
/// and goes on.
#[test]
fn a_plugin_emitting_past_its_rate_waits_in_that_shop_only() {
    // The window is shortened from a minute so the test can see it pass.
    let window = Duration::from_secs(3);
    let w = world_with(1, window);
    w.install_as(&plugins::HOSTILE_ECHO, |m| format!("{m}\n[limits]\nevents-per-minute = 10\n")).unwrap();
    // Four events per order in the first shop, two in the second.
    w.enable(w.shops[0], "hostile-echo", json!({"emit": "plugin.ping", "times": 4})).unwrap();
    w.enable(w.shops[1], "hostile-echo", json!({"emit": "plugin.ping", "times": 2})).unwrap();
    let phones = ["13800000001", "13800000002", "13800000003", "13800000004"];
    let started = Instant::now();
    for (n, phone) in phones.iter().enumerate() {
        w.orders(&format!("o{n}"), phone);
        w.pass_within(Duration::from_secs(30));
    }
    assert!(started.elapsed() < window, "the orders took longer than the window; the test proves nothing");
    let emitted = |shop| w.store.events_after(shop, 0, 10_000).unwrap().into_iter().filter(|e| e.kind == "plugin.ping").count();
    // 4, 8, then 12 (a call is let through while the window holds fewer than 10; it may
    // overshoot by its own events), and the fourth order waits: not yet answered.
    assert_eq!(emitted(w.shops[0]), 12);
    let held = w.bus.status(w.shops[0], "hostile-echo").unwrap();
    // Waiting is not failing: no error, no dead letter, nothing counted.
    let sub = &held.subscription;
    assert_eq!((sub.status, sub.attempts, sub.consecutive_failures, sub.last_error.as_deref()), (SubscriptionStatus::Enabled, 0, 0, None));
    assert_eq!(held.open_dead_letters, 0);
    // The second shop's plugin and both canaries went on delivering.
    assert_eq!(emitted(w.shops[1]), 8);
    for phone in phones {
        w.assert_canaries(phone);
    }
    // Once the window has passed, the held order goes out.
    std::thread::sleep(window);
    w.pass_within(Duration::from_secs(30));
    assert_eq!(emitted(w.shops[0]), 16);
}

/// Issue 27 (5): a plugin allowed a long deadline, slow but successful, in both shops. While
/// the slow calls run, new orders reach the first-party plugin in each shop: one worker is
/// always left for calls with the default deadline.
#[test]
fn slow_plugins_leave_a_worker_for_everyone_else() {
    let w = world(2);
    w.install_as(&plugins::HOSTILE_SLEEP, |m| format!("{m}\n[limits]\ntimeout-ms = 30000\n")).unwrap();
    for shop in w.shops {
        w.enable(shop, "hostile-sleep", json!({"sleep_ms": 5000})).unwrap();
    }
    let workers = w.bus.start();
    let tagged = |phone: &str, tag: &str| w.shops.map(|shop| w.tags(shop, phone).iter().any(|(t, _)| t == tag));
    // A fail-safe bound only: the assertions are about what happened first.
    let wait_for = |what: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !what() {
            assert!(started.elapsed() < Duration::from_secs(60), "gave up waiting");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    w.orders("o1", "13800000001");
    wait_for(&|| tagged("13800000001", "lifecycle:new") == [true, true]);
    // A slow call is observably running before the second orders come; the second is held back.
    wait_for(&|| w.bus.long_calls_running() == 1);
    w.orders("o2", "13800000002");
    wait_for(&|| {
        assert!(w.bus.long_calls_running() <= 1, "long calls hold every worker");
        tagged("13800000002", "lifecycle:new") == [true, true]
    });
    assert_eq!(tagged("13800000001", "slept"), [false, false], "a slow call ended before the second orders reached the canaries");
    // The slow plugins succeed in their turn.
    wait_for(&|| tagged("13800000001", "slept") == [true, true] && tagged("13800000002", "slept") == [true, true]);
    w.bus.stop();
    for worker in workers {
        worker.join().unwrap();
    }
    for shop in w.shops {
        assert_eq!(w.store.subscription(shop, "hostile-sleep").unwrap().last_error, None);
    }
}

/// Issue 27 (6): one component under two packages: each keeps its own deadline.
#[test]
fn limits_belong_to_the_package_not_the_component() {
    let w = world(1);
    let limits = |id: &'static str, ms: u32| {
        move |m: String| format!("{}\n[limits]\ntimeout-ms = {ms}\n", m.replace("id = \"hostile-sleep\"", &format!("id = \"{id}\"")))
    };
    w.install_as(&plugins::HOSTILE_SLEEP, limits("sleep-long", 5000)).unwrap();
    w.install_as(&plugins::HOSTILE_SLEEP, limits("sleep-short", 300)).unwrap();
    // The long one is loaded first.
    w.enable(w.shops[0], "sleep-long", json!({"sleep_ms": 1000})).unwrap();
    w.enable(w.shops[0], "sleep-short", json!({"sleep_ms": 1000})).unwrap();
    w.orders("o1", "13800000001");
    w.pass_within(Duration::from_secs(30));
    assert_eq!(w.last_error(w.shops[0], "sleep-long"), "");
    assert_eq!(w.last_error(w.shops[0], "sleep-short"), "the call ran past its deadline of 300ms");
    let tags = w.tags(w.shops[0], "13800000001");
    assert!(tags.contains(&("slept".into(), "sleep-long".into())) && !tags.iter().any(|(_, s)| s == "sleep-short"), "{tags:?}");
    w.assert_canaries("13800000001");
}

/// Issue 27 (7): every manifest field is bounded, refused with the field named.
#[test]
fn manifest_fields_are_bounded() {
    let w = world(1);
    let refused = |edit: &dyn Fn(String) -> String| match w.install_as(&plugins::VIP_TAG, edit) {
        Err(BusError::Invalid(err)) => err,
        other => panic!("{other:?}"),
    };
    let long = "x".repeat(5000);
    let err = refused(&|m| m.replace("description = \"", &format!("description = \"{long}")));
    assert_eq!(err.field, "plugin.toml.description", "{err}");
    let err = refused(&|m| m.replace("vendor = \"", &format!("vendor = \"{long}")));
    assert_eq!(err.field, "plugin.toml.vendor", "{err}");
    let events: Vec<String> = (0..500).map(|i| format!("\"e{i}\"")).collect();
    let err = refused(&|m| m.replace("[\"order.paid\", \"order.refunded\"]", &format!("[{}]", events.join(", "))));
    assert_eq!(err.field, "plugin.toml.events", "{err}");
    let big = "y".repeat(300 << 10);
    let err = refused(&|m| format!("# {big}\n{m}"));
    assert_eq!(err.field, "plugin.toml", "{err}");
    let err = refused(&|m| format!("{m}properties.pad = {{ type = \"string\", description = \"{}\" }}\n", "z".repeat(70 << 10)));
    assert_eq!(err.field, "plugin.toml.config-schema", "{err}");
    assert!(w.store.list_plugins().unwrap().iter().all(|p| p.manifest.id != "vip-tag"));
}

/// Issue 27 (8): effects on one customer are bounded: tags per plugin, points per call, and
/// what one call writes to its key-value space.
#[test]
fn effects_on_a_customer_are_bounded() {
    let w = world(1);
    w.install(&plugins::HOSTILE_EFFECTS);
    w.install(&plugins::HOSTILE_POINTS);
    w.enable(w.shops[0], "hostile-effects", json!({"count": 49_000})).unwrap();
    w.enable(w.shops[1], "hostile-effects", json!({"kv_bytes": 64u64 << 20})).unwrap();
    w.enable(w.shops[0], "hostile-points", json!({"awards": 49_000, "points": 1_000_000_000})).unwrap();
    w.orders("o1", "13800000001");
    w.pass_within(Duration::from_secs(60));

    let error = w.last_error(w.shops[0], "hostile-effects");
    assert!(error.contains("more than 256 tags for customer"), "{error}");
    assert!(!w.tags(w.shops[0], "13800000001").iter().any(|(_, s)| s == "hostile-effects"));
    let error = w.last_error(w.shops[0], "hostile-points");
    assert!(error.contains("more than 1000000000 points"), "{error}");
    // The flood stops at what one call may write, and the delivery goes through.
    assert_eq!(w.last_error(w.shops[1], "hostile-effects"), "");
    let (_, bytes) = w.store.plugin_kv_usage(w.shops[1], "hostile-effects").unwrap();
    assert!(bytes <= 8 << 20, "{bytes} bytes written");
    let logs = w.bus.status(w.shops[1], "hostile-effects").unwrap().logs;
    assert!(logs.iter().any(|l| l.message.contains("one call may write at most")), "{logs:?}");
    w.assert_canaries("13800000001");

    // Across calls too: a customer holds at most 256 tags of one plugin.
    let customer = w.customer_id(w.shops[0], "13800000001");
    let commit = |from: usize, cursor: i64| {
        let decisions: Vec<_> = (from..from + 200)
            .map(|i| kith_domain::plugin::Decision::AddTag { customer_id: customer, tag: format!("t{i}"), reason: String::new() })
            .collect();
        let attempt = Attempt { shop_id: w.shops[0], plugin_id: "hostile-effects", logs: &[], duration: Duration::ZERO, now: Utc::now() };
        w.store.commit_delivery(&attempt, cursor, cursor + 1, &Effects { decisions: &decisions, kv_writes: &[], chain: None })
    };
    let cursor = w.store.subscription(w.shops[0], "hostile-effects").unwrap().cursor;
    commit(0, cursor).unwrap();
    // Past the cap, those tags are refused and logged; the rest of the call commits.
    commit(200, cursor + 1).expect("the delivery commits");
    assert_eq!(w.store.subscription(w.shops[0], "hostile-effects").unwrap().cursor, cursor + 2);
    let held = w.tags(w.shops[0], "13800000001").into_iter().filter(|(_, s)| s == "hostile-effects").count();
    assert_eq!(held, 256);
    let logs = w.bus.status(w.shops[0], "hostile-effects").unwrap().logs;
    assert!(logs.iter().any(|l| l.message.contains("144 tags refused") && l.message.contains("the most one plugin")), "{logs:?}");
}

/// Issue 27 (9): a plugin's declared tag namespace is its own.
#[test]
fn a_plugin_may_not_tag_in_another_plugins_namespace() {
    let w = world(1);
    w.install(&plugins::HOSTILE_EFFECTS);
    w.enable(w.shops[0], "hostile-effects", json!({"tags": ["lifecycle:sleeping"]})).unwrap();
    w.orders("o1", "13800000001");
    w.pass_within(Duration::from_secs(30));
    let error = w.last_error(w.shops[0], "hostile-effects");
    assert!(error.contains("tags starting with `lifecycle:` belong to the plugin lifecycle"), "{error}");
    assert!(!w.tags(w.shops[0], "13800000001").iter().any(|(t, _)| t == "lifecycle:sleeping"));
    w.assert_canaries("13800000001");
    // Nor claim it at install.
    let err = w.install_as(&plugins::VIP_TAG, |m| format!("tag-prefix = \"lifecycle:vip\"\n{m}")).unwrap_err();
    assert!(err.to_string().contains("overlaps `lifecycle:`"), "{err}");
}

/// Issue 27 (10): invisible characters in tags, and scores and expiries out of any sane range.
#[test]
fn values_out_of_range_or_invisible_are_refused() {
    let w = world(1);
    w.install(&plugins::HOSTILE_EFFECTS);
    w.install(&plugins::HOSTILE_SCORE);
    w.install(&plugins::HOSTILE_POINTS);
    w.enable(w.shops[0], "hostile-effects", json!({"tags": ["vip\u{202e}pot"]})).unwrap();
    w.enable(w.shops[1], "hostile-effects", json!({"tags": ["v\u{200b}ip"]})).unwrap();
    w.enable(w.shops[0], "hostile-score", json!({})).unwrap();
    w.enable(w.shops[0], "hostile-points", json!({"awards": 1, "points": 10, "expires_at": i64::MIN})).unwrap();
    w.orders("o1", "13800000001");
    w.pass_within(Duration::from_secs(30));
    for shop in w.shops {
        let error = w.last_error(shop, "hostile-effects");
        assert!(error.contains("tag must not hold invisible characters"), "{error}");
    }
    let error = w.last_error(w.shops[0], "hostile-score");
    assert!(error.contains("score value must be a finite number between"), "{error}");
    let error = w.last_error(w.shops[0], "hostile-points");
    assert!(error.contains("points must expire between 2000-01-01 and 9999-12-31"), "{error}");
    w.assert_canaries("13800000001");
}
