//! Plugin calls: the first-party `high-value` tag rule and `rfm` model over
//! every customer of the shop, in batches of the bus's size, through Kith's
//! real host (`kith-host`, in this process, with the kernel's default limits).
//! Baselines: the same rule's source (plugins/high-value's `decide`)
//! compiled natively into this harness, and hosted by Extism
//! (`kith-bench-extism`, a process of its own).
//!
//! Inputs are built outside the timed part for every contender: snapshots
//! for Kith as the store hands them to the bus (with only the parts the
//! plugin's manifest `reads`, the others empty), the SDK's types for the
//! native rule, and for Extism what its plug-in reads. What is timed is what
//! each host does per batch: instantiate, pass the batch in, run the rule,
//! take the decisions out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Utc};
use kith_domain::model::{Customer as Snapshot, Profile, Score, Stats, Tag};
use kith_domain::plugin::{
    BehaviourSnapshot, Distribution, Grant, History, Manifest, OrderItemSnapshot, OrderSnapshot, Reads, ShopContext, Subject,
};
use kith_host::{CallEnv, Host, HostConfig, Input, KvUsage, Output, Plugin, PluginEnv};
use serde_json::json;

use crate::data::{Customer, Shop};
use crate::report::{Report, percentile};

/// The bus's batch size (`[plugins] batch_size`).
pub const BATCH: usize = 500;
/// RFM's default window.
const RFM_WINDOW_DAYS: u32 = 365;
const DAY_MS: i64 = 86_400_000;

/// The shop's contexts, all time and over RFM's window, computed once.
pub(crate) struct Contexts {
    pub(crate) all: ShopContext,
    window: ShopContext,
}

fn distribution(mut values: Vec<f64>) -> Distribution {
    if values.is_empty() {
        return Distribution::default();
    }
    values.sort_by(f64::total_cmp);
    let average = values.iter().sum::<f64>() / values.len() as f64;
    Distribution { average, quintiles: [0.2, 0.4, 0.6, 0.8].iter().map(|p| percentile(&values, *p)).collect() }
}

impl Contexts {
    pub(crate) fn of(shop: &Shop) -> Contexts {
        let now = shop.now;
        let context = |window: Option<u32>| {
            let since = window.map(|d| now - chrono::Duration::days(i64::from(d)));
            let (mut recency, mut frequency, mut monetary) = (Vec::new(), Vec::new(), Vec::new());
            let (mut revenue, mut orders) = (0i64, 0i64);
            for c in shop.all() {
                let kept: Vec<_> = c.orders.iter().filter(|o| since.is_none_or(|s| o.paid_at >= s)).collect();
                let Some(last) = kept.iter().map(|o| o.paid_at).max() else { continue };
                let spent: i64 = kept.iter().map(|o| o.amount()).sum();
                recency.push((now - last).num_milliseconds() as f64 / DAY_MS as f64);
                frequency.push(kept.len() as f64);
                monetary.push(spent as f64);
                revenue += spent;
                orders += kept.len() as i64;
            }
            ShopContext {
                shop_id: 1,
                now_ms: now.timestamp_millis(),
                window_days: window,
                time_zone: "Asia/Shanghai".into(),
                currency: "CNY".into(),
                customer_count: shop.customers as u64,
                buyer_count: recency.len() as u64,
                recency_days: distribution(recency),
                frequency: distribution(frequency),
                monetary: distribution(monetary),
                average_order_value: if orders > 0 { revenue as f64 / orders as f64 } else { 0.0 },
            }
        };
        Contexts { all: context(None), window: context(Some(RFM_WINDOW_DAYS)) }
    }
}

