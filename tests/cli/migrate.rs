//! `kith migrate`: a SQLite database with a demo shop, a second shop and a plugin copied
//! into a real PostgreSQL (a throwaway cluster), then served from there.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use kith_postgres::cluster::Cluster;
use serde_json::Value;

use super::{KITH, fails, json, ok, run, text};

/// `kith serve` on `database` (a file or a URL), killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, database: &str) -> Server {
        let mut child = Command::new(KITH)
            .current_dir(dir)
            .args(["--database", database, "serve", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .env_remove("KITH_CONFIG")
            .env_remove("KITH_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kith serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("kith serve said {line:?}")).to_string();
        Server { child, base }
    }

    /// GET `path` with `key`: the status and the body as JSON.
    fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let response = reqwest::Client::new().get(&url).bearer_auth(key).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `kith --database DB migrate args…`.
fn migrate(dir: &Path, db: &Path, args: &[&str]) -> Output {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    run(dir, db, &all)
}

/// The report's line for `table`: its rows on each side and the checksum's verdict.
fn line<'a>(report: &'a str, table: &str) -> Vec<&'a str> {
    let found = report.lines().find(|l| l.split_whitespace().next() == Some(table)).unwrap_or_else(|| panic!("no {table} in\n{report}"));
    found.split_whitespace().collect()
}

