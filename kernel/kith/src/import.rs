//! `kith import customers|orders FILE.csv`: shop exports through the same
//! ingest path as the API, so identity resolution and idempotency are the same.
//!
//! Event ids are derived from the file's content (a customer row's values, an
//! order's number), so importing the same file again applies nothing twice.
//! Rows of one order (one row per line item) must be consecutive.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use kith_domain::identity::IdentityKind;
use kith_domain::model::OutcomeStatus;
use kith_domain::money::parse_major_units;
use kith_store::{Actor, Store};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    Customers,
    Orders,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    kind: ImportKind,
    /// The CSV file, with a header row.
    file: PathBuf,
    /// The shop to import into.
    #[arg(long)]
    shop: i64,
    /// Map a column to a field, e.g. `--map 手机号=phone` or `--map 会员等级=attr:level` (repeatable).
    /// Fields: phone, email, unionid, nick, external:<source>, name, gender, birthday, province, city,
    /// attr:<name>, order_id, paid_at, amount, sku, product_name, category, quantity, unit_price,
    /// discount, coupon_code, ignore.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    maps: Vec<String>,
    /// Where rejected rows are written; defaults to FILE.errors.csv.
    #[arg(long)]
    errors: Option<PathBuf>,
    /// Events per transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Identity(IdentityKind),
    Name,
    Gender,
    Birthday,
    Province,
    City,
    Attr(String),
    OrderId,
    PaidAt,
    Amount,
    Sku,
    ProductName,
    Category,
    Quantity,
    UnitPrice,
    Discount,
    CouponCode,
    Ignore,
}

fn parse_field(s: &str) -> Result<Field, String> {
    Ok(match s {
        "name" => Field::Name,
        "gender" => Field::Gender,
        "birthday" => Field::Birthday,
        "province" => Field::Province,
        "city" => Field::City,
        "order_id" => Field::OrderId,
        "paid_at" => Field::PaidAt,
        "amount" => Field::Amount,
        "sku" => Field::Sku,
        "product_name" => Field::ProductName,
        "category" => Field::Category,
        "quantity" => Field::Quantity,
        "unit_price" => Field::UnitPrice,
        "discount" => Field::Discount,
        "coupon_code" => Field::CouponCode,
        "ignore" => Field::Ignore,
        other => match other.strip_prefix("attr:") {
            Some(name) if !name.is_empty() => Field::Attr(name.to_owned()),
            _ => Field::Identity(other.parse().map_err(|_| format!("unknown field `{other}`"))?),
        },
    })
}

/// Header names of common shop exports, in English and Chinese.
fn default_field(header: &str) -> Option<Field> {
    let h = header.trim().to_lowercase();
    let name = match h.as_str() {
        "phone" | "mobile" | "手机" | "手机号" | "手机号码" | "联系电话" => "phone",
        "email" | "e-mail" | "邮箱" | "电子邮箱" => "email",
        "unionid" | "union_id" => "unionid",
        "nick" | "nickname" | "昵称" | "买家昵称" | "会员名" => "nick",
        "name" | "姓名" | "收货人" => "name",
        "gender" | "sex" | "性别" => "gender",
        "birthday" | "生日" | "出生日期" => "birthday",
        "province" | "省" | "省份" => "province",
        "city" | "市" | "城市" => "city",
        "order_id" | "order" | "订单号" | "订单编号" => "order_id",
        "paid_at" | "付款时间" | "支付时间" => "paid_at",
        "amount" | "实付金额" | "支付金额" | "买家实付" => "amount",
        "sku" | "商品编码" | "sku编码" => "sku",
        "product_name" | "product" | "商品名称" | "宝贝标题" => "product_name",
        "category" | "类目" | "商品类目" => "category",
        "quantity" | "qty" | "数量" | "购买数量" => "quantity",
        "unit_price" | "price" | "单价" | "商品单价" => "unit_price",
        "discount" | "优惠" | "优惠金额" => "discount",
        "coupon_code" | "coupon" | "优惠券" => "coupon_code",
        other => other,
    };
    parse_field(name).ok()
}