/// The customer as the store snapshots them for a plugin: profile, stats,
/// the tags and scores the first-party plugins would have set.
fn snapshot(c: &Customer, at: DateTime<Utc>) -> Snapshot {
    let paid: Vec<DateTime<Utc>> = c.orders.iter().map(|o| o.paid_at).collect();
    let total_spent: i64 = c.orders.iter().map(|o| o.amount()).sum();
    let order_count = c.orders.len() as i64;
    let id = c.index as i64 + 1;
    // Every third customer already holds the tag, so that both adds and removes happen.
    let tags = [("high-value", "high-value"), ("vip", "manual")]
        .iter()
        .filter(|(tag, _)| *tag != "high-value" || c.index.is_multiple_of(3))
        .map(|(tag, source)| Tag { tag: (*tag).into(), source: (*source).into(), reason: None, created_at: at })
        .collect();
    let scores = ["rfm", "aipl", "lifecycle", "category-affinity"]
        .iter()
        .map(|model| Score { model: (*model).into(), value: 3.0, label: Some("X|某组|group".into()), explanation: None, scored_at: at })
        .collect();
    Snapshot {
        id,
        profile: Profile {
            name: Some(c.name.clone()),
            birthday: c.birthday,
            city: Some(c.city.into()),
            attributes: serde_json::Map::from_iter([("channel".to_owned(), json!("tmall"))]),
            ..Default::default()
        },
        identities: vec![],
        stats: Stats {
            total_spent,
            order_count,
            first_order_at: paid.first().copied(),
            last_order_at: paid.last().copied(),
            average_order_value: (order_count > 0).then(|| total_spent / order_count),
            refund_count: 0,
            refund_amount: 0,
        },
        tags,
        scores,
        points: 0,
        tier: None,
        created_at: at,
        updated_at: at,
    }
}

/// Orders and behaviours since a time, newest first, as `customers.histories` answers.
fn history(c: &Customer, since_ms: i64) -> History {
    let mut orders: Vec<OrderSnapshot> = c
        .orders
        .iter()
        .filter(|o| o.paid_at.timestamp_millis() >= since_ms)
        .map(|o| OrderSnapshot {
            external_id: o.id.clone(),
            customer_id: c.index as i64 + 1,
            amount: o.amount(),
            refunded_amount: 0,
            status: "paid".into(),
            coupon_code: None,
            paid_at_ms: o.paid_at.timestamp_millis(),
            items: o
                .items
                .iter()
                .map(|i| OrderItemSnapshot {
                    sku: i.sku.clone(),
                    name: None,
                    category: Some(i.category.into()),
                    quantity: i.quantity as u32,
                    unit_price: i.unit_price,
                    discount: 0,
                })
                .collect(),
        })
        .collect();
    orders.reverse();
    let mut behaviours: Vec<BehaviourSnapshot> = c
        .behaviours
        .iter()
        .filter(|b| b.at.timestamp_millis() >= since_ms)
        .map(|b| BehaviourSnapshot {
            kind: b.kind.into(),
            sku: Some(b.sku.clone()),
            category: Some(b.category.into()),
            occurred_at_ms: b.at.timestamp_millis(),
        })
        .collect();
    behaviours.sort_by_key(|b| std::cmp::Reverse(b.occurred_at_ms));
    History { customer_id: c.index as i64 + 1, orders, behaviours, truncated: false }
}

/// What the store lends the host for one batch, in memory.
struct BatchEnv {
    customers: HashMap<i64, Customer>,
    all: ShopContext,
    window: ShopContext,
}

