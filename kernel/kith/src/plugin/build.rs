//! `kith plugin build`: the project's component, in `target/kith/plugin.wasm`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{Lang, Project, assets, toolchain};

#[derive(Args)]
pub struct BuildArgs {
    /// The project (default: the current folder, or the nearest above it with a plugin.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(args: BuildArgs) -> Result<PathBuf> {
    build(&Project::find(&args.dir)?)
}

/// Build the project's component; returns its path.
pub fn build(project: &Project) -> Result<PathBuf> {
    let Some(lang) = project.lang else {
        bail!(
            "{}: cannot tell the language: expected Cargo.toml (Rust), package.json (JavaScript), app.py (Python) or src/*.c (C); a component built \
             by another toolchain is tested with `kith plugin test --wasm FILE` and packed with `--no-build` from target/kith/plugin.wasm",
            project.dir.display()
        );
    };
    let started = Instant::now();
    assets::lay_out_kith(&project.dir)?;
    let out = project.out_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let wasm = project.wasm();
    let _ = std::fs::remove_file(&wasm);
    match lang {
        Lang::Rust => rust(project, &wasm)?,
        Lang::Js => js(project, &wasm)?,
        Lang::Python => python(project, &wasm)?,
        Lang::C => super::c::build(project, &wasm)?,
    }
    let bytes = std::fs::read(&wasm).with_context(|| format!("the build wrote no {}", wasm.display()))?;
    eprintln!(
        "built {} {} ({}) in {:.1} s: {} ({:.1} MB, sha256 {})",
        project.manifest.id,
        project.manifest.version,
        lang.as_str(),
        started.elapsed().as_secs_f64(),
        wasm.display(),
        bytes.len() as f64 / 1e6,
        &kith_host::sha256_hex(&bytes)[..16]
    );
    Ok(wasm)
}

/// The world a kind's component exports.
fn world(project: &Project) -> &'static str {
    project.manifest.kind.as_str()
}

/// `cargo build --release --target wasm32-wasip2`, the `cdylib` it makes copied to `wasm`.
fn rust(project: &Project, wasm: &std::path::Path) -> Result<()> {
    ensure_wasm_target(&project.dir)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--message-format", "json-render-diagnostics"])
        .current_dir(&project.dir)
        .stdout(Stdio::piped());
    // Flags meant for the host build that called us (a test, say) are not the plugin's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let mut child = command.spawn().context("starting cargo (install Rust from rustup.rs)")?;
    let mut artifact = None;
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if message["reason"] == "compiler-artifact" && message["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        {
            artifact = message["filenames"]
                .as_array()
                .and_then(|f| f.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")).map(PathBuf::from));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    let artifact = artifact.context("cargo built no cdylib: Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`")?;
    std::fs::copy(&artifact, wasm).with_context(|| format!("copying {}", artifact.display()))?;
    Ok(())
}

/// Plugins compile for wasm32-wasip2, a rustup target a fresh toolchain lacks.
fn ensure_wasm_target(project: &std::path::Path) -> Result<()> {
    // In the project: a rust-toolchain.toml there names the toolchain to check.
    let Ok(out) = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(project).output() else {
        // Without rustup the toolchain must already have the target; cargo says so if not.
        return Ok(());
    };
    if !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
        let mut add = Command::new("rustup");
        add.args(["target", "add", "wasm32-wasip2"]).current_dir(project);
        toolchain::run(add, "rustup")?;
    }
    Ok(())
}

/// `sdk/js/toolchain/build.mjs` with the pinned tools: esbuild bundles `src/index.js` (or `.ts`) with
/// the SDK into one module, componentize-qjs makes it a component with QuickJS inside.
fn js(project: &Project, _wasm: &std::path::Path) -> Result<()> {
    let script = toolchain::js_build_script()?;
    let mut node = Command::new("node");
    node.arg(script).args(["--kind", world(project)]).current_dir(&project.dir);
    toolchain::run(node, "Node.js 20 or newer")
}

/// componentize-py: the project's `app.py` with the SDK, CPython inside.
fn python(project: &Project, wasm: &std::path::Path) -> Result<()> {
    let python = toolchain::python()?;
    let mut componentize = Command::new(python);
    componentize
        .args(["-c", "import sys\nfrom componentize_py import script\nsys.argv[0] = 'componentize-py'\nsys.exit(script())"])
        .args(["-d", ".kith/wit/v0.2", "-w", world(project), "componentize", "-p", ".", "-p", ".kith/sdk/python", "app", "-o"])
        .arg(wasm)
        .current_dir(&project.dir);
    toolchain::run(componentize, "componentize-py")
}
