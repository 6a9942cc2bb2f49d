//! The host against real components compiled from tests/plugins: good
//! plugins do their work, hostile ones are contained with a clear error, and
//! the host keeps serving.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use kith_domain::model::{Customer, Stats, Tag};
use kith_domain::plugin::{
    Capability, Decision, Delivery, Grant, GuestError, Kind, LogLevel, Manifest, OutboundMessage, ShopContext, Subject,
};
use kith_host::{CallEnv, CallError, Host, HostConfig, Input, KvUsage, LoadError, Output, Plugin, PluginEnv};
use kith_test_plugins as plugins;

/// A shop of three customers and an empty key-value space, in memory: what
/// the bus lends the host over the store.
#[derive(Default)]
struct Shop {
    customers: HashMap<i64, Customer>,
    kv: HashMap<String, Vec<u8>>,
}

impl PluginEnv for Shop {
    fn read_customer(&mut self, id: i64) -> anyhow::Result<Option<Customer>> {
        Ok(self.customers.get(&id).cloned())
    }
    fn kv_get(&mut self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key).cloned())
    }
    fn kv_usage(&mut self) -> anyhow::Result<KvUsage> {
        Ok(KvUsage { keys: self.kv.len() as u64, bytes: self.kv.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum() })
    }
    fn histories(&mut self, ids: &[i64], _since_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::History>> {
        let history = |id| kith_domain::plugin::History { customer_id: id, orders: vec![], behaviours: vec![], truncated: false };
        Ok(ids.iter().filter(|id| self.customers.contains_key(id)).map(|id| history(*id)).collect())
    }
    fn shop_context(&mut self, window_days: Option<u32>) -> anyhow::Result<ShopContext> {
        Ok(ShopContext { window_days, ..context() })
    }
    fn buyers(&mut self, _after: Option<i64>, _limit: usize, _now_ms: i64) -> anyhow::Result<Vec<kith_domain::plugin::BuyerSummary>> {
        Ok(Vec::new())
    }
}

fn customer(id: i64, total_spent: i64, tags: &[&str]) -> Customer {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    Customer {
        id,
        profile: Default::default(),
        identities: vec![],
        stats: Stats { total_spent, order_count: 1, ..Default::default() },
        tags: tags.iter().map(|t| Tag { tag: (*t).into(), source: "vip-tag".into(), reason: None, created_at: at }).collect(),
        scores: vec![],
        points: 0,
        tier: None,
        created_at: at,
        updated_at: at,
    }
}

fn shop() -> Shop {
    Shop { customers: [(1, customer(1, 250_000, &[])), (2, customer(2, 5_000, &["vip"]))].into(), kv: HashMap::new() }
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        Host::new(HostConfig {
            default_timeout: Duration::from_millis(500),
            default_memory: 32 << 20,
            max_decisions: 10_000,
            ..HostConfig::default()
        })
        .unwrap()
    })
}

fn load(package: &plugins::Package) -> Plugin {
    let manifest = Manifest::parse(&package.manifest()).unwrap();
    host().load(&manifest, &package.wasm()).unwrap()
}

fn env(grant: &[Capability], config: serde_json::Value) -> CallEnv {
    CallEnv {
        shop_id: 7,
        grant: Grant { capabilities: grant.iter().copied().collect(), allowed_hosts: vec![] },
        config,
        now_ms: 1_800_000_000_000,
        services: Box::new(shop()),
    }
}

fn context() -> ShopContext {
    ShopContext { shop_id: 7, now_ms: 1_800_000_000_000, time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), ..Default::default() }
}

fn subjects() -> Vec<Subject> {
    let shop = shop();
    [1, 2].iter().map(|id| Subject { customer: shop.customers[id].clone(), event: None, order: None }).collect()
}

fn evaluate(plugin: &Plugin, env: CallEnv) -> kith_host::CallReport {
    host().call(plugin, env, Input::Evaluate(context(), subjects()))
}