impl PluginEnv for BatchEnv {
    fn read_customer(&mut self, _id: i64) -> Result<Option<Snapshot>> {
        Ok(None)
    }
    fn kv_get(&mut self, _key: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn kv_usage(&mut self) -> Result<KvUsage> {
        Ok(KvUsage { keys: 0, bytes: 0 })
    }
    fn histories(&mut self, ids: &[i64], since_ms: i64) -> Result<Vec<History>> {
        Ok(ids.iter().filter_map(|id| self.customers.get(id)).map(|c| history(c, since_ms)).collect())
    }
    fn shop_context(&mut self, window_days: Option<u32>) -> Result<ShopContext> {
        match window_days {
            None => Ok(self.all.clone()),
            Some(RFM_WINDOW_DAYS) => Ok(self.window.clone()),
            Some(other) => bail!("the benchmark computed windows of {RFM_WINDOW_DAYS} days, not {other}"),
        }
    }
    fn buyers(&mut self, _after: Option<i64>, _limit: usize, _now_ms: i64) -> Result<Vec<kith_domain::plugin::BuyerSummary>> {
        bail!("the benchmark lends no buyer summaries: none of the plugins it measures reads them")
    }
}

/// One first-party plugin, loaded in the host.
pub(crate) struct Loaded {
    pub(crate) plugin: Plugin,
    pub(crate) grant: Grant,
    pub(crate) reads: Reads,
}

impl Loaded {
    /// The customer as the store hands them to the bus for this plugin.
    pub(crate) fn snapshot(&self, c: &Customer, at: DateTime<Utc>) -> Snapshot {
        let mut s = snapshot(c, at);
        self.reads.blank(&mut s);
        s
    }
}

fn load(host: &Host, package: &kith_test_plugins::Package) -> Result<Loaded> {
    let manifest = Manifest::parse(&package.manifest()).map_err(|e| anyhow::anyhow!("{}: {e:?}", package.name))?;
    let plugin = host.load(&manifest, &package.wasm()).with_context(|| format!("loading {}", package.name))?;
    Ok(Loaded { grant: Grant::all_requested(&manifest), reads: manifest.reads(), plugin })
}

/// Customer indexes of each batch.
pub(crate) fn batches(shop: &Shop) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    (0..shop.customers).step_by(BATCH).map(|start| start..(start + BATCH).min(shop.customers))
}

/// One call of the host, its report checked.
fn call(host: &Host, loaded: &Loaded, ctx: &Contexts, customers: &[Customer], input: Input) -> Result<(Duration, Duration, usize)> {
    let env = CallEnv {
        shop_id: 1,
        grant: loaded.grant.clone(),
        config: json!({}),
        now_ms: ctx.all.now_ms,
        services: Box::new(BatchEnv {
            customers: customers.iter().map(|c| (c.index as i64 + 1, c.clone())).collect(),
            all: ctx.all.clone(),
            window: ctx.window.clone(),
        }),
    };
    let report = host.call(&loaded.plugin, env, input);
    match report.output {
        Ok(Output::Decisions(decisions)) => Ok((report.duration, report.instantiation, decisions.len())),
        other => bail!("{} failed: {other:?}", loaded.plugin.id),
    }
}

/// Per pass: seconds over all batches, decisions; and every instantiation.
#[derive(Default)]
pub(crate) struct Pass {
    pub(crate) seconds: f64,
    pub(crate) decisions: usize,
    pub(crate) instantiations: Vec<f64>,
}

pub(crate) fn tag_rule_pass(host: &Host, rule: &Loaded, shop: &Shop, ctx: &Contexts) -> Result<Pass> {
    let mut pass = Pass::default();
    for range in batches(shop) {
        let customers: Vec<Customer> = range.map(|i| shop.customer(i)).collect();
        let subjects = customers.iter().map(|c| Subject { customer: rule.snapshot(c, shop.now), event: None, order: None }).collect();
        let (took, instantiation, decisions) = call(host, rule, ctx, &[], Input::Evaluate(ctx.all.clone(), subjects))?;
        pass.seconds += took.as_secs_f64();
        pass.instantiations.push(instantiation.as_secs_f64());
        pass.decisions += decisions;
    }
    Ok(pass)
}

fn model_pass(host: &Host, model: &Loaded, shop: &Shop, ctx: &Contexts) -> Result<Pass> {
    let mut pass = Pass::default();
    for range in batches(shop) {
        let customers: Vec<Customer> = range.map(|i| shop.customer(i)).collect();
        let snapshots = customers.iter().map(|c| model.snapshot(c, shop.now)).collect();
        let (took, instantiation, decisions) = call(host, model, ctx, &customers, Input::Score(ctx.all.clone(), snapshots))?;
        pass.seconds += took.as_secs_f64();
        pass.instantiations.push(instantiation.as_secs_f64());
        pass.decisions += decisions;
    }
    Ok(pass)
}

