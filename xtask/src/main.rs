//! Project tasks, so that one command does all the set-up:
//!
//! - `cargo xtask demo [--postgres] [ARGS]`: build the first-party plugins and run the
//!   kernel on a demo shop with them enabled (`kith demo`, data in
//!   `kith-data/demo.db`; with `--postgres`, in a PostgreSQL server of the demo's own,
//!   installed from Debian when missing, its data in `kith-data/postgres`); ARGS go to `kith demo`.
//! - `cargo xtask test`: formatting, lints, the JavaScript and Python SDKs' unit tests (Node.js and npm
//!   from Debian when missing), then every test of the workspace
//!   (which builds the test plugins of `tests/plugins` for wasm32-wasip2; the PostgreSQL
//!   backend's tests start throwaway servers of their own, from Debian's package, installed when missing),
//!   then every benchmark at the tiny scale as a smoke test.
//! - `cargo xtask fuzz`: a schema-driven fuzz run of the API (schemathesis, pinned, from
//!   PyPI into `target/fuzz-venv`) against a real `kith serve` on loopback, with an owner
//!   and an analyst key, bounded in time; `cargo xtask test` runs it after the tests.
//! - Before the first-party plugins' tests, `cargo xtask test` fetches the CDNOW sample (the
//!   pinned `lifetimes` wheel from PyPI, once, into `target/datasets/`) that btyd's and predict's tests fit on.
//! - `cargo xtask bench [ARGS]`: build `kith`, `kith-bench` and `kith-bench-extism` in release and
//!   run `kith-bench ARGS` (e.g. `all --scale small`), after installing what
//!   the baselines need (`wrk` from Debian, `duckdb` from PyPI in a venv).
//! - `cargo xtask console`: the merchant console (`console/`): its pinned npm packages (`npm ci`, Node.js
//!   and npm from Debian when missing) and its Vite build into `console/dist`, which the `kith` binary
//!   embeds and serves at `/`. `demo` and `test` build it first; `test` also installs Debian's
//!   Chromium, which the console's browser tests (in the e2e suite) drive with playwright-core.
//! - `cargo xtask wit-types [--check]`: (re)write the JavaScript SDK's TypeScript types of the WIT
//!   (`sdk/js/src/wit.d.ts`) from `wit/v0.2/types.wit` ([`wit_types`]); `--check` only says whether
//!   the committed file is current (a unit test checks it too, in `cargo test --workspace`).

mod wit_types;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(),
        Some("console") => console(),
        Some("wit-types") => wit_types::run(&root(), &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--postgres] [kith demo args] | cargo xtask test | cargo xtask fuzz | cargo xtask console | cargo xtask bench [kith-bench args] | cargo xtask wit-types [--check]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    // A clean clone in CI builds everything once: incremental caches would only fill its disk
    // (they were most of a 40 GB target), so they are off there.
    if std::env::var_os("CI").is_some() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// rustfmt and clippy are rustup components a minimal profile may lack.
fn ensure_components() -> Result<()> {
    let missing = |sub: &str| !cargo().args([sub, "--version"]).output().is_ok_and(|o| o.status.success());
    if missing("fmt") || missing("clippy") {
        let mut cmd = Command::new("rustup");
        cmd.args(["component", "add", "rustfmt", "clippy"]);
        run(cmd)?;
    }
    Ok(())
}

/// Plugins compile for wasm32-wasip2, a rustup target a fresh toolchain lacks.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    if let Ok(out) = installed
        && !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2")
    {
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "add", "wasm32-wasip2"]);
        run(cmd)?;
    }
    Ok(())
}

fn demo(args: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    console()?;
    let postgres = args.first().is_some_and(|a| a == "--postgres");
    let args = if postgres { &args[1..] } else { args };
    let packages = first_party_packages()?;
    // The channel connectors need someone to send to: a stand-in provider on
    // loopback, alive as long as the demo runs.
    let provider = kith_provider::Provider::start().context("starting the provider stand-in")?;
    eprintln!("xtask: provider stand-in (webhook, SMS, e-mail) on {}", provider.url(""));
    // With --postgres, a PostgreSQL server of the demo's own, its data kept in kith-data/postgres
    // between runs, on a free loopback port, stopped when the demo stops.
    let cluster = if postgres {
        ensure_postgres()?;
        let cluster = kith_postgres::cluster::Cluster::kept(&root().join("kith-data/postgres")).context("starting PostgreSQL")?;
        eprintln!("xtask: PostgreSQL on 127.0.0.1:{} (data in kith-data/postgres)", cluster.port());
        Some(cluster)
    } else {
        None
    };
    let database = match &cluster {
        Some(cluster) => cluster.database("kith")?,
        None => "kith-data/demo.db".to_owned(),
    };
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--package", "kith", "--", "--database", &database, "demo", "--plugins"])
        .arg(&packages)
        .arg("--provider")
        .arg(provider.url(""))
        .args(args);
    run(cmd)
}

