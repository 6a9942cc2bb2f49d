//! The `kith` command line as a user runs it: the real binary on a real SQLite file.

mod migrate;

use kith_core::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const KITH: &str = env!("CARGO_BIN_EXE_kith");

/// Run `kith --database DB args…` in `dir`, whatever its exit status.
fn run(dir: &Path, db: &Path, args: &[&str]) -> Output {
    Command::new(KITH)
        .current_dir(dir)
        .arg("--database")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("KITH_CONFIG")
        .env_remove("KITH_DATABASE")
        .output()
        .expect("run kith")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Run and require success.
fn ok(dir: &Path, db: &Path, args: &[&str]) -> Output {
    let out = run(dir, db, args);
    assert!(out.status.success(), "kith {args:?} failed ({}):\n{}\n{}", out.status, text(&out.stdout), text(&out.stderr));
    out
}

fn json(dir: &Path, db: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&ok(dir, db, args).stdout).expect("kith printed JSON")
}

/// Run and require a clean failure: exit status 1, not a panic's 101.
fn fails(dir: &Path, db: &Path, args: &[&str]) -> String {
    let out = run(dir, db, args);
    assert_eq!(out.status.code(), Some(1), "kith {args:?}:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

/// A database with one shop; its id.
fn shop(dir: &Path, db: &Path) -> String {
    json(dir, db, &["admin", "create-shop", "--name", "Shop"])["id"].to_string()
}

#[test]
fn admin_enable_plugin_enables_an_installed_plugin_with_its_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let package = dir.path().join("vip-tag.tar.gz");
    std::fs::write(&package, kith_test_plugins::VIP_TAG.tar_gz()).unwrap();
    ok(dir.path(), &db, &["admin", "install-plugin", package.to_str().unwrap()]);

    let enabled =
        json(dir.path(), &db, &["admin", "enable-plugin", "--shop", &shop, "vip-tag", "--plugin-config", r#"{"threshold": 10000}"#]);
    assert_eq!(enabled["config"]["threshold"], 10000, "{enabled}");
    assert_eq!(enabled["status"], "enabled", "{enabled}");
    // The global --config still names kith's own configuration file, beside the plugin's.
    let config = dir.path().join("kith.toml");
    std::fs::write(&config, "log_format = \"json\"\n").unwrap();
    let changed = json(
        dir.path(),
        &db,
        &[
            "--config",
            config.to_str().unwrap(),
            "admin",
            "enable-plugin",
            "--shop",
            &shop,
            "vip-tag",
            "--plugin-config",
            r#"{"threshold": 500}"#,
        ],
    );
    assert_eq!(changed["config"]["threshold"], 500, "{changed}");

    let refused = fails(dir.path(), &db, &["admin", "enable-plugin", "--shop", &shop, "vip-tag", "--plugin-config", "threshold=1"]);
    assert!(refused.contains("--plugin-config is not JSON"), "{refused}");
    let refused =
        fails(dir.path(), &db, &["admin", "enable-plugin", "--shop", &shop, "vip-tag", "--plugin-config", r#"{"threshold": -1}"#]);
    assert!(refused.contains("threshold"), "{refused}");
}

/// The file of the issue: UTF-8, with one row saved as GBK at line 602, one row short of a
/// field and one with a field too many.
#[test]
fn import_rejects_each_bad_row_with_its_line_and_reason_and_imports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let mut file = "手机号,姓名,生日,城市\n".as_bytes().to_vec();
    for line in 2..=700 {
        let row = match line {
            602 => encoding_rs::GBK.encode(&format!("138{line:08},李娜,1990-05-20,深圳\n")).0.into_owned(),
            610 => format!("138{line:08},张伟,1990-05-20\n").into_bytes(),
            620 => format!("138{line:08},张伟,1990-05-20,杭州,gold\n").into_bytes(),
            // Compact dates and dates with a time, as exports write birthdays.
            630 => format!("138{line:08},王芳,19970101,北京\n").into_bytes(),
            _ => format!("138{line:08},张伟,1990-05-20,杭州\n").into_bytes(),
        };
        file.extend(row);
    }
    let csv = dir.path().join("customers.csv");
    std::fs::write(&csv, &file).unwrap();

    let out = ok(dir.path(), &db, &["import", "customers", csv.to_str().unwrap(), "--shop", &shop]);
    let summary = text(&out.stdout);
    assert!(summary.contains("699 rows: 696 events accepted, 0 duplicates, 3 rows rejected"), "{summary}");
    let errors_path = dir.path().join("customers.errors.csv");
    assert!(text(&out.stderr).contains(&format!("3 rows rejected, each with its line and reason in {}", errors_path.display())));
    let errors = std::fs::read_to_string(&errors_path).unwrap();
    let errors: Vec<&str> = errors.lines().collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(errors[1].starts_with("602,姓名,\"is not UTF-8 like the rest of the file: it reads as GBK (`李娜`)"), "{errors:?}");
    assert_eq!(errors[2], "610,,has 3 fields where the header has 4");
    assert_eq!(errors[3], "620,,has 5 fields where the header has 4");

    let store = kith_sqlite::Store::open(&db, kith_sqlite::StoreOptions::default()).unwrap();
    let shop_id: i64 = shop.parse().unwrap();
    let customers = store.list_customers(shop_id, &kith_core::customers::CustomerFilter::default(), 0, 1000).unwrap();
    assert_eq!(customers.len(), 696);
    let wang = customers.iter().find(|c| c.profile.name.as_deref() == Some("王芳")).unwrap();
    assert_eq!(wang.profile.birthday.map(|d| d.to_string()).as_deref(), Some("1997-01-01"));
    drop(store);

    // The same file again applies nothing twice, and reports the same rows.
    let again = ok(dir.path(), &db, &["import", "customers", csv.to_str().unwrap(), "--shop", &shop]);
    assert!(text(&again.stdout).contains("699 rows: 0 events accepted, 696 duplicates, 3 rows rejected"), "{}", text(&again.stdout));
}

#[test]
fn import_reads_a_gbk_export_and_the_common_time_layouts_and_rejects_a_whole_order_with_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    // `太原` in GBK is valid UTF-8 too (two two-byte sequences), as are about a fifth of the common
    // characters: it is GBK all the same.
    let orders = "订单编号,手机号,付款时间,实付金额,商品编码,商品名称,数量,单价\n\
                  TB1,13812345678,20260115 13:45:00,99.00,BE-001,玫瑰精华液,1,99.00\n\
                  TB2,13812345678,2026/01/16 13:45,50.00,FD-002,太原,1,50.00\n\
                  TB3,13912345678,2026-01-17T13:45:00+08:00,30.00,FD-001,坚果礼盒,1,10.00\n\
                  TB3,13912345678,2026-01-17T13:45:00+08:00,30.00,FD-003,有机大米,two,20.00\n\
                  TB4,13912345678,2026年1月18日 13:45,20.00,AP-001,纯棉T恤,1,20.00\n";
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, encoding_rs::GBK.encode(orders).0).unwrap();

    let out = ok(dir.path(), &db, &["import", "orders", csv.to_str().unwrap(), "--shop", &shop]);
    assert!(text(&out.stderr).contains("as GBK"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("5 rows: 3 events accepted, 0 duplicates, 2 rows rejected"), "{}", text(&out.stdout));
    let errors = std::fs::read_to_string(dir.path().join("orders.errors.csv")).unwrap();
    assert_eq!(
        errors.lines().collect::<Vec<_>>(),
        [
            "line,field,reason",
            "4,order_id,order `TB3` is not imported: its row at line 5 was rejected",
            "5,数量,`two` is not a whole number",
        ]
    );

    let store = kith_sqlite::Store::open(&db, kith_sqlite::StoreOptions::default()).unwrap();
    let shop_id: i64 = shop.parse().unwrap();
    let customers = store.list_customers(shop_id, &kith_core::customers::CustomerFilter::default(), 0, 10).unwrap();
    let first = customers.iter().find(|c| c.stats.order_count == 2).unwrap();
    assert_eq!(first.stats.total_spent, 14900);
    // 13:45 in Asia/Shanghai is 05:45 UTC.
    assert_eq!(first.stats.first_order_at.unwrap().to_rfc3339(), "2026-01-15T05:45:00+00:00");
    let second = customers.iter().find(|c| c.stats.order_count == 1).unwrap();
    assert_eq!((second.stats.total_spent, second.stats.first_order_at.unwrap().to_rfc3339().as_str()), (2000, "2026-01-18T05:45:00+00:00"));
}

#[test]
fn import_fails_only_when_the_file_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let missing = dir.path().join("missing.csv");
    let refused = fails(dir.path(), &db, &["import", "customers", missing.to_str().unwrap(), "--shop", &shop]);
    assert!(refused.contains("missing.csv"), "{refused}");
}

/// Start `kith serve` on `db`; its first line on stdout, and how it ended when it ended by itself.
fn serve(dir: &Path, db: &Path, args: &[&str]) -> (String, Option<Output>) {
    let mut child = Command::new(KITH)
        .current_dir(dir)
        .arg("--database")
        .arg(db)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kith serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    if line.starts_with("listening on") {
        child.kill().unwrap();
        child.wait().unwrap();
        return (line, None);
    }
    (line, Some(child.wait_with_output().unwrap()))
}

#[test]
fn serve_refuses_an_existing_empty_database_file_unless_told_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    std::fs::write(&db, b"").unwrap();
    let (_, ended) = serve(dir.path(), &db, &[]);
    let ended = ended.expect("kith serve refused the file");
    assert_eq!(ended.status.code(), Some(1));
    let said = text(&ended.stderr);
    assert!(said.contains("exists but is empty (0 bytes)"), "{said}");
    assert!(said.contains("restore it from a backup") && said.contains("--create"), "{said}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "the refused file is left as it was");
    // Every command refuses it, not only serve.
    assert!(fails(dir.path(), &db, &["admin", "list-shops"]).contains("exists but is empty"));

    let (line, ended) = serve(dir.path(), &db, &["--create"]);
    assert!(ended.is_none() && line.starts_with("listening on"), "{line} {ended:?}");
    assert_eq!(json(dir.path(), &db, &["admin", "list-shops"]), serde_json::json!([]));
    // A missing file is a new database, as it always was.
    let fresh = dir.path().join("fresh.db");
    assert_eq!(json(dir.path(), &fresh, &["admin", "list-shops"]), serde_json::json!([]));
}

/// 64 KiB of garbage written into the middle of a real database, as a failing disk or a
/// botched copy leaves it.
#[test]
fn serve_refuses_a_damaged_database_file_and_kith_check_reports_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let mut customers = String::from("phone,name,city\n");
    for i in 0..4000 {
        customers.push_str(&format!("138{i:08},Customer {i} of a shop with a long name,Hangzhou\n"));
    }
    let csv = dir.path().join("customers.csv");
    std::fs::write(&csv, customers).unwrap();
    ok(dir.path(), &db, &["import", "customers", csv.to_str().unwrap(), "--shop", &shop]);
    let sound = ok(dir.path(), &db, &["check"]);
    assert!(text(&sound.stdout).contains("is sound"), "{}", text(&sound.stdout));

    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 1 << 20, "the database is {} bytes", bytes.len());
    let middle = bytes.len() / 2;
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for b in &mut bytes[middle..middle + 64 * 1024] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&db, &bytes).unwrap();

    let (_, ended) = serve(dir.path(), &db, &[]);
    let ended = ended.expect("kith serve refused the file");
    assert_eq!(ended.status.code(), Some(1));
    let said = text(&ended.stderr);
    assert!(said.contains("is damaged; SQLite's quick check found"), "{said}");
    assert!(said.contains("kith check") && said.contains("backup"), "{said}");
    // --create never starts over a file with content.
    let (_, ended) = serve(dir.path(), &db, &["--create"]);
    assert_eq!(ended.expect("refused again").status.code(), Some(1));

    let check = run(dir.path(), &db, &["check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(!text(&check.stdout).trim().is_empty(), "the findings are printed");
    assert!(text(&check.stderr).contains("is damaged"), "{}", text(&check.stderr));
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "nothing wrote to the damaged file");
}

