//! Project tasks, so that one command does all the set-up:
//!
//! - `cargo xtask demo [ARGS]`: build the first-party plugins and run the
//!   kernel on a demo shop with them enabled (`kith demo`, data in
//!   `kith-data/demo.db`); ARGS go to `kith demo`.
//! - `cargo xtask test`: formatting, lints, then every test of the workspace
//!   (which builds the test plugins of `tests/plugins` for wasm32-wasip2),
//!   then every benchmark at the tiny scale as a smoke test.
//! - `cargo xtask bench [ARGS]`: build `kith`, `kith-bench` and `kith-bench-extism` in release and
//!   run `kith-bench ARGS` (e.g. `all --scale small`), after installing what
//!   the baselines need (`wrk` from Debian, `duckdb` from PyPI in a venv).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask demo [kith demo args] | cargo xtask test | cargo xtask bench [kith-bench args]");
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
    let packages = first_party_packages()?;
    // The channel connectors need someone to send to: a stand-in provider on
    // loopback, alive as long as the demo runs.
    let provider = kith_provider::Provider::start().context("starting the provider stand-in")?;
    eprintln!("xtask: provider stand-in (webhook, SMS, e-mail) on {}", provider.url(""));
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--package", "kith", "--", "--database", "kith-data/demo.db", "demo", "--plugins"])
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
    let mut test = cargo();
    test.args(["test", "--manifest-path", "plugins/Cargo.toml", "--target-dir"]).arg(&native);
    run(test)?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    run(test)?;
    // Every benchmark at the tiny scale, on the debug builds the tests made: the harness works (no timing is judged).
    let python = bench_tools()?;
    let mut build = cargo();
    build.args(["build", "--package", "kith", "--package", "kith-bench", "--package", "kith-bench-extism"]);
    run(build)?;
    let mut smoke = Command::new(root().join("target/debug/kith-bench"));
    smoke
        .args(["all", "--scale", "tiny", "--runs", "1", "--kith"])
        .arg(root().join("target/debug/kith"))
        .arg("--python")
        .arg(python)
        .arg("--json")
        .arg(root().join("target/bench-smoke.json"));
    run(smoke)
}

/// DuckDB's Python package, pinned, in a venv of our own.
const DUCKDB: &str = "duckdb==1.4.4";

/// What the baselines need: `wrk` (Debian) and a Python with `duckdb`; returns that Python.
fn bench_tools() -> Result<PathBuf> {
    if Command::new("wrk").arg("-v").output().is_err() {
        let install = || {
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "--no-install-recommends", "wrk"]).env("DEBIAN_FRONTEND", "noninteractive");
            run(cmd)
        };
        if install().is_err() {
            let mut update = Command::new("apt-get");
            update.arg("update");
            run(update)?;
            install()?;
        }
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
    let python = bench_tools()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "kith", "--package", "kith-bench", "--package", "kith-bench-extism"]);
    run(build)?;
    let mut bench = Command::new(root().join("target/release/kith-bench"));
    bench.args(args).arg("--kith").arg(root().join("target/release/kith")).arg("--python").arg(python).current_dir(root());
    run(bench)
}