/// Build the first-party plugins of `plugins/` into components and lay each
/// out as a package folder (`plugin.toml` and `plugin.wasm`); returns the folder of packages.
fn first_party_packages() -> Result<PathBuf> {
    let target = root().join("target/plugins");
    let mut build = cargo();
    build.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path", "plugins/Cargo.toml", "--target-dir"]).arg(&target);
    run(build)?;
    let packages = target.join("packages");
    for entry in std::fs::read_dir(root().join("plugins"))? {
        let dir = entry?.path();
        if !dir.join("plugin.toml").is_file() {
            continue;
        }
        let name = dir.file_name().and_then(|n| n.to_str()).context("a plugin folder name")?.to_owned();
        let package = packages.join(&name);
        std::fs::create_dir_all(&package)?;
        std::fs::copy(dir.join("plugin.toml"), package.join("plugin.toml"))?;
        let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        std::fs::copy(&wasm, package.join("plugin.wasm")).with_context(|| format!("copying {}", wasm.display()))?;
    }
    Ok(packages)
}

fn test() -> Result<()> {
    ensure_components()?;
    ensure_wasm_target()?;
    ensure_postgres()?;
    ensure_c_toolchain()?;
    ensure_chromium()?;
    // Before any build of kith, which embeds it.
    console()?;
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;
    // The first-party and test plugins are workspaces of their own (they build for wasm32-wasip2),
    // and so is the Extism plug-in of the plugin-calls benchmark (wasm32-unknown-unknown).
    for workspace in ["plugins/Cargo.toml", "tests/plugins/Cargo.toml", "bench/extism-guest/Cargo.toml"] {
        let mut fmt = cargo();
        fmt.args(["fmt", "--manifest-path", workspace, "--all", "--", "--check"]);
        run(fmt)?;
    }
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]);
    run(clippy)?;
    // The SDK's kind features and examples are off in the workspace build.
    let mut clippy = cargo();
    clippy.args(["clippy", "--package", "kith-sdk", "--all-features", "--examples", "--", "-D", "warnings"]);
    run(clippy)?;
    // The first-party plugins' logic, natively: lints and unit tests.
    let native = root().join("target/plugins-native");
    let mut clippy = cargo();
    clippy
        .args(["clippy", "--manifest-path", "plugins/Cargo.toml", "--all-targets", "--target-dir"])
        .arg(&native)
        .args(["--", "-D", "warnings"]);
    run(clippy)?;
    // The JavaScript and Python SDKs, natively: their unit tests, with fakes of the host's imports.
    ensure_node()?;
    let mut node = Command::new("node");
    node.args(["--test", "sdk/js/test/"]).current_dir(root());
    run(node)?;
    let mut python = Command::new("python3");
    python.args(["-m", "unittest", "discover", "--start-directory", "sdk/python/tests"]).current_dir(root());
    run(python)?;
    // btyd's tests, and predict's through its own fit path, fit the models on the CDNOW sample and
    // compare with the published figures.
    let mut test = cargo();
    test.args(["test", "--manifest-path", "plugins/Cargo.toml", "--target-dir"]).arg(&native).env(CDNOW_ENV, cdnow_sample()?);
    run(test)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run(test)?;
    // The binaries of the workspace, on the debug build the tests made: `--all-targets` unifies
    // features as the tests did (dev-dependencies' included), so only the binaries the tests did
    // not link are linked. `--package kith` alone resolved other features and compiled wasmtime
    // and about a hundred crates again, twice.
    let mut build = cargo();
    build.args(["build", "--workspace", "--all-targets"]);
    run(build)?;
    // The API against its own OpenAPI document.
    fuzz_built()?;
    // Every benchmark at the tiny scale: the harness works (no timing is judged).
    let python = bench_tools()?;
    let mut smoke = Command::new(root().join("target/debug/kith-bench"));
    smoke
        .args(["all", "--scale", "tiny", "--runs", "1", "--kith"])
        .arg(root().join("target/debug/kith"))
        .arg("--python")
        .arg(&python)
        .arg("--json")
        .arg(root().join("target/bench-smoke.json"));
    run(smoke)?;
    // The PostgreSQL harness (a throwaway server, two kernel nodes on one database, the COPY and
    // INSERT baselines, the CSV export); journeys are left out: each waits for a whole minute.
    let mut smoke = Command::new(root().join("target/debug/kith-bench"));
    smoke
        .args(["ingest", "segments", "api", "--backend", "postgres", "--nodes", "2", "--scale", "tiny", "--runs", "1", "--kith"])
        .arg(root().join("target/debug/kith"))
        .arg("--python")
        .arg(python)
        .arg("--json")
        .arg(root().join("target/bench-smoke-postgres.json"));
    run(smoke)
}