#[test]
fn an_order_row_of_the_wrong_width_keeps_its_order_out_whole() {
    // A row missing a field has its columns shifted, so its order id cannot be read from it; the
    // order around it must not be imported without that row's item (review of issue 25).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let orders = "order_id,phone,paid_at,amount,sku,quantity,unit_price\n\
                  TB1,13812345678,2026-01-15 10:00,60.00,A,1,10.00\n\
                  TB1,13812345678,2026-01-15 10:00,60.00,B,1,20.00\n\
                  13812345678,2026-01-15 10:00,60.00,C,1,30.00\n\
                  TB2,13912345678,2026-01-16 10:00,10.00,D,1,10.00\n";
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, orders).unwrap();
    let out = ok(dir.path(), &db, &["import", "orders", csv.to_str().unwrap(), "--shop", &shop]);
    assert!(text(&out.stdout).contains("4 rows: 0 events accepted, 0 duplicates, 4 rows rejected"), "{}", text(&out.stdout));
    let errors = std::fs::read_to_string(dir.path().join("orders.errors.csv")).unwrap();
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 5, "{errors}");
    assert!(lines[1].starts_with("2,order_id,order `TB1` is not imported: its row at line 4"), "{errors}");
    assert!(lines[3].starts_with("4,,has 6 fields where the header has 7"), "{errors}");
    assert!(lines[4].starts_with("5,order_id,order `TB2` is not imported: its row at line 4"), "{errors}");
}

