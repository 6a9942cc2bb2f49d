//! Project tasks, so that one command does all the set-up:
//!
//! - `cargo xtask demo [ARGS]`: build the first-party plugins and run the
//!   kernel on a demo shop with them enabled (`kith demo`, data in
//!   `kith-data/demo.db`); ARGS go to `kith demo`.
//! - `cargo xtask test`: formatting, lints, then every test of the workspace
//!   (which builds the test plugins of `tests/plugins` for wasm32-wasip2).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(),
        _ => {
            eprintln!("usage: cargo xtask demo [kith demo args] | cargo xtask test");
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
    // The first-party and test plugins are workspaces of their own (they build for wasm32-wasip2).
    for workspace in ["plugins/Cargo.toml", "tests/plugins/Cargo.toml"] {
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
    run(test)
}
