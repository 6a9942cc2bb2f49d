//! A PostgreSQL server of Kith's own for tests and the demo: `initdb` into a folder,
//! `postgres` on a free loopback port, stopped when dropped. A test's cluster is
//! throwaway (a temporary folder, removed with it); the demo's is kept in a folder and
//! started again next time. No running server is assumed; the binaries are found where
//! Debian installs them (`cargo xtask` installs the package when they are missing).
//!
//! Run as root, the server runs as the `postgres` user (it refuses root).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The variable naming a folder of PostgreSQL's server binaries, searched first.
pub const BINDIR_ENV: &str = "KITH_PG_BINDIR";

/// A server of its own, on loopback, with a user `kith` trusted without a password.
pub struct Cluster {
    bin: PathBuf,
    dir: Folder,
    port: u16,
    server: Child,
    /// Stops the server if this process ends without dropping the cluster.
    watchdog: Child,
    owner: Option<(u32, u32)>,
    /// The migrated database new ones are copied from, made on first use.
    template: Mutex<bool>,
}

/// Where a cluster lives: a temporary folder, removed with it, or one that is kept.
enum Folder {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Folder {
    fn path(&self) -> &std::path::Path {
        match self {
            Folder::Temp(dir) => dir.path(),
            Folder::Kept(dir) => dir,
        }
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("dir", &self.dir.path()).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Cluster {
    /// `initdb` a throwaway cluster and start it; returns once it accepts connections.
    /// It is stopped and removed when dropped, or when this process ends.
    pub fn start() -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("kith-pg-").tempdir().context("a folder for the cluster")?;
        Self::start_in(Folder::Temp(dir), false)
    }

    /// [`Cluster::start`] with PostgreSQL's durable defaults (`fsync`, `synchronous_commit`,
    /// `full_page_writes` on): for benchmarks beside SQLite's `synchronous=FULL`.
    pub fn start_durable() -> Result<Cluster> {
        let dir = tempfile::Builder::new().prefix("kith-pg-").tempdir().context("a folder for the cluster")?;
        Self::start_in(Folder::Temp(dir), true)
    }

    /// Start the cluster kept in `dir`, made there by `initdb` on first use; returns once it
    /// accepts connections. It is stopped (its data kept) when dropped.
    pub fn kept(dir: &std::path::Path) -> Result<Cluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::path::absolute(dir)?;
        Self::start_in(Folder::Kept(dir), true)
    }