/// One rejected row, for the errors file.
struct Rejected {
    line: u64,
    field: String,
    reason: String,
}

struct Import<'a> {
    store: &'a Store,
    shop: i64,
    actor: Actor,
    batch: usize,
    pending: Vec<(u64, Value)>,
    rejected: Vec<Rejected>,
    accepted: usize,
    duplicates: usize,
}

impl Import<'_> {
    fn push(&mut self, line: u64, event: Value) -> Result<()> {
        self.pending.push((line, event));
        if self.pending.len() >= self.batch { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (lines, events): (Vec<u64>, Vec<Value>) = std::mem::take(&mut self.pending).into_iter().unzip();
        let report = self.store.ingest(self.shop, events, &self.actor)?;
        self.accepted += report.accepted;
        self.duplicates += report.duplicates;
        for o in report.outcomes.into_iter().filter(|o| o.status == OutcomeStatus::Rejected) {
            self.rejected.push(Rejected { line: lines[o.index], field: o.field.unwrap_or_default(), reason: o.reason.unwrap_or_default() });
        }
        Ok(())
    }
}

fn parse_time(raw: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%Y/%m/%d"].iter().find_map(|f| NaiveDate::parse_from_str(raw, f).ok()).and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| format!("`{raw}` is not a time such as 2026-01-31 20:15:00"))?;
    tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc)).ok_or_else(|| format!("`{raw}` does not exist in {tz}"))
}

fn parse_date(raw: &str) -> Result<String, String> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(raw.trim(), f).ok())
        .map(|d| d.to_string())
        .ok_or_else(|| format!("`{raw}` is not a date such as 1990-05-20"))
}

fn parse_gender(raw: &str) -> Result<Option<&'static str>, String> {
    Ok(match raw.trim().to_lowercase().as_str() {
        "" | "未知" | "unknown" | "u" => None,
        "男" | "male" | "m" => Some("male"),
        "女" | "female" | "f" => Some("female"),
        _ => return Err(format!("`{raw}` is not a gender (male/female, 男/女)")),
    })
}

/// An order being assembled from consecutive rows.
struct OrderRows {
    line: u64,
    order_id: String,
    identities: Vec<Value>,
    paid_at: Option<String>,
    amount: Option<i64>,
    coupon_code: Option<String>,
    items: Vec<Value>,
}

impl OrderRows {
    fn into_event(self) -> Value {
        let mut order = json!({"id": self.order_id, "items": self.items});
        if let Some(paid_at) = self.paid_at {
            order["paid_at"] = json!(paid_at);
        }
        if let Some(amount) = self.amount {
            order["amount"] = json!(amount);
        }
        if let Some(code) = self.coupon_code {
            order["coupon_code"] = json!(code);
        }
        json!({"id": format!("import:order:{}", self.order_id), "type": "order.paid", "identities": self.identities, "order": order})
    }
}