/// A shop whose customers buy as BG/NBD supposes: each has a daily purchase rate and,
/// after each purchase, a chance of leaving for good. Orders at noon in the shop's zone;
/// returns, per customer, the days they bought on (the test's own count to check against).
fn simulated_shop(db: &Path, shop_id: i64, customers: usize, seed: u64) -> Vec<Vec<chrono::NaiveDate>> {
    let store = kith_sqlite::Store::open(db, kith_sqlite::StoreOptions::default()).unwrap();
    let mut x = seed;
    let mut uniform = move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let end = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    let mut days_of = Vec::new();
    let mut events = Vec::new();
    for c in 0..customers {
        // Rates from one purchase a year to one a fortnight; leaving after a purchase 5-50 %.
        let rate = 1.0 / (14.0 + 350.0 * uniform() * uniform());
        let leave = 0.05 + 0.45 * uniform();
        let mut day = start + chrono::Duration::days((uniform() * 60.0) as i64);
        let mut days = Vec::new();
        while day <= end {
            days.push(day);
            if uniform() < leave {
                break;
            }
            // Days to the next purchase: geometric with the daily rate.
            let wait = (uniform().ln() / (1.0 - rate).ln()).floor() as i64 + 1;
            day += chrono::Duration::days(wait);
        }
        for (i, d) in days.iter().enumerate() {
            let paid_at = format!("{d}T04:00:00Z");
            events.push(serde_json::json!({"id": format!("o{c}-{i}"), "type": "order.paid",
                "identities": [{"kind": "external:erp", "value": format!("k{c}")}],
                "order": {"id": format!("O{c}-{i}"), "amount": 5000 + (c % 7) * 1000, "paid_at": paid_at}}));
        }
        // Every tenth customer also bought once in the holdout and returned it whole: not a purchase.
        if c % 10 == 0 {
            events.push(serde_json::json!({"id": format!("x{c}"), "type": "order.paid",
                "identities": [{"kind": "external:erp", "value": format!("k{c}")}],
                "order": {"id": format!("X{c}"), "amount": 3000, "paid_at": "2025-12-01T04:00:00Z"}}));
            events.push(serde_json::json!({"id": format!("r{c}"), "type": "order.refunded",
                "refund": {"order_id": format!("X{c}"), "amount": 3000, "refunded_at": "2025-12-02T04:00:00Z"}}));
        }
        days_of.push(days);
    }
    let cli = kith_core::Actor::cli("test");
    for batch in events.chunks(1000) {
        let report = store.ingest(shop_id, batch.to_vec(), &cli).unwrap();
        assert_eq!(report.rejected, 0, "{:?}", report.outcomes.iter().find(|o| o.reason.is_some()));
    }
    days_of
}