const ALL: &[Capability] = &[
    Capability::Log,
    Capability::Config,
    Capability::Kv,
    Capability::Clock,
    Capability::CustomersRead,
    Capability::TagsWrite,
    Capability::EventsEmit,
];

#[test]
fn a_tag_rule_decides_logs_and_writes_its_kv() {
    let plugin = load(&plugins::VIP_TAG);
    let report = evaluate(&plugin, env(ALL, serde_json::json!({"threshold": 100_000})));
    assert!(report.instantiation > Duration::ZERO && report.instantiation < report.duration, "{report:?}");
    let Ok(Output::Decisions(decisions)) = report.output else { panic!("{:?}", report.output) };
    assert_eq!(decisions.len(), 3, "{decisions:?}");
    assert!(matches!(&decisions[0], Decision::AddTag { customer_id: 1, tag, .. } if tag == "vip"));
    assert!(matches!(&decisions[1], Decision::EmitEvent { event_type, .. } if event_type == "plugin.vip-tag.promoted"));
    assert!(matches!(&decisions[2], Decision::RemoveTag { customer_id: 2, .. }));
    assert_eq!(report.kv_writes, vec![("evaluations".to_string(), Some(b"2".to_vec()))]);
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].message, "evaluating 2 customers of shop 7 at 1800000000000", "the kernel's clock, not the machine's");
}

#[test]
fn a_0_1_build_is_served_through_the_shim_with_the_same_results() {
    // The same rule built against the frozen wit/v0.1 without the SDK, and with the SDK against 0.2.
    let legacy = load(&plugins::LEGACY_VIP_TAG);
    let current = load(&plugins::VIP_TAG);
    let config = serde_json::json!({"threshold": 100_000});
    // Customer 2 carries `vip` set by vip-tag in the fixture; for the legacy build, set by it.
    let mut legacy_subjects = subjects();
    for subject in &mut legacy_subjects {
        subject.customer.tags.iter_mut().for_each(|t| t.source = "legacy-vip-tag".into());
    }
    let old = host().call(&legacy, env(ALL, config.clone()), Input::Evaluate(context(), legacy_subjects));
    let new = evaluate(&current, env(ALL, config));
    let (Ok(Output::Decisions(old_decisions)), Ok(Output::Decisions(new_decisions))) = (&old.output, &new.output) else {
        panic!("{:?} {:?}", old.output, new.output)
    };
    let renamed: Vec<Decision> = new_decisions
        .iter()
        .cloned()
        .map(|d| match d {
            Decision::EmitEvent { customer_id, payload, .. } => {
                Decision::EmitEvent { customer_id, event_type: "plugin.legacy-vip-tag.promoted".into(), payload }
            }
            other => other,
        })
        .collect();
    assert_eq!(old_decisions, &renamed, "decisions convert up from 0.1 unchanged");
    assert_eq!(old.kv_writes, new.kv_writes);
    assert_eq!(old.logs, new.logs, "log, clock, config and kv imports answer a 0.1 build as a 0.2 one");

    // Errors convert both ways: an import's refusal down, the guest's error up.
    let no_kv: Vec<_> = ALL.iter().copied().filter(|c| *c != Capability::Kv).collect();
    let report = evaluate(&legacy, env(&no_kv, serde_json::json!({"threshold": 1})));
    assert_eq!(report.output, Err(CallError::Guest(GuestError::AccessDenied("capability `kv` is not granted".into()))));
    let report = evaluate(&legacy, env(ALL, serde_json::json!({"threshold": 1, "fail": true})));
    assert_eq!(report.output, Err(CallError::Guest(GuestError::Failed("configured to fail".into()))));

    // A 0.1 build is checked against its kind's 0.1 world.
    let mut manifest = Manifest::parse(&plugins::LEGACY_VIP_TAG.manifest()).unwrap();
    manifest.kind = Kind::LoyaltyScheme;
    manifest.capabilities.clear();
    let err = host().load(&manifest, &plugins::LEGACY_VIP_TAG.wasm()).unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { world: "loyalty-scheme", .. }), "{err}");
    // And its manifest must say 0.1.
    let mut manifest = Manifest::parse(&plugins::LEGACY_VIP_TAG.manifest()).unwrap();
    manifest.api_version = "0.2.0".parse().unwrap();
    let err = host().load(&manifest, &plugins::LEGACY_VIP_TAG.wasm()).unwrap_err();
    assert!(matches!(&err, LoadError::ApiVersion { manifest, component } if manifest == "0.2.0" && component == "0.1.0"), "{err}");
}

