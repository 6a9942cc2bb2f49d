//! `kith demo`: a demo shop with generated data, an owner key, and the server.
//!
//! The generator is seeded, so a given seed and day give the same shop: spend
//! is heavy-tailed, views outnumber favourites and carts which outnumber
//! purchases, and a few customers first appear under a nickname alone and are
//! merged when a later event names both their nickname and phone.

use kith_core::prelude::*;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use indicatif::ProgressBar;
use kith_core::Actor;
use kith_core::Backend;
use kith_domain::auth::Role;
use kith_domain::model::{NewKey, NewShop, Shop};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::config::Config;
use crate::serve;

pub const DEMO_SHOP: &str = "Demo Shop";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Customers to generate when the demo shop does not exist yet.
    #[arg(long, default_value_t = 2000)]
    customers: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seed the data and print a key, but do not serve.
    #[arg(long)]
    no_serve: bool,
    /// A folder of plugin packages (folders or .tar.gz) to install and enable
    /// on the demo shop; `cargo xtask demo` passes the first-party plugins.
    #[arg(long)]
    plugins: Option<std::path::PathBuf>,
    /// Base URL of a provider stand-in (`cargo xtask demo` starts one on
    /// loopback): the channel connectors are pointed at it and enabled.
    /// Without it they are installed but not enabled.
    #[arg(long)]
    provider: Option<String>,
}

const CATALOGUE: &[(&str, &str, &str, i64)] = &[
    ("BE-001", "玫瑰精华液", "beauty", 29900),
    ("BE-002", "氨基酸洁面乳", "beauty", 8900),
    ("BE-003", "保湿面膜10片", "beauty", 12900),
    ("AP-001", "纯棉T恤", "apparel", 9900),
    ("AP-002", "羊毛大衣", "apparel", 89900),
    ("AP-003", "运动卫衣", "apparel", 25900),
    ("FD-001", "坚果礼盒", "food", 15900),
    ("FD-002", "挂耳咖啡", "food", 6900),
    ("FD-003", "有机大米5kg", "food", 7900),
    ("HM-001", "乳胶枕", "home", 19900),
    ("HM-002", "香薰蜡烛", "home", 5900),
    ("BB-001", "纸尿裤L码", "baby", 13900),
    ("BB-002", "婴儿湿巾", "baby", 3900),
    ("DG-001", "蓝牙耳机", "digital", 39900),
    ("DG-002", "充电宝", "digital", 12900),
];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "杰", "娟"];
const PLACES: &[(&str, &str)] =
    &[("浙江", "杭州"), ("上海", "上海"), ("广东", "深圳"), ("北京", "北京"), ("江苏", "南京"), ("四川", "成都")];