/// The `lifetimes` wheel, pinned, which ships the CDNOW sample the btyd and predict tests fit on.
const LIFETIMES: &str = "lifetimes==0.11.3";
/// SHA-256 of `CDNOW_sample.txt` in that wheel, so a changed file fails here rather than in a fit.
const CDNOW_SHA256: &str = "6fae10155c0b0ba363c2c386e30f77990d22328220efd862a5edd1443420d94a";
/// Where btyd's tests read the sample's path.
const CDNOW_ENV: &str = "KITH_CDNOW_SAMPLE";

/// `target/datasets/lifetimes-0.11.3/CDNOW_sample.txt`, downloaded (the wheel, once) and
/// extracted on first use; offline after that.
fn cdnow_sample() -> Result<PathBuf> {
    let dir = root().join("target/datasets").join(LIFETIMES.replace("==", "-"));
    let sample = dir.join("CDNOW_sample.txt");
    if sample.is_file() {
        return Ok(sample);
    }
    let wheel = |dir: &std::path::Path| -> Result<Option<PathBuf>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "whl") {
                return Ok(Some(path));
            }
        }
        Ok(None)
    };
    let wheel = match wheel(&dir)? {
        Some(path) => path,
        None => {
            let mut pip = Command::new("python3");
            pip.args(["-m", "pip", "download", "--quiet", LIFETIMES, "--no-deps", "--only-binary=:all:", "-d"]).arg(&dir);
            run(pip)?;
            wheel(&dir)?.with_context(|| format!("pip downloaded no wheel of {LIFETIMES} into {}", dir.display()))?
        }
    };
    // The wheel is a zip; Python's zipfile reads it without another dependency here. The file
    // is written aside and renamed, so an interrupted run leaves no half file behind.
    let extract = r#"
import hashlib, os, sys, zipfile
wheel, out, want = sys.argv[1:]
data = zipfile.ZipFile(wheel).read("lifetimes/datasets/CDNOW_sample.txt")
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"CDNOW_sample.txt in {wheel} has SHA-256 {got}, not {want}")
with open(out + ".part", "wb") as f:
    f.write(data)
os.replace(out + ".part", out)
"#;
    let mut python = Command::new("python3");
    python.args(["-c", extract]).arg(&wheel).arg(&sample).arg(CDNOW_SHA256);
    run(python)?;
    Ok(sample)
}

/// Install one of Debian's packages, updating the package lists first when they do not know it.
fn apt_install(package: &str) -> Result<()> {
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "--no-install-recommends", package]).env("DEBIAN_FRONTEND", "noninteractive");
        run(cmd)
    };
    if install().is_err() {
        let mut update = Command::new("apt-get");
        update.arg("update");
        run(update)?;
        install()?;
    }
    Ok(())
}

/// Node.js and npm, from Debian when missing: `kith plugin build` bundles and builds JavaScript plugins
/// with them (its pinned tools come from the npm registry on first use), and the JavaScript SDK's
/// tests run on Node's own test runner.
fn ensure_node() -> Result<()> {
    let works = |program: &str| Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !works("node") {
        apt_install("nodejs")?;
    }
    if !works("npm") {
        apt_install("npm")?;
    }
    // The console's build (Vite 8, rolldown) and its browser tests (playwright-core) need Node.js
    // 20.19 or later; Debian 12's own package is 18. This kind of machine comes with 20.
    let version = Command::new("node").arg("--version").output()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().trim_start_matches('v').to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (20, 19) {
        bail!("Node.js {version} is too old: the console's build and browser tests need 20.19 or later (22 LTS works)");
    }
    Ok(())
}