#[test]
fn backtest_compares_predicted_and_actual_repeat_purchases_and_refuses_too_little_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let shop = shop(dir.path(), &db);
    let days_of = simulated_shop(&db, shop.parse().unwrap(), 900, 42);
    let calibration_end = chrono::NaiveDate::from_ymd_opt(2025, 9, 30).unwrap();
    let holdout_end = chrono::NaiveDate::from_ymd_opt(2026, 3, 31).unwrap();
    // The test's own count: calibration buyers by their repeat purchases (0 … 6, 7+), and their purchases after.
    let mut customers = [0usize; 8];
    let mut actual = [0u64; 8];
    for days in days_of.iter().filter(|d| d[0] <= calibration_end) {
        let repeats = days.iter().filter(|d| **d <= calibration_end).count() - 1;
        customers[repeats.min(7)] += 1;
        actual[repeats.min(7)] += days.iter().filter(|d| **d > calibration_end && **d <= holdout_end).count() as u64;
    }

    let out =
        json(dir.path(), &db, &["backtest", "--shop", &shop, "--calibration-end", "2025-09-30", "--holdout-end", "2026-03-31", "--json"]);
    assert_eq!(out["holdout_days"], 182.0);
    assert_eq!(out["fit"]["customers"], customers.iter().sum::<usize>());
    assert_eq!(out["fit"]["converged"], true, "{out}");
    let buckets = out["buckets"].as_array().unwrap();
    let labels: Vec<&str> = buckets.iter().map(|b| b["frequency"].as_str().unwrap()).collect();
    assert_eq!(labels, ["0", "1", "2", "3", "4", "5", "6", "7+"]);
    for (i, b) in buckets.iter().enumerate() {
        assert_eq!(b["customers"], customers[i], "bucket {i}");
        let mean = if customers[i] == 0 { 0.0 } else { actual[i] as f64 / customers[i] as f64 };
        assert!((b["actual"].as_f64().unwrap() - mean).abs() < 1e-9, "bucket {i}: {} against {mean}", b["actual"]);
    }
    assert_eq!(out["actual_total"], actual.iter().sum::<u64>(), "the refunded holdout orders are no purchases");
    // The data follows the model's story: its predictions land near what happened and rise with the frequency.
    let error = out["total_error"].as_f64().unwrap();
    assert!(error.abs() < 0.25, "predicted {} against {} ({error})", out["predicted_total"], out["actual_total"]);
    let predicted: Vec<f64> = buckets.iter().map(|b| b["predicted"].as_f64().unwrap()).collect();
    assert!(predicted.windows(2).all(|w| w[1] > w[0]), "{predicted:?}");

    // The table a merchant reads.
    let out = ok(dir.path(), &db, &["backtest", "--shop", &shop, "--calibration-end", "2025-09-30", "--holdout-end", "2026-03-31"]);
    let table = text(&out.stdout);
    println!("{table}");
    assert!(table.contains("calibration  customers  predicted     actual"), "{table}");
    assert!(table.contains(&format!("{:>11} {:>10}", "7+", customers[7])), "{table}");
    assert!(table.contains(&format!("against {} actual repeat purchases", actual.iter().sum::<u64>())), "{table}");

    // Too little data by the calibration end: refused with the reasons, unless told to go on.
    let early = fails(dir.path(), &db, &["backtest", "--shop", &shop, "--calibration-end", "2025-03-31", "--holdout-end", "2026-03-31"]);
    assert!(early.contains("too short a history: 89 days since the first purchase, at least 180 are needed"), "{early}");
    assert!(early.contains("--ignore-minimum"), "{early}");
    let small = dir.path().join("small.db");
    let small_shop = shop_in(dir.path(), &small);
    simulated_shop(&small, small_shop.parse().unwrap(), 120, 7);
    let args = ["backtest", "--data", small.to_str().unwrap(), "--shop", &small_shop, "--calibration-end", "2025-09-30", "--json"];
    let refused = fails(dir.path(), &db, &args);
    assert!(refused.contains("too few buyers: 120, at least 500 are needed"), "{refused}");
    let forced = json(dir.path(), &db, &[&args[..], &["--ignore-minimum"]].concat());
    assert_eq!(forced["fit"]["customers"], 120);
    assert!(forced["below_minimum"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().starts_with("too few buyers")));
    assert_eq!(forced["holdout_end"], "2026-03-31", "by default the day of the shop's latest order");

    let unknown = fails(dir.path(), &db, &["backtest", "--shop", "999", "--calibration-end", "2025-09-30"]);
    assert!(unknown.contains("shop 999"), "{unknown}");
    let backwards =
        fails(dir.path(), &db, &["backtest", "--shop", &shop, "--calibration-end", "2025-09-30", "--holdout-end", "2025-09-01"]);
    assert!(backwards.contains("must come after the calibration end"), "{backwards}");
}

/// A shop in another database file.
fn shop_in(dir: &Path, db: &Path) -> String {
    json(dir, db, &["admin", "create-shop", "--name", "Small"])["id"].to_string()
}