const MOBILE_PREFIXES: &[&str] = &["138", "139", "150", "158", "186", "188"];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The demo shop's events, in ingest order.
pub fn generate(customers: usize, seed: u64, now: DateTime<Utc>) -> Vec<Value> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    let mut merges = Vec::new();
    for i in 0..customers {
        let phone = format!("{}{:08}", MOBILE_PREFIXES[i % MOBILE_PREFIXES.len()], (i as u64 * 7919 + 1234) % 100_000_000);
        let phone_id = json!({"kind": "phone", "value": phone});
        let nick = format!("tb_{i:06}");
        let mut identities = vec![phone_id.clone()];
        if rng.random_bool(0.4) {
            identities.push(json!({"kind": "email", "value": format!("user{i}@example.com")}));
        }
        let duplicate = rng.random_bool(0.03);
        if duplicate {
            // The same person arrives first through another channel, known only by nickname.
            events
                .push(json!({"id": format!("demo-{i}-nick"), "type": "customer.upsert", "identities": [{"kind": "nick", "value": nick}]}));
            merges.push(json!({"id": format!("demo-{i}-link"), "type": "customer.upsert", "identities": [{"kind": "nick", "value": nick}, phone_id]}));
        } else if rng.random_bool(0.5) {
            identities.push(json!({"kind": "nick", "value": nick}));
        }
        let (province, city) = pick(&mut rng, PLACES);
        let birthday = NaiveDate::from_ymd_opt(rng.random_range(1965..2006), rng.random_range(1..=12), rng.random_range(1..=28));
        events.push(json!({"id": format!("demo-{i}-profile"), "type": "customer.upsert", "identities": identities, "profile": {
            "name": format!("{}{}", pick(&mut rng, SURNAMES), pick(&mut rng, GIVEN)),
            "gender": if rng.random_bool(0.6) { "female" } else { "male" },
            "birthday": birthday.map(|d| d.to_string()),
            "province": province, "city": city,
            "attributes": {"channel": pick(&mut rng, &["tmall", "taobao", "douyin", "wechat"])},
        }}));

        let subject = json!([phone_id]);
        let views = rng.random_range(0..20);
        for v in 0..views {
            let (sku, name, category, _) = pick(&mut rng, CATALOGUE);
            let at = now - Duration::minutes(rng.random_range(0..60 * 24 * 120));
            let kind = match rng.random_range(0..12) {
                0 | 1 => "favorite",
                2 => "cart",
                _ => "view",
            };
            events.push(json!({"id": format!("demo-{i}-b{v}"), "type": "behaviour", "occurred_at": at, "identities": subject,
                "behaviour": {"kind": kind, "sku": sku, "product_name": name, "category": category}}));
        }

        // A buyer has their own rhythm (a mean gap of 10 to 120 days between orders), loyalty (a
        // 10 to 70 % chance of leaving after each order) and basket (up to 1 to 4 items): the
        // differences the prediction plugin's models (BG/NBD, Gamma-Gamma) are fitted to.
        let buys = !rng.random_bool(0.35);
        let gap = 10.0 + 110.0 * rng.random::<f64>().powi(2);
        let leaves = 0.1 + 0.6 * rng.random::<f64>();
        let basket = rng.random_range(1..=4);
        let mut at = now - Duration::days(rng.random_range(1..400));
        let mut o = 0;
        while buys && at < now && o < 15 {
            let items: Vec<Value> = (0..rng.random_range(1..=basket))
                .map(|_| {
                    let (sku, name, category, price) = pick(&mut rng, CATALOGUE);
                    json!({"sku": sku, "product_name": name, "category": category, "quantity": rng.random_range(1..=2), "unit_price": price})
                })
                .collect();
            let order_id = format!("DEMO{i:06}{o:02}");
            events.push(json!({"id": format!("demo-{i}-o{o}"), "type": "order.paid", "identities": subject,
                "order": {"id": order_id, "paid_at": at, "items": items}}));
            if rng.random_bool(0.04) {
                events.push(json!({"id": format!("demo-{i}-r{o}"), "type": "order.refunded",
                    "refund": {"order_id": order_id, "amount": 1000, "refunded_at": at + Duration::days(2), "reason": "damaged on delivery"}}));
            }
            o += 1;
            if rng.random_bool(leaves) {
                break;
            }
            at += Duration::days((-(1.0 - rng.random::<f64>()).ln() * gap) as i64 + 1);
        }
    }
    events.extend(merges);
    events
}

