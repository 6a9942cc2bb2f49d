//! `kith import customers|orders FILE.csv`: shop exports through the same
//! ingest path as the API, so identity resolution and idempotency are the same.
//!
//! Event ids are derived from the file's content (a customer row's values, an
//! order's number), so importing the same file again applies nothing twice.
//! Rows of one order (one row per line item) must be consecutive.
//!
//! A row that cannot be taken (bytes not in the file's encoding, more or fewer
//! fields than the header, a value refused) is a rejected row in the errors file,
//! and the rest of the file goes on; an order with a rejected row is not imported
//! at all, so that no order is imported without some of its items. Only a file
//! that cannot be read stops the import.

use kith_core::prelude::*;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use kith_core::Actor;
use kith_core::Backend;
use kith_domain::identity::IdentityKind;
use kith_domain::model::OutcomeStatus;
use kith_domain::money::parse_major_units;
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
    /// The file's text encoding; by default told from its first megabyte (exports of
    /// Chinese platforms are often GBK).
    #[arg(long, value_enum, default_value_t = EncodingArg::Auto)]
    encoding: EncodingArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    Auto,
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    /// GBK, read as GB18030, which contains it (GB2312 too).
    #[value(name = "gbk", alias = "gb18030", alias = "gb2312")]
    Gbk,
}

/// The encoding a file is read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Gbk,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Gbk => "GBK",
        }
    }

    fn decode(self, bytes: &[u8]) -> Option<Cow<'_, str>> {
        match self {
            Encoding::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
            Encoding::Gbk => encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes),
        }
    }

    fn other(self) -> Encoding {
        match self {
            Encoding::Utf8 => Encoding::Gbk,
            Encoding::Gbk => Encoding::Utf8,
        }
    }
}

/// How much of a file tells its encoding.
const SAMPLE_BYTES: u64 = 1 << 20;

/// The encoding of a file that starts with `sample` (the whole file when `whole`): UTF-8
/// unless more of its lines with non-ASCII text read as GBK than as UTF-8. Text in one
/// is seldom valid in the other, and a comma, a quote or a line break never occurs
/// inside a GBK character, so a CSV file in either can be split into fields as bytes.
fn detect(sample: &[u8], whole: bool) -> Encoding {
    if sample.starts_with(b"\xef\xbb\xbf") {
        return Encoding::Utf8;
    }
    let mut lines: Vec<&[u8]> = sample.split(|b| *b == b'\n').collect();
    if !whole {
        // The last line may be cut in the middle of a character.
        lines.pop();
    }
    let (mut utf8, mut gbk) = (0, 0);
    for line in lines.into_iter().filter(|l| !l.is_ascii()) {
        if Encoding::Utf8.decode(line).is_some() {
            utf8 += 1;
        } else if Encoding::Gbk.decode(line).is_some() {
            gbk += 1;
        }
    }
    if gbk > utf8 { Encoding::Gbk } else { Encoding::Utf8 }
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
    store: &'a dyn Backend,
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

/// A time as shop exports write it.
#[derive(Debug, PartialEq)]
enum Moment {
    /// With no zone: in the shop's.
    Local(NaiveDateTime),
    /// With an offset from UTC.
    Zoned(DateTime<FixedOffset>),
}

/// Layouts of a date and time without a zone, as exports write them: ISO 8601 with a space
/// or a `T`, slashes, dots, compact digits and Chinese (`2026年1月15日 13:45`); seconds and
/// their fraction optional.
const LOCAL_TIMES: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y.%m.%d %H:%M:%S%.f",
    "%Y%m%d %H:%M:%S%.f",
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日%H:%M:%S",
    "%Y年%m月%d日 %H时%M分%S秒",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M",
    "%Y.%m.%d %H:%M",
    "%Y%m%d %H:%M",
    "%Y年%m月%d日 %H:%M",
];

/// Layouts of a date alone.
const DATES: &[&str] = &["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"];

/// Layouts with an offset after the time (`+0800`, `+08:00`); RFC 3339 is tried first.
const ZONED_TIMES: &[&str] = &["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y/%m/%d %H:%M:%S%.f %z", "%Y-%m-%dT%H:%M:%S%.f%z"];