/// The SDK's customer, as a plugin sees it, for the native rule.
fn sdk_customer(s: &Snapshot) -> kith_sdk::Customer {
    kith_sdk::Customer {
        id: s.id,
        profile: kith_sdk::Profile {
            name: s.profile.name.clone(),
            gender: None,
            birthday: s.profile.birthday.map(|d| d.to_string()),
            province: None,
            city: s.profile.city.clone(),
            attributes: serde_json::to_string(&s.profile.attributes).unwrap_or_default(),
        },
        stats: kith_sdk::Stats {
            total_spent: s.stats.total_spent,
            order_count: s.stats.order_count as u32,
            average_order_value: s.stats.average_order_value,
            first_order_at: s.stats.first_order_at.map(|t| t.timestamp_millis()),
            last_order_at: s.stats.last_order_at.map(|t| t.timestamp_millis()),
            refund_count: 0,
            refund_amount: 0,
        },
        tags: s.tags.iter().map(|t| kith_sdk::Tag { name: t.tag.clone(), source: t.source.clone() }).collect(),
        scores: vec![],
        points: s.points,
        tier: s.tier.clone(),
        created_at: s.created_at.timestamp_millis(),
    }
}

fn native_pass(shop: &Shop, ctx: &Contexts) -> Pass {
    let config = high_value::Config { aov_multiple: 2.0, min_orders: 3 };
    let mut pass = Pass::default();
    for range in batches(shop) {
        let customers: Vec<kith_sdk::Customer> = range.map(|i| sdk_customer(&snapshot(&shop.customer(i), shop.now))).collect();
        let started = Instant::now();
        let decided: Vec<_> = customers.iter().filter_map(|c| high_value::decide(c, ctx.all.average_order_value, &config)).collect();
        pass.seconds += started.elapsed().as_secs_f64();
        pass.decisions += std::hint::black_box(decided).len();
    }
    pass
}

/// The batches as the Extism plug-in reads them.
fn extism_input(shop: &Shop, ctx: &Contexts) -> serde_json::Value {
    let batches: Vec<Vec<serde_json::Value>> = batches(shop)
        .map(|range| {
            range
                .map(|i| {
                    let s = snapshot(&shop.customer(i), shop.now);
                    let tags: Vec<(&str, &str)> = s.tags.iter().map(|t| (t.tag.as_str(), t.source.as_str())).collect();
                    json!({"id": s.id, "total_spent": s.stats.total_spent, "order_count": s.stats.order_count, "tags": tags})
                })
                .collect()
        })
        .collect();
    json!({"average_order_value": ctx.all.average_order_value, "batches": batches})
}

#[derive(serde::Deserialize)]
struct ExtismTimings {
    passes_ns: Vec<u64>,
    decisions: usize,
    instantiation_ns: Vec<u64>,
    single_call_ns: Vec<u64>,
}