pub fn run(config: &Config, args: ImportArgs) -> Result<()> {
    let store = config.open_store()?;
    let shop = store.get_shop(args.shop).with_context(|| format!("shop {}", args.shop))?;
    let tz: Tz = shop.time_zone.parse().map_err(|e| anyhow::anyhow!("shop time zone: {e}"))?;
    let file = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let total = file.metadata()?.len();
    let mut reader = csv::ReaderBuilder::new().from_reader(BufReader::new(file));

    let mut overrides = Vec::new();
    for m in &args.maps {
        let (col, field) = m.split_once('=').with_context(|| format!("--map {m}: write COLUMN=FIELD"))?;
        overrides.push((col.to_owned(), parse_field(field).map_err(|e| anyhow::anyhow!("--map {m}: {e}"))?));
    }
    let headers: Vec<String> = reader.headers()?.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_owned()).collect();
    let mut ignored = Vec::new();
    let columns: Vec<Field> = headers
        .iter()
        .map(|h| {
            overrides.iter().find(|(c, _)| c == h).map(|(_, f)| f.clone()).or_else(|| default_field(h)).unwrap_or_else(|| {
                ignored.push(h.clone());
                Field::Ignore
            })
        })
        .collect();
    if !ignored.is_empty() {
        eprintln!("ignoring columns {}; map them with --map COLUMN=FIELD", ignored.join(", "));
    }
    let has = |pred: fn(&Field) -> bool| columns.iter().any(pred);
    if !has(|f| matches!(f, Field::Identity(_))) {
        bail!("no identifier column (phone, email, unionid, nick or external:<source>); map one with --map");
    }
    if args.kind == ImportKind::Orders && !has(|f| *f == Field::OrderId) {
        bail!("no order_id column; map one with --map COLUMN=order_id");
    }

    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut import = Import {
        store: &store,
        shop: shop.id,
        actor: Actor::cli(&format!("import:{file_name}")),
        batch: args.batch.clamp(1, kith_domain::ingest::MAX_BATCH),
        pending: Vec::new(),
        rejected: Vec::new(),
        accepted: 0,
        duplicates: 0,
    };
    let mut rows = 0u64;
    let mut order: Option<OrderRows> = None;
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        rows += 1;
        let row: Vec<(&Field, &str, &str)> = columns
            .iter()
            .zip(record.iter())
            .zip(headers.iter())
            .map(|((f, v), h)| (f, v.trim(), h.as_str()))
            .filter(|(_, v, _)| !v.is_empty())
            .collect();
        let built = match args.kind {
            ImportKind::Customers => customer_event(&row).map(|e| Some((line, e))),
            ImportKind::Orders => order_row(&row, line, tz, &mut order),
        };
        match built {
            Ok(Some((line, event))) => import.push(line, event)?,
            Ok(None) => {}
            Err((field, reason)) => import.rejected.push(Rejected { line, field, reason }),
        }
        if rows.is_multiple_of(1000) {
            progress.set_position(record.position().map_or(0, |p| p.byte()));
            progress.set_message(format!("{rows} rows"));
        }
    }
    if let Some(last) = order.take() {
        import.push(last.line, last.into_event())?;
    }
    import.flush()?;
    progress.finish_and_clear();

    let errors_path = args.errors.unwrap_or_else(|| errors_path_for(&args.file));
    if !import.rejected.is_empty() {
        let mut w = csv::Writer::from_path(&errors_path).with_context(|| format!("writing {}", errors_path.display()))?;
        w.write_record(["line", "field", "reason"])?;
        import.rejected.sort_by_key(|r| r.line);
        for r in &import.rejected {
            w.write_record([r.line.to_string(), r.field.clone(), r.reason.clone()])?;
        }
        w.flush()?;
    }
    println!(
        "{rows} rows: {} events accepted, {} duplicates, {} rows rejected{}",
        import.accepted,
        import.duplicates,
        import.rejected.len(),
        if import.rejected.is_empty() { String::new() } else { format!(" (see {})", errors_path.display()) }
    );
    Ok(())
}

fn errors_path_for(file: &Path) -> PathBuf {
    let mut name = file.file_stem().map(|s| s.to_os_string()).unwrap_or_default();
    name.push(".errors.csv");
    file.with_file_name(name)
}

type RowError = (String, String);

fn identity(kind: &IdentityKind, value: &str) -> Value {
    json!({"kind": kind.to_string(), "value": value})
}