fn parse_moment(raw: &str) -> Option<Moment> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(Moment::Zoned(t));
    }
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        // Digits alone: compact dates and times, and Unix time in seconds or milliseconds.
        let compact = |layout| NaiveDateTime::parse_from_str(raw, layout).ok().map(Moment::Local);
        return match raw.len() {
            8 => NaiveDate::parse_from_str(raw, "%Y%m%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(Moment::Local),
            12 => compact("%Y%m%d%H%M"),
            14 => compact("%Y%m%d%H%M%S"),
            10 => DateTime::from_timestamp(raw.parse().ok()?, 0).map(|t| Moment::Zoned(t.fixed_offset())),
            13 => DateTime::from_timestamp_millis(raw.parse().ok()?).map(|t| Moment::Zoned(t.fixed_offset())),
            _ => None,
        };
    }
    ZONED_TIMES
        .iter()
        .find_map(|f| DateTime::parse_from_str(raw, f).ok().map(Moment::Zoned))
        .or_else(|| LOCAL_TIMES.iter().find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok().map(Moment::Local)))
        .or_else(|| {
            DATES.iter().find_map(|f| NaiveDate::parse_from_str(raw, f).ok()).and_then(|d| d.and_hms_opt(0, 0, 0)).map(Moment::Local)
        })
}

/// A time column (`paid_at`): a time without a zone is in the shop's.
fn parse_time(raw: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    match parse_moment(raw) {
        Some(Moment::Zoned(t)) => Ok(t.with_timezone(&Utc)),
        Some(Moment::Local(local)) => tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("`{raw}` does not exist in {tz}")),
        None => Err(format!("`{raw}` is not a time such as 2026-01-31 20:15:00")),
    }
}

/// A date column (`birthday`): the date of any time layout, as written (a time with an
/// offset in that offset).
fn parse_date(raw: &str) -> Result<String, String> {
    match parse_moment(raw) {
        Some(Moment::Zoned(t)) => Ok(t.date_naive().to_string()),
        Some(Moment::Local(t)) => Ok(t.date().to_string()),
        None => Err(format!("`{raw}` is not a date such as 1990-05-20")),
    }
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
    /// The lines of the rows taken into it.
    lines: Vec<u64>,
    /// The line of a row of this order that was rejected: the order is not imported.
    refused: Option<u64>,
}

impl OrderRows {
    fn new(line: u64, order_id: String) -> Self {
        OrderRows {
            line,
            order_id,
            identities: Vec::new(),
            paid_at: None,
            amount: None,
            coupon_code: None,
            items: Vec::new(),
            lines: Vec::new(),
            refused: None,
        }
    }

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

impl Import<'_> {
    /// Import a whole order, or, when one of its rows was rejected, reject the others too:
    /// an order without some of its items would count the wrong amount for ever (a later
    /// import of the fixed file is a duplicate of it).
    fn finish_order(&mut self, order: OrderRows) -> Result<()> {
        match order.refused {
            None => self.push(order.line, order.into_event()),
            Some(bad) => {
                for line in order.lines {
                    let reason = format!("order `{}` is not imported: its row at line {bad} was rejected", order.order_id);
                    self.rejected.push(Rejected { line, field: "order_id".into(), reason });
                }
                Ok(())
            }
        }
    }
}