    fn start_in(dir: Folder, durable: bool) -> Result<Cluster> {
        let bin = bindir()?;
        let owner = server_owner()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).context("giving the cluster's folder to postgres")?;
        }
        let data = dir.path().join("data");
        if !data.join("PG_VERSION").is_file() {
            let mut initdb = Command::new(bin.join("initdb"));
            initdb
                .arg("-D")
                .arg(&data)
                .args(["-U", "kith", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            as_owner(&mut initdb, owner);
            let out = initdb.output().context("running initdb")?;
            if !out.status.success() {
                bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        let log_path = dir.path().join("server.log");
        let remove = matches!(dir, Folder::Temp(_)).then(|| dir.path());
        // A free port may be taken by someone else between our look and the server's bind:
        // the server then exits, and another port is tried.
        let mut attempts = 0;
        let (port, server, watchdog) = loop {
            let port = free_port()?;
            let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&log_path, Some(uid), Some(gid))?;
            }
            let mut server = Command::new(bin.join("postgres"));
            server.arg("-D").arg(&data).args(["-p", &port.to_string(), "-k"]).arg(dir.path()).args(["-c", "listen_addresses=127.0.0.1"]);
            if !durable {
                // A throwaway cluster: nothing to keep over a crash of the machine.
                server.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
            }
            server
                .args(["-c", "max_connections=400", "-c", "shared_buffers=64MB"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            as_owner(&mut server, owner);
            let mut server = server.spawn().context("starting postgres")?;
            let mut watchdog = watch(server.id(), remove)?;
            match wait_ready(&mut server, port, &data) {
                Ok(true) => break (port, server, watchdog),
                Ok(false) if attempts < 4 => attempts += 1,
                outcome => {
                    let _ = server.kill();
                    let _ = server.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    return Err(match outcome {
                        Err(e) => e.context(format!("PostgreSQL did not start:\n{log}")),
                        _ => anyhow::anyhow!("PostgreSQL exited at start, {} times:\n{log}", attempts + 1),
                    });
                }
            }
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            let _ = server.wait();
        };
        Ok(Cluster { bin, dir, port, server, watchdog, owner, template: Mutex::new(false) })
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://kith@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new empty database named `name`; its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.admin(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))?;
        Ok(self.url(name))
    }

    /// The database `name`, created when missing; its URL.
    pub fn database(&self, name: &str) -> Result<String> {
        match self.create_database(name) {
            Err(e) if format!("{e:#}").contains("already exists") => Ok(self.url(name)),
            other => other,
        }
    }

    /// A new database named `name` with Kith's schema already migrated (copied from a
    /// template migrated once per cluster): its URL.
    pub fn migrated_database(&self, name: &str) -> Result<String> {
        {
            let mut made = self.template.lock().unwrap_or_else(|p| p.into_inner());
            if !*made {
                let url = self.create_database("kith_template")?;
                drop(crate::Postgres::open(&url, crate::PgOptions { pool_size: 2, ..Default::default() })?);
                *made = true;
            }
        }
        // The template's last connections may still be closing.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.admin(&format!("CREATE DATABASE \"{name}\" TEMPLATE kith_template")) {
                Ok(()) => return Ok(self.url(name)),
                Err(e) if Instant::now() < deadline && format!("{e:#}").contains("being accessed") => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Run one statement on the `postgres` database.
    pub fn admin(&self, sql: &str) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let url = self.url("postgres");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            let out = client.batch_execute(sql).await;
            drop(client);
            let _ = task.await;
            out
        })?;
        Ok(())
    }
}

/// Wait until the server started as `server` answers on `port` from its own data folder:
/// true when it does, false when it exited first (its port was taken); an error after 60 s.
fn wait_ready(server: &mut Child, port: u16, data: &std::path::Path) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let data = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_owned());
    let url = format!("postgres://kith@127.0.0.1:{port}/postgres");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    loop {
        if server.try_wait()?.is_some() {
            return Ok(false);
        }
        // Another server on the port answers from its own folder: ours will exit.
        let answered = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            let row = client.query_one("SHOW data_directory", &[]).await;
            drop(client);
            let _ = task.await;
            row.map(|row| row.get::<_, String>(0))
        });
        if let Ok(folder) = answered
            && std::fs::canonicalize(&folder).is_ok_and(|folder| folder == data)
        {
            return Ok(true);
        }
        if Instant::now() > deadline {
            bail!("PostgreSQL did not answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A kept cluster shuts down cleanly; a throwaway one at once.
        let mode = if matches!(self.dir, Folder::Kept(_)) { "fast" } else { "immediate" };
        let mut stop = Command::new(self.bin.join("pg_ctl"));
        stop.arg("-D").arg(self.dir.path().join("data")).args(["-m", mode, "-w", "stop"]);
        stop.stdout(Stdio::null()).stderr(Stdio::null());
        as_owner(&mut stop, self.owner);
        if !stop.status().is_ok_and(|s| s.success()) {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }
}

/// Stop the server, and remove a throwaway cluster's folder, when this process ends
/// without dropping the [`Cluster`] (one kept in a `static` for a whole test binary, or a
/// process killed): a shell polls this process, then stops the server (SIGINT, a fast
/// shutdown, for a kept cluster; SIGQUIT, immediate, for a throwaway one).
fn watch(server: u32, remove: Option<&std::path::Path>) -> Result<Child> {
    let script = match remove {
        Some(_) => "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill -QUIT \"$1\" 2>/dev/null; sleep 2; rm -rf \"$2\"",
        None => "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill -INT \"$1\" 2>/dev/null",
    };
    Command::new("sh")
        .args(["-c", script])
        .arg(std::process::id().to_string())
        .arg(server.to_string())
        .arg(remove.unwrap_or(std::path::Path::new("")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting the cluster's watchdog")
}

/// The folder of PostgreSQL's server binaries: `$KITH_PG_BINDIR`, else Debian's
/// newest `/usr/lib/postgresql/N/bin`.
pub fn bindir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server found (no /usr/lib/postgresql/N/bin/initdb, and {BINDIR_ENV} is not set): \
             `cargo xtask test` installs Debian's postgresql package"
        ),
    }
}

/// The user and group the server runs as: `postgres` when this process is root (which
/// PostgreSQL refuses), else this process's own (`None`).
fn server_owner() -> Result<Option<(u32, u32)>> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1);
    if me != 0 {
        return Ok(None);
    }
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"postgres") && fields.len() > 3 {
            return Ok(Some((fields[2].parse()?, fields[3].parse()?)));
        }
    }
    bail!("running as root, PostgreSQL needs a user of its own, and there is no `postgres` user")
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