#[test]
fn an_import_without_its_grant_answers_access_denied() {
    let plugin = load(&plugins::VIP_TAG);
    let no_kv: Vec<_> = ALL.iter().copied().filter(|c| *c != Capability::Kv).collect();
    let report = evaluate(&plugin, env(&no_kv, serde_json::json!({"threshold": 1})));
    assert_eq!(report.output, Err(CallError::Guest(GuestError::AccessDenied("capability `kv` is not granted".into()))));
    assert!(report.kv_writes.is_empty());

    let ungranted = load(&plugins::HOSTILE_UNGRANTED);
    let report = evaluate(&ungranted, env(&[Capability::TagsWrite], serde_json::json!({})));
    assert_eq!(report.output, Err(CallError::Guest(GuestError::AccessDenied("capability `kv` is not granted".into()))));
}

#[test]
fn hostile_plugins_are_contained_and_the_host_keeps_serving() {
    type Expected = fn(&CallError) -> bool;
    let cases: [(&plugins::Package, Expected); 6] = [
        (&plugins::HOSTILE_LOOP, |e| matches!(e, CallError::Timeout(d) if *d == Duration::from_millis(500))),
        (&plugins::HOSTILE_MEMORY, |e| matches!(e, CallError::Memory(m) if *m == 32 << 20)),
        (&plugins::HOSTILE_OUTPUT, |e| matches!(e, CallError::Output(m) if m.contains("200000 decisions; at most 10000"))),
        (&plugins::HOSTILE_PANIC, |e| matches!(e, CallError::Trap(m) if m.contains("unreachable"))),
        (&plugins::HOSTILE_RECURSION, |e| matches!(e, CallError::Trap(m) if m.contains("call stack exhausted"))),
        (&plugins::HOSTILE_RANDOM, |e| matches!(e, CallError::Trap(m) if m.contains("exceeds limit 65536"))),
    ];
    for (package, expected) in cases {
        let plugin = load(package);
        let report = evaluate(&plugin, env(ALL, serde_json::json!({})));
        let err = report.output.as_ref().expect_err(package.name);
        assert!(expected(err), "{}: {err}", package.name);
    }
    let panic = evaluate(&load(&plugins::HOSTILE_PANIC), env(ALL, serde_json::json!({})));
    assert!(
        panic.logs.iter().any(|l| l.level == LogLevel::Warn && l.message.contains("hostile plugin panicked on purpose")),
        "the panic message reaches the plugin's log: {:?}",
        panic.logs
    );

    let good = evaluate(&load(&plugins::VIP_TAG), env(ALL, serde_json::json!({"threshold": 100_000})));
    assert!(good.output.is_ok(), "{:?}", good.output);
}

#[test]
fn another_shops_customer_is_not_found() {
    let plugin = load(&plugins::HOSTILE_SNOOP);
    let report = evaluate(
        &plugin,
        env(&[Capability::Log, Capability::Config, Capability::CustomersRead, Capability::TagsWrite], serde_json::json!({"target": 99})),
    );
    assert_eq!(report.logs[0].message, "read of 99: Error::NotFound(\"customer 99\")");
    // The decision it returns names a customer outside the shop; the bus refuses it on apply.
    assert!(matches!(report.output, Ok(Output::Decisions(ref d)) if d.len() == 1));
}