/// The merchant console: its npm packages as `console/package-lock.json` pins them (installed
/// again only when the lock changed), then its Vite build into `console/dist`.
fn console() -> Result<()> {
    ensure_node()?;
    let dir = root().join("console");
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    // npm writes node_modules/.package-lock.json on every install: older than the lock, the lock changed.
    let installed = modified(dir.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(dir.join("package-lock.json")) {
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir);
        run(npm)?;
    }
    // Built again only when a source is newer than the build: a new console/dist makes cargo
    // compile kith (which embeds it) and every test binary linking it again.
    let built = modified(dir.join("dist/index.html"));
    let sources = ["src", "index.html", "vite.config.js", "package-lock.json"].map(|p| newest(&dir.join(p)));
    if built.is_some() && sources.iter().all(|s| s.is_some() && *s <= built) {
        eprintln!("xtask: console/dist is up to date");
        return Ok(());
    }
    let mut build = Command::new("npm");
    build.args(["run", "build", "--silent"]).current_dir(&dir);
    run(build)
}

/// The latest modification time of a file, or of any file below a folder.
fn newest(path: &std::path::Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut latest = meta.modified().ok();
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        latest = latest.max(newest(&entry.path()));
    }
    latest
}

/// Debian's Chromium, when missing: the console's browser tests drive it headless; and a small
/// CJK font (WenQuanYi Micro Hei), without which the screenshots show the demo's Chinese names as boxes.
fn ensure_chromium() -> Result<()> {
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        apt_install("chromium")?;
    }
    if !std::path::Path::new("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc").is_file() {
        apt_install("fonts-wqy-microhei")?;
    }
    Ok(())
}

/// Debian's clang 14, lld, wasi-libc and the wasm32 compiler builtins, when missing: `kith plugin
/// build` compiles C plugins with them (kernel/kith/src/plugin/c.rs), and the C SDK's unit test runs.
fn ensure_c_toolchain() -> Result<()> {
    let file = |path: &str| std::path::Path::new(path).is_file();
    let builtins = std::fs::read_dir("/usr/lib/llvm-14/lib/clang")
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| version.path().join("lib/wasi/libclang_rt.builtins-wasm32.a").is_file());
    let needed = [
        (file("/usr/lib/llvm-14/bin/clang"), "clang-14"),
        (file("/usr/lib/llvm-14/bin/wasm-ld"), "lld-14"),
        (file("/usr/lib/wasm32-wasi/libc.a"), "wasi-libc"),
        (builtins, "libclang-rt-14-dev-wasm32"),
    ];
    for (present, package) in needed {
        if !present {
            apt_install(package)?;
        }
    }
    Ok(())
}

/// Debian's PostgreSQL server (`postgresql`, 15 on Debian 12), when no server is installed: the
/// PostgreSQL backend's tests start throwaway clusters of their own with its `initdb` and `postgres`
/// (kith_postgres::cluster), found in `/usr/lib/postgresql/N/bin` or `$KITH_PG_BINDIR`.
fn ensure_postgres() -> Result<()> {
    if std::env::var_os("KITH_PG_BINDIR").is_some() {
        return Ok(());
    }
    let installed =
        std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten().any(|version| version.path().join("bin/initdb").is_file());
    if !installed {
        apt_install("postgresql")?;
    }
    Ok(())
}

/// DuckDB's Python package, pinned, in a venv of our own.
const DUCKDB: &str = "duckdb==1.4.4";

/// What the baselines need: `wrk` (Debian) and a Python with `duckdb`; returns that Python.
fn bench_tools() -> Result<PathBuf> {
    if Command::new("wrk").arg("-v").output().is_err() {
        apt_install("wrk")?;
    }
    let venv = root().join("target/bench-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", "import duckdb"]).output().is_ok_and(|o| o.status.success());
    if !ready {
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(&venv);
        run(create)?;
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "install", "--quiet", DUCKDB]);
        run(pip)?;
    }
    Ok(python)
}

fn bench(args: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    // The console benchmark loads the console kith embeds, in Chromium; kith embeds it whatever runs.
    if args.iter().any(|a| a == "console" || a == "all") {
        ensure_chromium()?;
    }
    console()?;
    let python = bench_tools()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "kith", "--package", "kith-bench", "--package", "kith-bench-extism"]);
    run(build)?;
    let mut bench = Command::new(root().join("target/release/kith-bench"));
    bench.args(args).arg("--kith").arg(root().join("target/release/kith")).arg("--python").arg(python).current_dir(root());
    run(bench)
}