fn customer_event(row: &[(&Field, &str, &str)]) -> Result<Value, RowError> {
    let mut identities = Vec::new();
    let mut profile = Map::new();
    let mut attributes = Map::new();
    for (field, value, header) in row {
        let err = |reason: String| ((*header).to_owned(), reason);
        match field {
            Field::Identity(kind) => identities.push(identity(kind, value)),
            Field::Name => {
                profile.insert("name".into(), json!(value));
            }
            Field::Gender => {
                if let Some(g) = parse_gender(value).map_err(err)? {
                    profile.insert("gender".into(), json!(g));
                }
            }
            Field::Birthday => {
                profile.insert("birthday".into(), json!(parse_date(value).map_err(err)?));
            }
            Field::Province => {
                profile.insert("province".into(), json!(value));
            }
            Field::City => {
                profile.insert("city".into(), json!(value));
            }
            Field::Attr(name) => {
                attributes.insert(name.clone(), json!(value));
            }
            Field::Ignore => {}
            _ => return Err(err("is an order field; import it with `kith import orders`".into())),
        }
    }
    if !attributes.is_empty() {
        profile.insert("attributes".into(), Value::Object(attributes));
    }
    // The id is the row's content: the same row imported again is a duplicate.
    let content: Vec<String> = row.iter().map(|(_, v, h)| format!("{h}\u{1f}{v}")).collect();
    let digest = Sha256::digest(content.join("\u{1e}").as_bytes());
    let digest = hex::encode(&digest[..16]);
    Ok(json!({"id": format!("import:customer:{digest}"), "type": "customer.upsert", "identities": identities, "profile": profile}))
}

/// Add one row to the order being assembled; returns the previous order's event when this row starts a new one.
fn order_row(row: &[(&Field, &str, &str)], line: u64, tz: Tz, current: &mut Option<OrderRows>) -> Result<Option<(u64, Value)>, RowError> {
    let mut order_id = None;
    let mut identities = Vec::new();
    let (mut paid_at, mut amount, mut coupon_code) = (None, None, None);
    let mut item = Map::new();
    for (field, value, header) in row {
        let err = |reason: String| ((*header).to_owned(), reason);
        let money = |v: &str| parse_major_units(v).map_err(|e| err(e.clone()));
        match field {
            Field::OrderId => order_id = Some((*value).to_owned()),
            Field::Identity(kind) => identities.push(identity(kind, value)),
            Field::PaidAt => paid_at = Some(parse_time(value, tz).map_err(err)?.to_rfc3339()),
            Field::Amount => amount = Some(money(value)?),
            Field::CouponCode => coupon_code = Some((*value).to_owned()),
            Field::Sku => {
                item.insert("sku".into(), json!(value));
            }
            Field::ProductName => {
                item.insert("product_name".into(), json!(value));
            }
            Field::Category => {
                item.insert("category".into(), json!(value));
            }
            Field::Quantity => {
                let q: i64 = value.parse().map_err(|_| err(format!("`{value}` is not a whole number")))?;
                item.insert("quantity".into(), json!(q));
            }
            Field::UnitPrice => {
                item.insert("unit_price".into(), json!(money(value)?));
            }
            Field::Discount => {
                item.insert("discount".into(), json!(money(value)?));
            }
            Field::Ignore | Field::Attr(_) => {}
            _ => return Err(err("is a customer field; import it with `kith import customers`".into())),
        }
    }
    let order_id = order_id.ok_or_else(|| ("order_id".to_owned(), "is empty".to_owned()))?;
    if !item.is_empty() {
        item.entry("quantity").or_insert(json!(1));
    }
    let same = current.as_ref().is_some_and(|o| o.order_id == order_id);
    let finished = if same { None } else { current.take().map(|o| (o.line, o.into_event())) };
    let order = current.get_or_insert_with(|| OrderRows {
        line,
        order_id,
        identities: Vec::new(),
        paid_at: None,
        amount: None,
        coupon_code: None,
        items: Vec::new(),
    });
    for id in identities {
        if !order.identities.contains(&id) {
            order.identities.push(id);
        }
    }
    order.paid_at = order.paid_at.take().or(paid_at);
    // Exports repeat the order's total on each of its item rows; the first row's value is the order's.
    order.amount = order.amount.or(amount);
    order.coupon_code = order.coupon_code.take().or(coupon_code);
    if !item.is_empty() {
        order.items.push(Value::Object(item));
    }
    Ok(finished)
}