fn extism(shop: &Shop, ctx: &Contexts, runs: usize) -> Result<ExtismTimings> {
    let here = std::env::current_exe()?;
    let runner = here.with_file_name("kith-bench-extism");
    ensure!(runner.is_file(), "{} is missing: cargo build -p kith-bench-extism (cargo xtask bench builds it)", runner.display());
    let input = tempfile::NamedTempFile::new()?;
    serde_json::to_writer(std::io::BufWriter::new(input.as_file()), &extism_input(shop, ctx))?;
    let out = std::process::Command::new(&runner)
        .arg("--guest")
        .arg(kith_test_plugins::EXTISM_HIGH_VALUE)
        .arg("--input")
        .arg(input.path())
        .arg("--runs")
        .arg(runs.to_string())
        .output()
        .with_context(|| format!("running {}", runner.display()))?;
    ensure!(out.status.success(), "kith-bench-extism failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

pub fn run(shop: &Shop, runs: usize, report: &mut Report) -> Result<()> {
    eprintln!("plugins: computing the shop's context over {} customers", shop.customers);
    let ctx = Contexts::of(shop);
    let host = Host::new(HostConfig::default())?;
    let rule = load(&host, &kith_test_plugins::HIGH_VALUE)?;
    let model = load(&host, &kith_test_plugins::RFM)?;
    let n = shop.customers as f64;
    let micros = |seconds: f64| seconds * 1e6 / n;

    let (mut kith, mut native, mut rfm, mut instantiations, mut rfm_instantiations) = (vec![], vec![], vec![], vec![], vec![]);
    let mut native_decisions = 0;
    for run in 0..runs {
        eprintln!("plugins: pass {} of {runs}", run + 1);
        let k = tag_rule_pass(&host, &rule, shop, &ctx)?;
        let nat = native_pass(shop, &ctx);
        ensure!(k.decisions == nat.decisions, "Kith decided {} times, the native rule {}", k.decisions, nat.decisions);
        native_decisions = nat.decisions;
        let r = model_pass(&host, &model, shop, &ctx)?;
        kith.push(micros(k.seconds));
        native.push(micros(nat.seconds));
        rfm.push(micros(r.seconds));
        instantiations.extend(k.instantiations);
        rfm_instantiations.extend(r.instantiations);
        eprintln!("plugins: {} tag decisions, {} RFM scores", k.decisions, r.decisions);
    }
    // One customer per call, as the bus calls for a single event.
    let one = [shop.customer(0)];
    let mut single = Vec::new();
    for _ in 0..1000 {
        let subjects = vec![Subject { customer: rule.snapshot(&one[0], shop.now), event: None, order: None }];
        single.push(call(&host, &rule, &ctx, &one, Input::Evaluate(ctx.all.clone(), subjects))?.0.as_secs_f64() * 1e6);
    }
    let ex = extism(shop, &ctx, runs)?;
    ensure!(ex.decisions == native_decisions, "Extism decided {} times, the native rule {native_decisions}", ex.decisions);
    let ex_per_customer: Vec<f64> = ex.passes_ns.iter().map(|ns| *ns as f64 / 1e3 / n).collect();
    let ex_inst = sorted(ex.instantiation_ns.iter().map(|ns| *ns as f64 / 1e3).collect());
    let ex_single: Vec<f64> = ex.single_call_ns.iter().map(|ns| *ns as f64 / 1e3).collect();
    let inst = sorted(instantiations.iter().map(|s| s * 1e6).collect());
    let rfm_inst = sorted(rfm_instantiations.iter().map(|s| s * 1e6).collect());

    let b = "plugin calls";
    report.add(b, &format!("high-value, per customer (batches of {BATCH})"), "µs", &kith, Some(("native", &native)), Some("≤ 3× native"));
    report.add(b, &format!("high-value, per customer (batches of {BATCH})"), "µs", &kith, Some(("Extism", &ex_per_customer)), None);
    report.add(b, "high-value, instantiation p50", "µs", &[percentile(&inst, 0.5)], Some(("Extism", &[percentile(&ex_inst, 0.5)])), None);
    report.add(b, "high-value, instantiation p99", "µs", &[percentile(&inst, 0.99)], Some(("Extism", &[percentile(&ex_inst, 0.99)])), None);
    report.add(
        b,
        "high-value, one-customer call",
        "µs",
        &[percentile(&sorted(single), 0.5)],
        Some(("Extism", &[percentile(&sorted(ex_single), 0.5)])),
        None,
    );
    report.add(b, &format!("rfm with histories, per customer (batches of {BATCH})"), "µs", &rfm, None, None);
    report.add(b, "rfm, instantiation p50", "µs", &[percentile(&rfm_inst, 0.5)], None, None);
    report.add(b, "rfm, instantiation p99", "µs", &[percentile(&rfm_inst, 0.99)], None, None);
    Ok(())
}
