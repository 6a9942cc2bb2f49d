//! A real `kith serve` for a benchmark: its own database (a SQLite file in a
//! temporary directory, or a new database on the benchmark's PostgreSQL server
//! with one or more `kith serve` nodes on it), a shop with owner and admin
//! keys, the first-party plugins installed and enabled over HTTP, and its peak
//! memory read from /proc.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The plugins that score and tag every customer (channel connectors send nothing here).
pub fn first_party() -> Vec<kith_test_plugins::Package> {
    use kith_test_plugins as p;
    vec![p::RFM, p::AIPL, p::LIFECYCLE, p::HIGH_VALUE, p::CATEGORY_AFFINITY, p::TIERED_POINTS]
}

/// Where a benchmark's Kith keeps its data.
#[derive(Debug, Clone, Copy)]
pub enum Setup<'a> {
    /// A SQLite file, one `kith serve`.
    Sqlite,
    /// A new database on this PostgreSQL server, with `nodes` `kith serve` on it.
    Postgres { cluster: &'a kith_postgres::cluster::Cluster, nodes: usize },
}

impl Setup<'_> {
    pub fn nodes(&self) -> usize {
        match self {
            Setup::Sqlite => 1,
            Setup::Postgres { nodes, .. } => *nodes,
        }
    }

    /// How the figures of this setup are labelled: `SQLite` or `PostgreSQL, 2 nodes`.
    pub fn label(&self) -> String {
        match self {
            Setup::Sqlite => "SQLite".into(),
            Setup::Postgres { nodes: 1, .. } => "PostgreSQL, 1 node".into(),
            Setup::Postgres { nodes, .. } => format!("PostgreSQL, {nodes} nodes"),
        }
    }
}

/// A Kith's database.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => write!(f, "{url}"),
        }
    }
}

pub struct Kith {
    /// The server's working directory (configuration, scripts; the SQLite database unless opened).
    pub dir: tempfile::TempDir,
    pub database: Database,
    /// The first node's URL.
    pub url: String,
    /// Every node's URL (one for SQLite).
    pub urls: Vec<String>,
    pub owner: String,
    pub admin: String,
    pub http: reqwest::Client,
    children: Vec<Child>,
}

