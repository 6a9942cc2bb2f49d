//! A seeded generator of realistic shops.
//!
//! Each customer is generated from their own random stream (the seed and the
//! customer's index), so any slice of customers can be produced on its own,
//! in any order, by any client: the same seed always gives the same shop.
//!
//! - Orders per buyer follow a Pareto law (a few customers buy very often),
//!   30 % of customers never buy; gaps between orders are exponential around
//!   the customer's own rhythm, the last within 180 days, none older than 3
//!   years; order value is log-normal around the SKU's price.
//! - 20 categories × 50 SKUs with Zipf-like popularity; `consumable` is one
//!   of the categories.
//! - Behaviours: views ≫ favourites and carts ≫ purchases, in the last 90 days.
//! - Identities: a phone for everyone, an e-mail for 40 %; 2 % of customers
//!   first arrive by nickname alone and are merged when their phone appears.
//! - Birthdays for 70 %.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// How big a shop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// CI's smoke test: a few hundred customers.
    Tiny,
    /// 10k customers, ~100k orders, ~300k behaviours.
    Small,
    /// 1M customers, ~10M orders, ~30M behaviours.
    Large,
}

impl Scale {
    pub fn customers(self) -> usize {
        match self {
            Scale::Tiny => 300,
            Scale::Small => 10_000,
            Scale::Large => 1_000_000,
        }
    }
}

pub const CATEGORIES: [&str; 20] = [
    "skincare",
    "consumable",
    "makeup",
    "haircare",
    "fragrance",
    "baby",
    "snacks",
    "tea",
    "digital",
    "home",
    "kitchen",
    "pet",
    "sports",
    "outdoor",
    "books",
    "toys",
    "shoes",
    "bags",
    "watches",
    "health",
];
pub const SKUS_PER_CATEGORY: usize = 50;

/// The SKU code of a category and index, e.g. `SKINCARE-007`.
pub fn sku(category: usize, index: usize) -> String {
    format!("{}-{index:03}", CATEGORIES[category].to_uppercase())
}

/// A SKU's list price in fen: 9.90 to 999 yuan, the same for every run.
fn price(category: usize, index: usize) -> i64 {
    let h = (category * 7919 + index * 104_729) % 1000;
    990 + (h as i64 * h as i64 * 99_000) / 1_000_000
}

#[derive(Debug, Clone)]
pub struct Item {
    pub sku: String,
    pub category: &'static str,
    pub quantity: i64,
    pub unit_price: i64,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub paid_at: DateTime<Utc>,
    pub items: Vec<Item>,
}

impl Order {
    pub fn amount(&self) -> i64 {
        self.items.iter().map(|i| i.quantity * i.unit_price).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    pub kind: &'static str,
    pub sku: String,
    pub category: &'static str,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub index: usize,
    pub phone: String,
    pub email: Option<String>,
    /// Arrives first by nickname alone, merged when the phone appears.
    pub nick_first: Option<String>,
    pub name: String,
    pub city: &'static str,
    pub birthday: Option<NaiveDate>,
    pub orders: Vec<Order>,
    pub behaviours: Vec<Behaviour>,
}

const MOBILE_PREFIXES: [&str; 6] = ["138", "139", "150", "158", "186", "188"];
const CITIES: [&str; 8] = ["杭州", "上海", "深圳", "北京", "南京", "成都", "广州", "武汉"];

/// A category and SKU index, popular ones more often (Zipf-like).
fn pick_sku(rng: &mut ChaCha8Rng) -> (usize, usize) {
    let zipf = |rng: &mut ChaCha8Rng, n: usize| ((n as f64).powf(rng.random::<f64>()) as usize).saturating_sub(1).min(n - 1);
    (zipf(rng, CATEGORIES.len()), zipf(rng, SKUS_PER_CATEGORY))
}

/// The shop: `customers` of them, from `seed`, as of `now`.
#[derive(Debug, Clone, Copy)]
pub struct Shop {
    pub customers: usize,
    pub seed: u64,
    pub now: DateTime<Utc>,
}

impl Shop {
    pub fn new(scale: Scale, seed: u64, now: DateTime<Utc>) -> Shop {
        Shop { customers: scale.customers(), seed, now }
    }