/// A provider on loopback that answers every request with `200 msg-1` and hands back what it received.
fn provider() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 16 << 10];
            let mut got = Vec::new();
            // The whole request, headers and `content-length` bytes of body: closing with unread
            // bytes in the socket makes the kernel reset the connection, and the client may see
            // the reset before the answer.
            while !(request_complete(&got) && String::from_utf8_lossy(&got).contains("\"template\"")) {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nmsg-1").unwrap();
            tx.send(String::from_utf8_lossy(&got).into_owned()).unwrap();
        }
    });
    (port, rx)
}

/// Whether `got` holds the headers and the whole body: as many bytes as `content-length`
/// says, or, sent in chunks, up to the last (empty) chunk — answering and closing before it
/// came would reset the connection under the client.
fn request_complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
    let chunked = head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(name, value)| name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked"))
    });
    if chunked {
        return body == "0\r\n\r\n" || body.ends_with("\r\n0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

fn deliver(url: String, hosts: &[&str]) -> kith_host::CallReport {
    let plugin = load(&plugins::POST_CONNECTOR);
    let env = CallEnv {
        grant: Grant {
            capabilities: [Capability::Log, Capability::Config, Capability::Http].into(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        },
        ..env(&[], serde_json::json!({ "url": url }))
    };
    let message = OutboundMessage {
        id: "m-1".into(),
        customer_id: 1,
        channel: "webhook".into(),
        recipient: "r".into(),
        template: "welcome".into(),
        variables: vec![],
    };
    host().call(&plugin, env, Input::Send(context(), message))
}

#[test]
fn a_connector_reaches_granted_hosts_only() {
    let (port, received) = provider();
    let report = deliver(format!("http://127.0.0.1:{port}/hook"), &["127.0.0.1"]);
    assert_eq!(report.output, Ok(Output::Delivery(Delivery::Accepted { provider_id: Some("msg-1".into()) })));
    let request = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    assert!(request.contains("idempotency-key: m-1"), "{request}");

    // Declared by the manifest but not granted by the shop.
    let report = deliver(format!("http://127.0.0.1:{port}/hook"), &[]);
    assert!(matches!(report.output, Err(CallError::Guest(GuestError::AccessDenied(_)))), "{:?}", report.output);
    // Not declared at all.
    let report = deliver(format!("http://localhost:{port}/hook"), &["127.0.0.1"]);
    assert!(matches!(report.output, Err(CallError::Guest(GuestError::AccessDenied(_)))), "{:?}", report.output);
    assert!(report.logs.iter().any(|l| l.message.contains(&format!("`localhost:{port}` denied"))), "{:?}", report.logs);
    assert!(received.try_recv().is_err(), "no denied request reached the provider");
}

#[test]
fn loading_checks_the_world_of_the_kind() {
    let mut manifest = Manifest::parse(&plugins::VIP_TAG.manifest()).unwrap();
    manifest.kind = Kind::ScoringModel;
    manifest.capabilities.clear();
    let err = host().load(&manifest, &plugins::VIP_TAG.wasm()).unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld { world: "scoring-model", .. }), "{err}");
    let err = host().load(&manifest, b"\0asm not really").unwrap_err();
    assert!(matches!(err, LoadError::Invalid(_)), "{err}");
}

#[test]
fn a_restart_loads_compiled_components_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = || HostConfig { cache_dir: Some(dir.path().to_path_buf()), ..HostConfig::default() };
    let manifest = Manifest::parse(&plugins::VIP_TAG.manifest()).unwrap();
    let first = Host::new(config()).unwrap();
    first.load(&manifest, &plugins::VIP_TAG.wasm()).unwrap();
    assert_eq!(first.cache_stats(), Some((0, 1)));
    drop(first);
    let second = Host::new(config()).unwrap();
    second.load(&manifest, &plugins::VIP_TAG.wasm()).unwrap();
    assert_eq!(second.cache_stats(), Some((1, 0)), "the second start compiles nothing");
}