/// A file with the demo shop (customers, orders, segments, journeys, a reward and its
/// coupon template) and a second shop with imported customers and a plugin enabled; the
/// demo shop's owner key and the second shop's id.
fn source(dir: &Path, db: &Path) -> (String, String) {
    let demo = ok(dir, db, &["demo", "--customers", "60", "--no-serve"]);
    let said = text(&demo.stdout);
    let key = said
        .lines()
        .find_map(|l| l.trim().strip_prefix("API key:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key in\n{said}"))
        .to_string();
    let second = json(dir, db, &["admin", "create-shop", "--name", "Second"])["id"].to_string();
    let mut customers = String::from("phone,name,city\n");
    for i in 0..40 {
        customers.push_str(&format!("139{i:08},客户 {i},杭州\n"));
    }
    let csv = dir.join("customers.csv");
    std::fs::write(&csv, customers).unwrap();
    ok(dir, db, &["import", "customers", csv.to_str().unwrap(), "--shop", &second]);
    let package = dir.join("vip-tag.tar.gz");
    std::fs::write(&package, kith_test_plugins::VIP_TAG.tar_gz()).unwrap();
    ok(dir, db, &["admin", "install-plugin", package.to_str().unwrap()]);
    ok(dir, db, &["admin", "enable-plugin", "--shop", &second, "vip-tag", "--plugin-config", r#"{"threshold": 10000}"#]);
    (key, second)
}

#[test]
fn a_sqlite_database_moves_into_postgres_whole_or_one_shop_and_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kith.db");
    let (key, second) = source(dir.path(), &db);
    let cluster = Cluster::start().unwrap();

    // Everything, into a database that does not hold the schema yet.
    let url = cluster.create_database("whole").unwrap();
    let out = migrate(dir.path(), &db, &["--to", &url]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert_eq!(line(&report, "shops")[1..4], ["2", "2", "match"], "{report}");
    let customers = line(&report, "customers")[1].to_string();
    for table in [
        "customers",
        "identities",
        "orders",
        "order_items",
        "events",
        "segments",
        "segment_versions",
        "journey_versions",
        "plugin_blobs",
        "subscriptions",
    ] {
        let cells = line(&report, table);
        assert!(cells[1] != "0" && cells[1] == cells[2] && cells[3] == "match", "{table}: {report}");
    }
    assert!(report.contains("verified: rows and checksum match in all"), "{report}");
    assert!(report.contains("compiles each plugin on its first use"), "{report}");
    assert!(!report.contains("MISMATCH"), "{report}");

    // The demo shop's customers read the same through the API from either database, with
    // the key made in the SQLite file.
    let path = "/v1/customers?limit=100";
    let from_sqlite = Server::start(dir.path(), db.to_str().unwrap()).get(&key, path);
    let on_postgres = Server::start(dir.path(), &url);
    let from_postgres = on_postgres.get(&key, path);
    assert_eq!((from_sqlite.0, from_postgres.0), (200, 200), "{:?} {:?}", from_sqlite.1, from_postgres.1);
    let (a, b) = (from_sqlite.1["items"].as_array().unwrap(), from_postgres.1["items"].as_array().unwrap());
    assert!(a.len() >= 60 && a.iter().all(|c| c["identities"].as_array().is_some_and(|i| !i.is_empty())), "{}", a.len());
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(b) {
        assert_eq!(a, b);
    }
    // New rows take ids after the copied ones: a shop created there is the third.
    drop(on_postgres);
    let made = json(dir.path(), Path::new(&url), &["admin", "create-shop", "--name", "Third"]);
    assert_eq!(made["id"], 3, "{made}");

    // A second copy into the same database is refused, and writes nothing.
    let refused = fails(dir.path(), &db, &["migrate", "--to", &url]);
    assert!(refused.contains("already holds rows in") && refused.contains("shops"), "{refused}");
    assert!(refused.contains("nothing was written"), "{refused}");
    let shops = json(dir.path(), Path::new(&url), &["admin", "list-shops"]);
    assert_eq!(shops.as_array().unwrap().len(), 3, "{shops}");

    // The target changed after the copy: --verify-only finds the tables that differ, by
    // their counts (a shop more) or by their checksum alone (a key revoked).
    let keys = json(dir.path(), Path::new(&url), &["admin", "list-keys"]);
    let keys = keys.as_array().unwrap().len().to_string();
    let first = json(dir.path(), Path::new(&url), &["admin", "list-keys"])[0]["id"].as_str().unwrap().to_string();
    ok(dir.path(), Path::new(&url), &["admin", "revoke-key", &first]);
    let out = migrate(dir.path(), &db, &["--to", &url, "--verify-only"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert_eq!(line(&report, "shops")[1..4], ["2", "3", "MISMATCH"], "{report}");
    assert_eq!(line(&report, "customers")[1..4], [customers.as_str(), customers.as_str(), "match"], "{report}");
    assert_eq!(line(&report, "api_keys")[1..4], [keys.as_str(), keys.as_str(), "MISMATCH"], "{report}");
    assert!(text(&out.stderr).contains("tables differ"), "{}", text(&out.stderr));

    // One shop: its rows only, with the catalogue.
    let one = cluster.create_database("one").unwrap();
    let out = migrate(dir.path(), &db, &["--to", &one, "--shop", &second]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert_eq!(line(&report, "shops")[1..4], ["1", "1", "match"], "{report}");
    assert_eq!(line(&report, "customers")[1..4], ["40", "40", "match"], "{report}");
    assert_eq!(line(&report, "orders")[1..3], ["0", "0"], "{report}");
    assert_eq!(line(&report, "plugin_blobs")[1..4], ["1", "1", "match"], "{report}");
    let shops = json(dir.path(), Path::new(&one), &["admin", "list-shops"]);
    let ids: Vec<i64> = shops.as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [second.parse::<i64>().unwrap()], "{shops}");
    let plugins = json(dir.path(), Path::new(&one), &["admin", "list-plugins"]);
    assert!(plugins.to_string().contains("vip-tag"), "{plugins}");
    // The demo shop's key did not come along.
    let server = Server::start(dir.path(), &one);
    assert_eq!(server.get(&key, path).0, 401);

    let missing = fails(dir.path(), &db, &["migrate", "--to", &cluster.create_database("none").unwrap(), "--shop", "99"]);
    assert!(missing.contains("copying shop 99") && missing.contains("not found"), "{missing}");
}