pub fn run(config: &Config, args: ImportArgs) -> Result<()> {
    let store = config.open_store()?;
    let shop = store.get_shop(args.shop).with_context(|| format!("shop {}", args.shop))?;
    let tz: Tz = shop.time_zone.parse().map_err(|e| anyhow::anyhow!("shop time zone: {e}"))?;
    let file = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let total = file.metadata()?.len();
    let mut file = BufReader::new(file);
    let mut sample = Vec::new();
    (&mut file).take(SAMPLE_BYTES).read_to_end(&mut sample).with_context(|| format!("reading {}", args.file.display()))?;
    if sample.starts_with(b"\xff\xfe") || sample.starts_with(b"\xfe\xff") {
        bail!("{} is UTF-16 text (Excel's \"Unicode text\"); save it as CSV in UTF-8 or GBK", args.file.display());
    }
    let (encoding, detected) = match args.encoding {
        EncodingArg::Auto => (detect(&sample, sample.len() as u64 == total), true),
        EncodingArg::Utf8 => (Encoding::Utf8, false),
        EncodingArg::Gbk => (Encoding::Gbk, false),
    };
    if detected && encoding == Encoding::Gbk {
        eprintln!("reading {} as GBK (pass --encoding utf-8 if it is not)", args.file.display());
    }
    // Flexible: a row with more or fewer fields than the header is rejected below, not fatal.
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(std::io::Cursor::new(sample).chain(file));

    let mut overrides = Vec::new();
    for m in &args.maps {
        let (col, field) = m.split_once('=').with_context(|| format!("--map {m}: write COLUMN=FIELD"))?;
        overrides.push((col.to_owned(), parse_field(field).map_err(|e| anyhow::anyhow!("--map {m}: {e}"))?));
    }
    let mut headers = Vec::new();
    for header in reader.byte_headers().with_context(|| format!("reading {}", args.file.display()))? {
        let Some(header) = encoding.decode(header) else {
            bail!("the header row of {} is not {}; pass --encoding {}", args.file.display(), encoding.name(), encoding.other().name());
        };
        headers.push(header.trim_start_matches('\u{feff}').trim().to_owned());
    }
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
    let order_column = columns.iter().position(|f| *f == Field::OrderId);

    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut import = Import {
        store: &*store,
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
    // The line of a row of the wrong width, until the next row tells which order follows it.
    let mut unplaced: Option<u64> = None;
    let mut record = csv::ByteRecord::new();
    // A failure of the store (a full disk, say) stops the import; the rows rejected so far
    // are still written out, and what was applied is applied once only when run again.
    let applied: Result<()> = (|| {
        while reader.read_byte_record(&mut record).with_context(|| format!("reading {} after {rows} rows", args.file.display()))? {
            let line = record.position().map_or(0, |p| p.line());
            rows += 1;
            let values = decode_row(&record, &headers, encoding, detected);
            let row: Result<Vec<(&Field, &str, &str)>, RowError> = values.as_ref().map_err(Clone::clone).map(|values| {
                columns
                    .iter()
                    .zip(values)
                    .zip(headers.iter())
                    .map(|((f, v), h)| (f, v.trim(), h.as_str()))
                    .filter(|(_, v, _)| !v.is_empty())
                    .collect()
            });
            match args.kind {
                ImportKind::Customers => match row.and_then(|row| customer_event(&row)) {
                    Ok(event) => import.push(line, event)?,
                    Err((field, reason)) => import.rejected.push(Rejected { line, field, reason }),
                },
                ImportKind::Orders => match row.and_then(|row| order_row(&row, line, tz, &mut order)) {
                    Ok(finished) => {
                        if let Some(finished) = finished {
                            import.finish_order(finished)?;
                        }
                        // An order that starts right after a row whose order could not be told
                        // may be that row's: it is not imported either.
                        if let Some(bad) = unplaced.take()
                            && let Some(o) = order.as_mut().filter(|o| o.line > bad)
                        {
                            o.refused.get_or_insert(bad);
                        }
                    }
                    Err((field, reason)) if !fits(&record, headers.len()) => {
                        // A row of the wrong width has its columns shifted: its order id cannot be
                        // read from it. The order being read is not imported, nor one starting next.
                        import.rejected.push(Rejected { line, field, reason });
                        if let Some(o) = order.as_mut() {
                            o.refused.get_or_insert(line);
                        }
                        unplaced = Some(line);
                    }
                    Err((field, reason)) => {
                        import.rejected.push(Rejected { line, field, reason });
                        // The rest of this row's order is not imported either.
                        let id = order_column.and_then(|i| record.get(i)).map(|raw| lossy(raw, encoding).trim().to_owned());
                        if let Some(id) = id.filter(|id| !id.is_empty()) {
                            if order.as_ref().is_none_or(|o| o.order_id != id) {
                                if let Some(previous) = order.take() {
                                    import.finish_order(previous)?;
                                }
                                order = Some(OrderRows::new(line, id));
                            }
                            if let Some(o) = order.as_mut() {
                                o.refused.get_or_insert(line);
                            }
                        }
                    }
                },
            }
            if rows.is_multiple_of(1000) {
                progress.set_position(record.position().map_or(0, |p| p.byte()));
                progress.set_message(format!("{rows} rows"));
            }
        }
        if let Some(last) = order.take() {
            import.finish_order(last)?;
        }
        import.flush()
    })();
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
    if !import.rejected.is_empty() {
        eprintln!("{} rows rejected, each with its line and reason in {}", import.rejected.len(), errors_path.display());
    }
    applied
}

/// A row's values in the header's order, or why the row cannot be read: a field not in the
/// file's encoding, or more or fewer fields than the header (a missing separator, an
/// unquoted comma or line break). Fields beyond the header are taken when they are empty:
/// some exports end every line with a separator.
/// Whether a row has the header's fields (empty ones past them are taken: some exports end every
/// line with a comma).
fn fits(record: &csv::ByteRecord, fields: usize) -> bool {
    record.len() >= fields && record.iter().skip(fields).all(|f| f.trim_ascii().is_empty())
}

fn decode_row<'r>(
    record: &'r csv::ByteRecord,
    headers: &[String],
    encoding: Encoding,
    detected: bool,
) -> Result<Vec<Cow<'r, str>>, RowError> {
    if !fits(record, headers.len()) {
        let reason = format!("has {} fields where the header has {}", record.len(), headers.len());
        return Err((String::new(), reason));
    }
    record
        .iter()
        .zip(headers)
        .map(|(bytes, header)| {
            let refused = |reason: String| (header.clone(), reason);
            let text = encoding.decode(bytes).ok_or_else(|| {
                let other = encoding.other();
                refused(match other.decode(bytes) {
                    Some(text) => format!(
                        "is not {} like the rest of the file: it reads as {} (`{text}`); save the file in one encoding, or pass --encoding",
                        encoding.name(),
                        other.name()
                    ),
                    None => format!("is neither {} like the rest of the file nor {}", encoding.name(), other.name()),
                })
            })?;
            // In a file told to be GBK, a field that reads as Chinese in UTF-8 is UTF-8: read as
            // GBK it would be imported as gibberish. Chinese in UTF-8 takes three bytes a
            // character; GBK text that happens to be valid UTF-8 (`太原` is) reads as two-byte
            // characters below U+0800, so such a field stays GBK.
            if detected
                && encoding == Encoding::Gbk
                && !bytes.is_ascii()
                && let Ok(utf8) = std::str::from_utf8(bytes)
                && !utf8.chars().any(|c| ('\u{80}'..'\u{800}').contains(&c))
            {
                return Err(refused(format!(
                    "is not GBK like the rest of the file: it reads as UTF-8 (`{utf8}`); save the file in one encoding, or pass --encoding gbk"
                )));
            }
            Ok(text)
        })
        .collect()
}