#[test]
fn a_tag_rule_written_in_python_runs_with_nothing_granted_but_its_capabilities() {
    // componentize-py's component imports filesystem, sockets and random; the
    // host links them with nothing granted. Compiling an interpreter is slow in
    // a debug build: the cache under the target directory keeps it to once.
    let cache = std::path::Path::new(plugins::BIG_SPENDER.wasm).parent().unwrap().join("wasmtime-cache");
    let host = Host::new(HostConfig { cache_dir: Some(cache), ..HostConfig::default() }).unwrap();
    let manifest = Manifest::parse(&plugins::BIG_SPENDER.manifest()).unwrap();
    let plugin = host.load(&manifest, &plugins::BIG_SPENDER.wasm()).unwrap();
    assert_eq!(plugin.limits.memory, 256 << 20, "the manifest's memory request, within the host's maximum");
    let report =
        host.call(&plugin, env(&[Capability::Log, Capability::TagsWrite], serde_json::json!({})), Input::Evaluate(context(), subjects()));
    let Ok(Output::Decisions(decisions)) = report.output else { panic!("{:?} {:?}", report.output, report.logs) };
    assert_eq!(decisions, vec![Decision::AddTag { customer_id: 1, tag: "big-spender".into(), reason: "spent 250000".into() }]);
    assert_eq!(report.logs[0].message, "python evaluating 2 customers of shop 7");

    let report = host.call(&plugin, env(&[Capability::TagsWrite], serde_json::json!({})), Input::Evaluate(context(), subjects()));
    assert!(report.output.is_err(), "without `log` the import fails and the Python plugin raises: {:?}", report.output);
}

#[test]
fn a_plugin_may_ask_for_a_fuel_budget() {
    let manifest = format!("{}\n[limits]\nfuel = 5000000\n", plugins::HOSTILE_LOOP.manifest());
    let manifest = Manifest::parse(&manifest).unwrap();
    let plugin = host().load(&manifest, &plugins::HOSTILE_LOOP.wasm()).unwrap();
    let report = evaluate(&plugin, env(ALL, serde_json::json!({})));
    assert_eq!(report.output, Err(CallError::Fuel(5_000_000)), "out of fuel long before the deadline");
}

#[test]
fn a_call_reports_the_fuel_memory_and_output_it_used() {
    let report = evaluate(&load(&plugins::VIP_TAG), env(ALL, serde_json::json!({"threshold": 100_000})));
    let Ok(Output::Decisions(decisions)) = &report.output else { panic!("{:?}", report.output) };
    // The output's bytes of text are those counted against the host's cap: tags, reasons, event types, payloads.
    let text: usize = decisions
        .iter()
        .map(|d| match d {
            Decision::AddTag { tag, reason, .. } | Decision::RemoveTag { tag, reason, .. } => tag.len() + reason.len(),
            Decision::EmitEvent { event_type, payload, .. } => event_type.len() + payload.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(report.output_bytes, text);
    let fuel = report.fuel_used.expect("the host counts fuel");
    assert!(fuel > 1_000, "{fuel}");
    // A Rust tag rule's memory is its initial pages and a little heap, below the 32 MiB limit.
    assert!(report.peak_memory >= 64 << 10 && report.peak_memory < 32 << 20, "{}", report.peak_memory);

    // Running out of memory reports the most it held: up to the limit, not past it.
    let hostile = evaluate(&load(&plugins::HOSTILE_MEMORY), env(ALL, serde_json::json!({})));
    assert!(matches!(hostile.output, Err(CallError::Memory(_))), "{:?}", hostile.output);
    assert!(hostile.peak_memory > 16 << 20 && hostile.peak_memory <= 32 << 20, "{}", hostile.peak_memory);
    assert_eq!(hostile.output_bytes, 0);
    // A budget's fuel is all used when the call runs out of it.
    let manifest = Manifest::parse(&format!("{}\n[limits]\nfuel = 5000000\n", plugins::HOSTILE_LOOP.manifest())).unwrap();
    let looping = evaluate(&host().load(&manifest, &plugins::HOSTILE_LOOP.wasm()).unwrap(), env(ALL, serde_json::json!({})));
    assert_eq!(looping.fuel_used, Some(5_000_000));
}