fn cli(binary: &Path, dir: &Path, args: &[&str]) -> Result<Value> {
    let out = Command::new(binary).current_dir(dir).args(args).env("RUST_LOG", "warn").output().context("running kith")?;
    if !out.status.success() {
        bail!("kith {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

impl Kith {
    /// A new database with one shop, and `kith serve` on a free loopback port.
    pub fn start(binary: &Path, workers: usize, setup: Setup) -> Result<Kith> {
        let dir = tempfile::tempdir()?;
        let db = match setup {
            Setup::Sqlite => Database::Sqlite(dir.path().join("kith.db")),
            Setup::Postgres { cluster, .. } => {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                {
                    // The cluster's admin statements run on a runtime of their own: outside a worker's.
                    let name = format!("kith_{}_{n}", std::process::id());
                    Database::Postgres(tokio::task::block_in_place(|| cluster.create_database(&name))?)
                }
            }
        };
        let db_arg = db.to_string();
        let shop = cli(binary, dir.path(), &["--database", &db_arg, "admin", "create-shop", "--name", "Bench Shop"])?;
        let shop = shop["id"].as_i64().context("shop id")?;
        Kith::serve(binary, dir, db, shop, workers, setup.nodes())
    }

    /// `kith serve` on an existing database (one an earlier run ingested), with new keys for its first shop.
    pub fn open(binary: &Path, database: &Path, workers: usize) -> Result<Kith> {
        let conn = rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let shop: i64 = conn.query_row("SELECT id FROM shops ORDER BY id LIMIT 1", [], |r| r.get(0)).context("a shop in the database")?;
        drop(conn);
        Kith::serve(binary, tempfile::tempdir()?, Database::Sqlite(database.to_owned()), shop, workers, 1)
    }

    fn serve(binary: &Path, dir: tempfile::TempDir, db: Database, shop: i64, workers: usize, nodes: usize) -> Result<Kith> {
        let db_arg = db.to_string();
        let shop = shop.to_string();
        let owner = cli(binary, dir.path(), &["--database", &db_arg, "admin", "create-key", "--shop", &shop, "--role", "owner"])?;
        let admin = cli(binary, dir.path(), &["--database", &db_arg, "admin", "create-key", "--role", "admin"])?;
        let config = dir.path().join("kith.toml");
        std::fs::write(&config, format!("bind = \"127.0.0.1:0\"\nlog_format = \"json\"\n[plugins]\nworkers = {workers}\n"))?;
        // Through util-linux's `setpriv`, which then runs kith in its place: kith is killed when
        // the thread that started it ends, so an interrupted benchmark leaves no server behind
        // (one left running once took a core from the next run). Started from the main thread.
        // Several nodes share the PostgreSQL database, each a `kith serve` of its own.
        let (mut children, mut urls) = (Vec::new(), Vec::new());
        for _ in 0..nodes {
            let mut child = Command::new("setpriv")
                .current_dir(dir.path())
                .args(["--pdeathsig", "KILL", "--"])
                .arg(binary)
                .args(["serve", "--config", config.to_str().context("path")?])
                .env("KITH_DATABASE", &db_arg)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("starting kith serve (through setpriv, from util-linux)")?;
            let mut line = String::new();
            let stdout = child.stdout.take().context("stdout")?;
            children.push(child);
            BufReader::new(stdout).read_line(&mut line)?;
            urls.push(line.trim().strip_prefix("listening on ").with_context(|| format!("unexpected first line {line:?}"))?.to_owned());
        }
        let bearer = |v: &Value| format!("Bearer {}", v["token"].as_str().unwrap_or_default());
        Ok(Kith {
            url: urls[0].clone(),
            urls,
            owner: bearer(&owner),
            admin: bearer(&admin),
            http: reqwest::Client::builder().pool_max_idle_per_host(64).build()?,
            dir,
            database: db,
            children,
        })
    }

    /// The database's size on disk (SQLite: WAL included; PostgreSQL: `pg_database_size`), in bytes.
    pub async fn database_bytes(&self) -> Result<u64> {
        match &self.database {
            Database::Sqlite(db) => {
                let wal = PathBuf::from(format!("{}-wal", db.display()));
                Ok([db, &wal].iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum())
            }
            Database::Postgres(url) => {
                let client = crate::pg::connect(url).await?;
                Ok(crate::pg::scalar(&client, "SELECT pg_database_size(current_database())", &[]).await? as u64)
            }
        }
    }

    /// The peak resident memory so far of the largest node, in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        let mut peak = 0;
        for child in &self.children {
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
            let kib: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .context("VmHWM in /proc/<pid>/status")?;
            peak = peak.max(kib * 1024);
        }
        Ok(peak)
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let reply = self.http.get(format!("{}{path}", self.url)).header("authorization", &self.owner).send().await?;
        let status = reply.status();
        let body: Value = reply.json().await?;
        if !status.is_success() {
            bail!("GET {path}: {status} {body}");
        }
        Ok(body)
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, key: &str, body: &Value) -> Result<Value> {
        self.send_to(0, method, path, key, body).await
    }

    /// [`Kith::send`] to node `node` (of [`Kith::urls`], wrapping around).
    pub async fn send_to(&self, node: usize, method: reqwest::Method, path: &str, key: &str, body: &Value) -> Result<Value> {
        let reply = self
            .http
            .request(method.clone(), format!("{}{path}", self.urls[node % self.urls.len()]))
            .header("authorization", key)
            .json(body)
            .send()
            .await?;
        let status = reply.status();
        let body: Value = reply.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {body}");
        }
        Ok(body)
    }

    /// Install and enable `packages` with everything they request.
    pub async fn enable(&self, packages: &[kith_test_plugins::Package]) -> Result<()> {
        for package in packages {
            let reply = self
                .http
                .post(format!("{}/v1/plugins", self.url))
                .header("authorization", &self.admin)
                .header("content-type", "application/gzip")
                .body(package.tar_gz())
                .send()
                .await?;
            if !reply.status().is_success() {
                bail!("installing {}: {}", package.name, reply.text().await?);
            }
            let config = match package.name {
                "tiered-points" => json!({"expiry_days": 365, "tiers": [{"name": "silver", "threshold": 0},
                    {"name": "gold", "threshold": 200_000, "multiplier": 1.5}]}),
                _ => json!({}),
            };
            self.send(reqwest::Method::PUT, &format!("/v1/shop/plugins/{}", package.name), &self.owner, &json!({"config": config})).await?;
        }
        Ok(())
    }

    /// Wait until every enabled plugin has caught up with the event log and finished its runs.
    pub async fn drained(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let plugins = self.get("/v1/shop/plugins").await?;
            let items = plugins["items"].as_array().cloned().unwrap_or_default();
            let mut behind = false;
            for p in &items {
                let id = p["plugin_id"].as_str().or(p["id"].as_str()).unwrap_or_default();
                let status = self.get(&format!("/v1/shop/plugins/{id}")).await?;
                let running = status["runs"].as_array().is_some_and(|r| r.iter().any(|r| r["status"] == "running"));
                if status["lag"].as_i64() != Some(0) || running {
                    behind = true;
                    break;
                }
            }
            if !behind {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the bus did not drain in {timeout:?}");
            }
            // Each look asks for every plugin's status (call statistics included): looking every
            // 20 ms took 4 % of the server's time while it worked through the large shop.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Kith {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