/// A field's text with what does not decode replaced, to tell which order a refused row belongs to.
fn lossy(bytes: &[u8], encoding: Encoding) -> Cow<'_, str> {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes),
        Encoding::Gbk => encoding_rs::GB18030.decode_without_bom_handling(bytes).0,
    }
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

/// Add one row to the order being assembled; returns the previous order when this row starts a new one.
fn order_row(row: &[(&Field, &str, &str)], line: u64, tz: Tz, current: &mut Option<OrderRows>) -> Result<Option<OrderRows>, RowError> {
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
    let finished = if same { None } else { current.take() };
    let order = current.get_or_insert_with(|| OrderRows::new(line, order_id));
    order.lines.push(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_time_column_takes_the_common_export_layouts() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let utc = |raw: &str| parse_time(raw, tz).map(|t| t.to_rfc3339());
        let quarter_to_two = "2026-01-15T05:45:00+00:00";
        for raw in [
            "2026-01-15 13:45:00",
            "2026-01-15 13:45",
            "2026-01-15T13:45:00",
            "2026/01/15 13:45",
            "2026/1/15 13:45:00",
            "2026.01.15 13:45",
            "20260115 13:45:00",
            "20260115134500",
            "202601151345",
            "2026年01月15日 13:45:00",
            "2026年1月15日 13:45",
            "2026-01-15T13:45:00+08:00",
            "2026-01-15 05:45:00Z",
            "2026-01-15 13:45:00 +0800",
            "2026-01-15 13:45:00+08:00",
            "1768455900",
            "1768455900000",
        ] {
            assert_eq!(utc(raw).as_deref(), Ok(quarter_to_two), "{raw}");
        }
        assert_eq!(utc("2026-01-15 13:45:00.250").unwrap(), "2026-01-15T05:45:00.250+00:00");
        for raw in ["20260115", "2026-01-15", "2026/1/15", "2026年1月15日"] {
            assert_eq!(utc(raw).as_deref(), Ok("2026-01-14T16:00:00+00:00"), "{raw}");
        }
        for raw in ["someday", "2026-13-01", "15/01/2026", "123456789", ""] {
            assert!(utc(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn a_date_column_takes_the_same_layouts_as_a_time_column() {
        for raw in ["19970101", "1997-01-01", "1997/1/1", "1997.01.01", "1997年1月1日", "1997-01-01 00:00:00", "1997-01-01T08:00:00+08:00"]
        {
            assert_eq!(parse_date(raw).as_deref(), Ok("1997-01-01"), "{raw}");
        }
        assert!(parse_date("spring").is_err());
    }

    fn gbk(text: &str) -> Vec<u8> {
        encoding_rs::GBK.encode(text).0.into_owned()
    }

    #[test]
    fn the_encoding_is_told_by_the_lines_with_non_ascii_text() {
        let utf8 = "手机号,姓名\n13812345678,张伟\n".repeat(100);
        assert_eq!(detect(utf8.as_bytes(), true), Encoding::Utf8);
        // One GBK line among UTF-8 ones leaves the file UTF-8 (that line is rejected alone).
        let mut mixed = utf8.clone().into_bytes();
        mixed.extend(gbk("13912345678,李娜\n"));
        assert_eq!(detect(&mixed, true), Encoding::Utf8);
        let whole = gbk(&utf8);
        assert_eq!(detect(&whole, true), Encoding::Gbk);
        // A sample cut in the middle of a character is still told right.
        assert_eq!(detect(&whole[..whole.len() - 3], false), Encoding::Gbk);
        assert_eq!(detect(b"phone,name\n13812345678,Wei\n", true), Encoding::Utf8);
    }

    fn record(fields: &[&[u8]]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn a_row_not_in_the_files_encoding_or_of_another_width_is_refused_with_the_reason() {
        let headers = vec!["手机号".to_owned(), "姓名".to_owned()];
        let fine = record(&[b"13812345678", "张伟".as_bytes()]);
        assert_eq!(decode_row(&fine, &headers, Encoding::Utf8, true).unwrap(), ["13812345678", "张伟"]);
        let name = gbk("李娜");
        let (field, reason) = decode_row(&record(&[b"13912345678", &name]), &headers, Encoding::Utf8, true).unwrap_err();
        assert_eq!(field, "姓名");
        assert!(reason.contains("is not UTF-8 like the rest of the file: it reads as GBK (`李娜`)"), "{reason}");
        assert_eq!(decode_row(&record(&[b"13912345678", &name]), &headers, Encoding::Gbk, true).unwrap(), ["13912345678", "李娜"]);
        let (_, reason) = decode_row(&record(&[b"13912345678", "李娜".as_bytes()]), &headers, Encoding::Gbk, true).unwrap_err();
        assert!(reason.contains("reads as UTF-8 (`李娜`)"), "{reason}");

        let (_, reason) = decode_row(&record(&[b"13812345678"]), &headers, Encoding::Utf8, true).unwrap_err();
        assert_eq!(reason, "has 1 fields where the header has 2");
        let (_, reason) = decode_row(&record(&[b"13812345678", b"Wei", b"extra"]), &headers, Encoding::Utf8, true).unwrap_err();
        assert_eq!(reason, "has 3 fields where the header has 2");
        // A separator at the end of every line is no extra field.
        assert_eq!(decode_row(&record(&[b"13812345678", b"Wei", b""]), &headers, Encoding::Utf8, true).unwrap(), ["13812345678", "Wei"]);
    }
}