/// Schemathesis, pinned, in a venv of our own.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Seconds each key's fuzz run may take.
const FUZZ_SECONDS: u32 = 50;
/// What the fuzz run asserts: no 5xx, no answer outside its schema, no status or content type the
/// document does not declare.
const FUZZ_CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Schemathesis's `st` in `target/fuzz-venv`, installed once.
fn fuzz_tools() -> Result<PathBuf> {
    let venv = root().join("target/fuzz-venv");
    let st = venv.join("bin/st");
    let python = venv.join("bin/python");
    let pinned = SCHEMATHESIS.trim_start_matches("schemathesis==");
    let ready = Command::new(&python)
        .args(["-c", &format!("import importlib.metadata as m; assert m.version('schemathesis') == '{pinned}'")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(&venv);
        run(create)?;
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "install", "--quiet", SCHEMATHESIS]);
        run(pip)?;
    }
    Ok(st)
}

/// A free port on loopback (the kernel binds it right after).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Run `kith` with `args` on `db` and read what it prints as JSON.
fn kith_json(kith: &std::path::Path, db: &std::path::Path, args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new(kith).arg("--database").arg(db).args(args).output().with_context(|| format!("running kith {args:?}"))?;
    if !out.status.success() {
        bail!("kith {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("reading what kith {args:?} printed"))
}

/// A `kith serve` that is stopped when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        // The server may have exited already; either way it is gone after this.
        let _killed = self.0.kill();
        let _reaped = self.0.wait();
    }
}

/// Fuzz the API from its served OpenAPI document with schemathesis: a shop with customers, an
/// owner key and an analyst key, each run bounded by `FUZZ_SECONDS`.
fn fuzz() -> Result<()> {
    let mut build = cargo();
    build.args(["build", "--package", "kith"]);
    run(build)?;
    fuzz_built()
}

/// [`fuzz`] with `target/debug/kith` built already.
fn fuzz_built() -> Result<()> {
    let st = fuzz_tools()?;
    let kith = root().join("target/debug/kith");
    let dir = root().join("target/fuzz-run");
    // A fresh database each run; a missing folder is the first run.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("kith.db");
    let shop = kith_json(&kith, &db, &["admin", "create-shop", "--name", "Fuzz"])?["id"].to_string();
    let key = |role: &str| -> Result<String> {
        let created = kith_json(&kith, &db, &["admin", "create-key", "--shop", &shop, "--role", role, "--name", role])?;
        created["token"].as_str().map(str::to_owned).context("a token")
    };
    let (owner, analyst) = (key("owner")?, key("analyst")?);
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let server = Served(
        Command::new(&kith)
            .arg("--database")
            .arg(&db)
            .args(["--bind", &format!("127.0.0.1:{port}"), "serve"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting kith serve")?,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("kith serve did not listen on {port}; see {}", dir.join("serve.log").display());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Customers with personal data, so that reads have something to answer.
    let seed = format!(
        r#"import json, urllib.request
events = [{{"id": f"seed{{i}}", "type": "order.paid", "identities": [{{"kind": "phone", "value": f"1380000{{i:04d}}"}}],
  "profile": None, "order": {{"id": f"T{{i}}", "amount": 1000 + i}}}} for i in range(20)]
for e in events: e.pop("profile")
req = urllib.request.Request("{base}/v1/events", data=json.dumps({{"events": events}}).encode(),
  headers={{"Authorization": "Bearer {owner}", "Content-Type": "application/json"}})
print(urllib.request.urlopen(req).read()[:80])"#
    );
    let mut python = Command::new(root().join("target/fuzz-venv/bin/python"));
    python.args(["-c", &seed]);
    run(python)?;
    let mut failed = Vec::new();
    for (name, token) in [("owner", &owner), ("analyst", &analyst)] {
        let mut cmd = Command::new(&st);
        cmd.args(["run", &format!("{base}/openapi.json"), "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", FUZZ_CHECKS])
            .args(["--max-time", &FUZZ_SECONDS.to_string()])
            // One worker: schemathesis's workers are threads, and the Debian Python (3.11.7) can
            // fail hypothesis's own `ast.parse` under threads with "AST constructor recursion
            // depth mismatch" (CPython gh-106905), a runtime error that is not the API's.
            .args(["--max-examples", "25", "--request-timeout", "10", "--seed", "26", "--workers", "1"])
            // The event stream never ends by design; schemathesis cannot write a gzip package.
            .args(["--exclude-path", "/v1/events/stream", "--exclude-operation-id", "install_plugin"])
            .args(["--report", "junit", "--report-dir"])
            .arg(dir.join(name))
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .current_dir(&dir);
        if let Err(e) = run(cmd) {
            failed.push(format!("{name}: {e:#}"));
        }
    }
    drop(server);
    if !failed.is_empty() {
        bail!("the fuzz run found answers outside the API's contract ({}); reports in {}", failed.join("; "), dir.display());
    }
    Ok(())
}