    pub fn customer(&self, index: usize) -> Customer {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Real mobile prefixes; 48,271 is prime to 10⁸, so numbers never repeat below 10⁸ customers.
        let phone = format!("{}{:08}", MOBILE_PREFIXES[index % MOBILE_PREFIXES.len()], (index as u64 * 48_271 + 1_000_003) % 100_000_000);
        let email = rng.random_bool(0.4).then(|| format!("u{index}@example.com"));
        let nick_first = rng.random_bool(0.02).then(|| format!("nick_{index}"));
        let birthday = rng.random_bool(0.7).then(|| {
            NaiveDate::from_ymd_opt(rng.random_range(1965..2006), rng.random_range(1..=12), rng.random_range(1..=28)).expect("valid date")
        });
        let city = CITIES[rng.random_range(0..CITIES.len())];
        // Pareto(α = 1.5, x_m = 6.5) for buyers: mean 19.5 (fewer once 3 years are full), a long tail of frequent buyers; 30 % never buy.
        let orders_n = if rng.random_bool(0.3) { 0 } else { ((6.5 / (1.0 - rng.random::<f64>()).powf(1.0 / 1.5)) as usize).min(300) };
        // Going back from the last order (within the last 180 days) by gaps around the customer's rhythm, at most 3 years.
        let rhythm_days = rng.random_range(3.0..45.0);
        let oldest = self.now - Duration::days(1095);
        let mut at = self.now - Duration::minutes((rng.random::<f64>() * 180.0 * 1440.0) as i64 + 60);
        let mut placed = Vec::with_capacity(orders_n);
        while placed.len() < orders_n && at > oldest {
            let items: Vec<Item> = (0..rng.random_range(1..=3))
                .map(|_| {
                    let (c, s) = pick_sku(&mut rng);
                    // Log-normal-ish spread around the list price (discounts, bundles).
                    let factor = (rng.random::<f64>() - 0.5).exp();
                    Item {
                        sku: sku(c, s),
                        category: CATEGORIES[c],
                        quantity: rng.random_range(1..=2),
                        unit_price: ((price(c, s) as f64) * factor) as i64,
                    }
                })
                .collect();
            placed.push((at, items));
            at -= Duration::minutes((-(1.0 - rng.random::<f64>()).ln() * rhythm_days * 1440.0) as i64 + 60);
        }
        let orders: Vec<Order> = placed
            .into_iter()
            .rev()
            .enumerate()
            .map(|(o, (paid_at, items))| Order { id: format!("B{index:07}-{o:03}"), paid_at, items })
            .collect();
        let behaviours_n = (-(1.0 - rng.random::<f64>()).ln() * 30.0) as usize;
        let behaviours = (0..behaviours_n)
            .map(|_| {
                let (c, s) = pick_sku(&mut rng);
                let kind = match rng.random_range(0..100) {
                    0..85 => "view",
                    85..91 => "favorite",
                    91..97 => "cart",
                    _ => "purchase",
                };
                Behaviour {
                    kind,
                    sku: sku(c, s),
                    category: CATEGORIES[c],
                    at: self.now - Duration::minutes(rng.random_range(1..90 * 1440)),
                }
            })
            .collect();
        let name = format!("{}{}", ["王", "李", "张", "刘", "陈"][index % 5], ["伟", "芳", "娜", "敏", "静", "丽"][index % 6]);
        Customer { index, phone, email, nick_first, name, city, birthday, orders, behaviours }
    }

    /// All customers, one after another.
    pub fn all(&self) -> impl Iterator<Item = Customer> + '_ {
        (0..self.customers).map(|i| self.customer(i))
    }
}

impl Customer {
    /// The customer's events as the HTTP API takes them, in order.
    /// How many events [`Customer::events`] gives, without building them.
    pub fn event_count(&self) -> usize {
        1 + usize::from(self.nick_first.is_some()) + self.behaviours.len() + self.orders.len()
    }

    pub fn events(&self) -> Vec<Value> {
        let i = self.index;
        let phone = json!({"kind": "phone", "value": self.phone});
        let mut out = Vec::with_capacity(2 + self.orders.len() + self.behaviours.len());
        let mut identities = vec![phone.clone()];
        if let Some(email) = &self.email {
            identities.push(json!({"kind": "email", "value": email}));
        }
        if let Some(nick) = &self.nick_first {
            out.push(json!({"id": format!("n{i}"), "type": "customer.upsert", "identities": [{"kind": "nick", "value": nick}]}));
            identities.push(json!({"kind": "nick", "value": nick}));
        }
        out.push(json!({"id": format!("c{i}"), "type": "customer.upsert", "identities": identities,
            "profile": {"name": self.name, "city": self.city, "birthday": self.birthday.map(|d| d.to_string())}}));
        for (k, b) in self.behaviours.iter().enumerate() {
            out.push(json!({"id": format!("b{i}-{k}"), "type": "behaviour", "identities": [phone], "occurred_at": b.at,
                "behaviour": {"kind": b.kind, "sku": b.sku, "category": b.category}}));
        }
        for o in &self.orders {
            let items: Vec<Value> = o
                .items
                .iter()
                .map(|it| json!({"sku": it.sku, "category": it.category, "quantity": it.quantity, "unit_price": it.unit_price}))
                .collect();
            out.push(json!({"id": format!("o{}", o.id), "type": "order.paid", "identities": [phone],
                "order": {"id": o.id, "amount": o.amount(), "paid_at": o.paid_at, "items": items}}));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_shop_and_the_shape_is_realistic() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let shop = Shop { customers: 2_000, seed: 7, now };
        let a: Vec<_> = shop.all().map(|c| c.events()).collect();
        let b: Vec<_> = shop.all().map(|c| c.events()).collect();
        assert_eq!(a, b);
        let customers: Vec<Customer> = shop.all().collect();
        assert!(customers.iter().zip(&a).all(|(c, events)| c.event_count() == events.len()));
        let buyers = customers.iter().filter(|c| !c.orders.is_empty()).count();
        assert!((1_300..1_500).contains(&buyers), "about 70 % buy: {buyers}");
        let orders: usize = customers.iter().map(|c| c.orders.len()).sum();
        let behaviours: Vec<&Behaviour> = customers.iter().flat_map(|c| &c.behaviours).collect();
        let views = behaviours.iter().filter(|b| b.kind == "view").count();
        let carts = behaviours.iter().filter(|b| b.kind == "cart").count();
        assert!(views > 10 * carts && carts > 0, "views ≫ carts: {views} / {carts}");
        assert!(behaviours.len() > 2 * orders, "{} behaviours, {orders} orders", behaviours.len());
        // Pareto: the top 10 % of buyers place a large share of the orders.
        let mut counts: Vec<usize> = customers.iter().map(|c| c.orders.len()).filter(|n| *n > 0).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = counts[..counts.len() / 10].iter().sum();
        assert!(top * 4 > orders, "top decile: {top} of {orders}");
        assert!(customers.iter().all(|c| c.orders.iter().all(|o| o.paid_at < now && o.amount() > 0)));
        let phones: std::collections::HashSet<&str> = customers.iter().map(|c| c.phone.as_str()).collect();
        assert_eq!(phones.len(), customers.len(), "phones are unique");
    }
}