fn create_shop(store: &dyn Backend) -> Result<Shop> {
    let shop = NewShop { name: DEMO_SHOP.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    Ok(store.create_shop(&shop, &Actor::cli("demo"))?)
}

/// Ingest the generated history of the shop's customers.
fn seed_history(store: &dyn Backend, shop_id: i64, args: &DemoArgs) -> Result<()> {
    let actor = Actor::cli("demo");
    let events = generate(args.customers, args.seed, Utc::now());
    eprintln!("generating the demo shop: {} customers, {} events", args.customers, events.len());
    let progress = ProgressBar::new(events.len() as u64);
    let mut rejected = 0;
    for chunk in events.chunks(kith_domain::ingest::MAX_BATCH) {
        let report = store.ingest(shop_id, chunk.to_vec(), &actor)?;
        rejected += report.rejected;
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    if rejected > 0 {
        anyhow::bail!("the demo generator produced {rejected} events the kernel rejects");
    }
    Ok(())
}

pub fn run(config: Config, args: DemoArgs) -> Result<()> {
    let backend = config.open_store()?;
    let bus = config.open_bus(backend.clone())?;
    let store = &*backend;
    let existing = store.find_shop_by_name(DEMO_SHOP)?;
    let fresh = existing.is_none();
    let shop = match existing {
        Some(shop) => shop,
        None => create_shop(store)?,
    };
    // A new shop's plugins are enabled before its history arrives, as in a
    // shop that ran them from its first order: the loyalty scheme is handed
    // every past order and awards its points through the ledger, so the
    // points mall has customers who can pay for its reward.
    let Enabled { ids: enabled, held } = match &args.plugins {
        Some(dir) => enable_plugins(&bus, shop.id, dir, args.provider.as_deref(), fresh)?,
        None => Enabled::default(),
    };
    if fresh {
        seed_history(store, shop.id, &args)?;
        if !enabled.is_empty() {
            eprintln!("handing the history to the plugins and running them over every customer");
        }
        bus.drain()?;
        // The schemes' reviews start once the past orders have earned their points.
        let actor = Actor::cli("demo");
        for (id, request) in &held {
            bus.enable(shop.id, id, request, &actor).with_context(|| format!("scheduling {id}'s runs"))?;
        }
    }
    let customers = store.count_customers(shop.id)?;
    let key = store.create_key(
        &NewKey {
            shop_id: Some(shop.id),
            name: format!("demo {}", Utc::now().format("%Y-%m-%d %H:%M:%S")),
            role: Role::Owner,
            scopes: None,
        },
        &Actor::cli("demo"),
    )?;
    // An admin key, for installing plugins of one's own into the catalogue (`kith plugin publish`).
    let admin = store.create_key(
        &NewKey { shop_id: None, name: format!("demo admin {}", Utc::now().format("%Y-%m-%d %H:%M:%S")), role: Role::Admin, scopes: None },
        &Actor::cli("demo"),
    )?;
    let console_user = console_user(store, shop.id, bus.now())?;
    let database = config.database_name();
    let loyalty = seed_loyalty(store, shop.id, enabled.iter().any(|id| id == "tiered-points"))?;
    seed_segments(store, shop.id)?;
    let sms = enabled.iter().any(|id| id == "sms-http");
    if sms {
        welcome_messages(store, shop.id, "sms")?;
    }
    seed_journeys(store, shop.id, sms)?;
    // The banner counts segments on the plugins' scores and on points: it
    // waits for the plugins' runs rather than print counts of nothing.
    if !enabled.is_empty() {
        eprintln!("waiting for the plugins' runs over the demo shop");
    }
    bus.drain()?;
    let banner = move |url: String| {
        println!("\nKith demo: shop {} \"{}\" with {customers} customers ({database})", shop.id, shop.name);
        if !enabled.is_empty() {
            println!("  Plugins: {}", enabled.join(", "));
        }
        match redeemable(store, shop.id) {
            Ok(can) => println!("  Loyalty: {loyalty}; {can}"),
            Err(e) => tracing::warn!(error = %e, "could not count the demo's points"),
        }
        match segment_sizes(store, shop.id) {
            Ok(sizes) => println!("  Segments: {sizes}"),
            Err(e) => tracing::warn!(error = %e, "could not list the demo's segments"),
        }
        match store.journeys(shop.id) {
            Ok(journeys) => {
                let list: Vec<String> = journeys.iter().map(|j| format!("{} ({})", j.name, j.status.as_str())).collect();
                println!("  Journeys: {}", list.join("; "));
            }
            Err(e) => tracing::warn!(error = %e, "could not list the demo's journeys"),
        }
        println!("  URL:     {url}");
        println!("  Console: {url}   login {DEMO_LOGIN}, password {console_user}   (owner; shown once)");
        println!("  API key: {}   (owner; shown once)", key.token);
        println!("  Try:     curl -H 'Authorization: Bearer {}' '{url}/v1/customers?limit=3'", key.token);
        println!("  API:     {url}/openapi.json");
        println!("  Admin:   {}   (admin; installs plugins: shown once)", admin.token);
        println!(
            "  Plugin:  kith plugin new my-rule --kind tag-rule --lang js && cd my-rule && kith plugin publish --url {url} --key {} --enable --shop-key {}   (docs/plugins.md)\n",
            admin.token, key.token
        );
    };
    if args.no_serve {
        banner(format!("http://{}", config.bind));
        return Ok(());
    }
    serve::serve_with(bus, &config, |addr| banner(format!("http://{addr}")))
}

/// The demo's console user.
const DEMO_LOGIN: &str = "demo";

/// Create the demo's owner console user with a random 16-character password, which is
/// returned; when the login exists already (a database used again), give it a new password
/// (which also ends its lock and sessions), as each run prints a new key.
fn console_user(store: &dyn Backend, shop_id: i64, now: DateTime<Utc>) -> Result<String> {
    let password = crate::admin::new_password();
    let actor = Actor::cli("demo");
    let new = kith_domain::model::NewConsoleUser { login: DEMO_LOGIN.into(), name: Some("Demo owner".into()), role: Role::Owner };
    match store.create_console_user(shop_id, &new, Some(&password), &actor, now) {
        Ok(_) => Ok(password),
        Err(kith_core::Error::Conflict(_)) => {
            let (shop, user) = store
                .console_user_by_login(DEMO_LOGIN, now)?
                .ok_or_else(|| anyhow::anyhow!("the demo's console user is taken and then gone"))?;
            store.reset_console_password(shop, user.id, &password, &actor, now).context("resetting the demo's console user's password")?;
            Ok(password)
        }
        Err(e) => Err(e).context("creating the demo's console user"),
    }
}

/// Install every package in `dir` and enable it on the shop with everything
/// it requests and the demo's configuration; their scheduled runs then cover
/// the existing customers. Channel connectors are enabled only with a
/// provider to send to. With `hold_reviews`, loyalty schemes are enabled
/// without their scheduled runs (a review would set today's tier before the
/// past orders earn at theirs), and are returned with the request that
/// schedules them.
fn enable_plugins(bus: &kith_bus::Bus, shop_id: i64, dir: &std::path::Path, provider: Option<&str>, hold_reviews: bool) -> Result<Enabled> {
    let actor = Actor::cli("demo");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading plugin packages in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut enabled = Vec::new();
    let mut held = Vec::new();
    for path in entries {
        let package = kith_bus::Package::from_path(&path).with_context(|| format!("reading the package {}", path.display()))?;
        bus.install(&package, &actor).with_context(|| format!("installing {}", path.display()))?;
        let id = package.manifest.id.clone();
        let Some(request) = demo_request(&package.manifest, provider)? else { continue };
        if hold_reviews && package.manifest.kind == kith_domain::plugin::Kind::LoyaltyScheme {
            let unscheduled = kith_bus::EnableRequest { run_every_hours: Some(0), ..request.clone() };
            bus.enable(shop_id, &id, &unscheduled, &actor).with_context(|| format!("enabling {id}"))?;
            held.push((id.clone(), request));
        } else {
            bus.enable(shop_id, &id, &request, &actor).with_context(|| format!("enabling {id}"))?;
        }
        enabled.push(id);
    }
    Ok(Enabled { ids: enabled, held })
}

/// The plugins the demo enabled, and the loyalty schemes whose scheduled runs wait.
#[derive(Default)]
struct Enabled {
    ids: Vec<String>,
    /// Each held plugin with the request that schedules its runs.
    held: Vec<(String, kith_bus::EnableRequest)>,
}

/// How the demo enables a plugin; `None`: not at all.
fn demo_request(manifest: &kith_domain::plugin::Manifest, provider: Option<&str>) -> Result<Option<kith_bus::EnableRequest>> {
    use kith_domain::plugin::{Grant, Kind};
    let config = match manifest.id.as_str() {
        "tiered-points" => json!({"expiry_days": 365, "birthday_bonus": 100, "tiers": [
            {"name": "silver", "threshold": 0},
            {"name": "gold", "threshold": 200_000, "multiplier": 1.5},
            {"name": "platinum", "threshold": 1_000_000, "multiplier": 2}]}),
        // The default 2,000 customers meet the prediction's own minimums (500 buyers, 100 repeat
        // buyers, 180 days); these let a smaller demo (`--customers 60`) be fitted too.
        "predict" => json!({"min_buyers": 30, "min_repeat_buyers": 10, "min_history_days": 180}),
        _ if manifest.kind != Kind::ChannelConnector => return Ok(Some(kith_bus::EnableRequest::default())),
        id => {
            let Some(base) = provider else { return Ok(None) };
            match id {
                "webhook" => json!({"url": format!("{base}/webhook"), "secret": "whsec_ZGVtby1zaWduaW5nLXNlY3JldC0xMjM0"}),
                "sms-http" => json!({"endpoint": format!("{base}/sms"), "api_key": "demo", "sign_name": "【Kith演示】"}),
                "email-http" => json!({"endpoint": format!("{base}/email"), "api_key": "demo", "from": "Kith demo <demo@kith.example>"}),
                _ => return Ok(None),
            }
        }
    };
    let mut grant = Grant::all_requested(manifest);
    if let Some(base) = provider.filter(|_| manifest.kind == Kind::ChannelConnector) {
        let host = base.trim_start_matches("http://").trim_start_matches("https://").split('/').next().unwrap_or_default();
        grant.allowed_hosts = vec![host.to_owned()];
    }
    Ok(Some(kith_bus::EnableRequest { config: Some(config), grant: Some(grant), ..Default::default() }))
}

/// A coupon template and a reward for points, once.
fn seed_loyalty(store: &dyn Backend, shop_id: i64, scheme: bool) -> Result<String> {
    let actor = Actor::cli("demo");
    if store.rewards(shop_id)?.is_empty() {
        let template = serde_json::from_value(json!({"name": "满100减10", "face_value": 1000, "threshold": 10_000, "valid_days": 30,
            "per_customer_limit": 3, "budget_count": 1000, "budget_money": 1_000_000}))?;
        let template = store.create_coupon_template(shop_id, &template, &actor, Utc::now())?;
        let reward = kith_domain::loyalty::RewardInput {
            name: "10-yuan coupon".into(),
            description: Some("Spend 500 points on 10 off an order of 100".into()),
            points_cost: REWARD_POINTS,
            coupon_template_id: template.id,
            stock: Some(200),
            active: true,
        };
        store.create_reward(shop_id, &reward, &actor, Utc::now())?;
    }
    let rewards = store.rewards(shop_id)?;
    let awards = if scheme { "tiered-points awards points and tiers" } else { "no loyalty scheme is enabled to award points" };
    Ok(format!("{} reward(s) in the points mall; {awards}", rewards.len()))
}

/// What the points mall's reward costs.
const REWARD_POINTS: i64 = 500;

/// How many customers hold the points of the cheapest reward, counted now.
fn redeemable(store: &dyn Backend, shop_id: i64) -> Result<String> {
    let Some(cheapest) = store.rewards(shop_id)?.into_iter().filter(|r| r.active).min_by_key(|r| r.points_cost) else {
        return Ok("no reward to redeem".to_owned());
    };
    let enough = kith_core::segments::Audience::Definition(json!({"stat": "points", "op": "gte", "value": cheapest.points_cost}));
    let (_, count, _) = store.audience_page(shop_id, &enough, 0, 1, true, Utc::now())?;
    Ok(format!("{} customer(s) hold the {} points of \"{}\"", count.unwrap_or_default(), cheapest.points_cost, cheapest.name))
}

/// A few segments a merchant would start with, once.
fn seed_segments(store: &dyn Backend, shop_id: i64) -> Result<()> {
    let actor = Actor::cli("demo");
    if store.list_segments(shop_id)?.is_empty() {
        let segments = [
            (
                "Cleanser buyers without serum (30 days)",
                json!({"and": [{"purchase": {"sku": "BE-002"}, "window": {"last_days": 30}},
                               {"not": {"purchase": {"sku": "BE-001"}, "window": {"last_days": 30}}}]}),
            ),
            (
                "Sleeping big spenders",
                json!({"and": [{"stat": "total_spent", "op": "gte", "value": 100_000}, {"stat": "days_since_last_order", "op": "gt", "value": 90}]}),
            ),
            ("Important value (RFM)", json!({"score": "rfm", "label": "important-value"})),
            (
                "Browsed beauty, never bought",
                json!({"and": [{"behaviour": "view", "category": "beauty", "window": {"last_days": 30}},
                                                            {"stat": "order_count", "op": "eq", "value": 0}]}),
            ),
        ];
        for (name, definition) in segments {
            let input = kith_domain::segments::SegmentInput { name: name.into(), description: None, definition };
            store.create_segment(shop_id, &input, &actor, Utc::now())?;
        }
    }
    Ok(())
}

/// Three journeys of the seeds' examples, once: active when SMS can go out, drafts otherwise.
fn seed_journeys(store: &dyn Backend, shop_id: i64, sms: bool) -> Result<()> {
    let actor = Actor::cli("demo");
    if !store.journeys(shop_id)?.is_empty() {
        return Ok(());
    }
    let template = store.coupon_templates(shop_id)?.first().map(|t| t.id).context("the demo's coupon template")?;
    let sleeping = store.list_segments(shop_id)?.into_iter().find(|s| s.name == "Sleeping big spenders").map(|s| s.id);
    let mut journeys = vec![
        (
            "First order: member card, then a coupon",
            json!({"trigger": {"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]},
            "goal": {"event": "order.paid", "within_days": 30}, "holdout_percent": 10,
            "start": "card", "steps": {
                "card": {"send": {"channel": "sms", "template": "SMS_MEMBER_CARD", "variables": {"name": "{{customer.name}}"}}, "next": "wait"},
                "wait": {"wait": {"days": 15, "until": "10:00"}, "next": "coupon"},
                "coupon": {"coupon": {"template_id": template}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "SMS_COUPON", "variables": {"code": "{{coupon.code}}", "until": "{{coupon.expires_at}}"}}}
            }}),
        ),
        (
            "Birthday greeting",
            json!({"trigger": {"date": {"field": "birthday", "offset_days": -7, "at": "10:00"}},
            "entry": {"reentry": true, "min_interval_days": 300},
            "goal": {"event": "order.paid", "within_days": 14},
            "start": "gift", "steps": {
                "gift": {"coupon": {"template_id": template}, "next": "greet"},
                "greet": {"send": {"channel": "sms", "template": "SMS_BIRTHDAY", "variables": {"name": "{{customer.name}}", "code": "{{coupon.code}}"}}}
            }}),
        ),
    ];
    if let Some(segment) = sleeping {
        journeys.push((
            "Win back sleeping big spenders",
            json!({"trigger": {"segment": segment}, "goal": {"event": "order.paid", "within_days": 90}, "holdout_percent": 10,
            "budget": {"messages": 5000},
            "start": "first", "steps": {
                "first": {"send": {"channel": "sms", "template": "SMS_WINBACK"}, "next": "wait"},
                "wait": {"wait": {"days": 30}, "next": "second"},
                "second": {"send": {"channel": "sms", "template": "SMS_WINBACK_2"}}
            }}),
        ));
    }
    for (name, definition) in journeys {
        let input = kith_domain::journeys::JourneyInput { name: name.into(), description: None, definition };
        let journey = store.create_journey(shop_id, &input, &actor, Utc::now())?;
        if sms {
            store.set_journey_status(shop_id, journey.id, kith_domain::journeys::JourneyStatus::Active, &actor, Utc::now())?;
        }
    }
    Ok(())
}

/// Each segment with its tracked size, for the banner.
fn segment_sizes(store: &dyn Backend, shop_id: i64) -> Result<String> {
    let segments = store.list_segments(shop_id)?;
    let sizes: Vec<String> = segments.iter().map(|s| format!("{} ({})", s.name, s.members)).collect();
    Ok(sizes.join("; "))
}

/// A welcome SMS to the first few customers with a phone, through the outbox.
fn welcome_messages(store: &dyn Backend, shop_id: i64, channel: &str) -> Result<()> {
    let customers = store.list_customers(shop_id, &Default::default(), 0, 20)?;
    for customer in customers.iter().filter(|c| c.identities.iter().any(|i| i.kind == "phone")).take(3) {
        let request = kith_domain::messaging::SendRequest {
            customer_id: customer.id,
            channel: channel.into(),
            template: "SMS_WELCOME".into(),
            variables: [("name".to_string(), customer.profile.name.clone().unwrap_or_default())].into(),
            idempotency_key: format!("demo-welcome-{}", customer.id),
        };
        store.enqueue_message(shop_id, &request, "demo", Utc::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kith_core::console::SignIn;

    use super::*;

    #[test]
    fn a_demo_run_again_gives_the_demo_user_a_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { database: dir.path().join("kith.db"), ..Config::default() };
        let store = config.open_store().unwrap();
        let shop = create_shop(&*store).unwrap().id;
        let now = Utc::now();
        let first = console_user(&*store, shop, now).unwrap();
        let second = console_user(&*store, shop, now).unwrap();
        assert_ne!(first, second);
        assert!(matches!(store.console_sign_in(DEMO_LOGIN, &first, now).unwrap(), SignIn::Refused));
        assert!(matches!(store.console_sign_in(DEMO_LOGIN, &second, now).unwrap(), SignIn::SignedIn(_)));
    }
}
