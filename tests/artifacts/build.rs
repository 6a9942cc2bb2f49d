//! Compile every crate of `tests/plugins` and of `plugins` (the first-party
//! plugins) to wasm32-wasip2 components, in target directories of their own
//! (the outer cargo holds the lock of ours), build the Python plugins of
//! `tests/plugins-python`, and the Extism baseline of the plugin-calls
//! benchmark (`bench/extism-guest`, a core module for wasm32-unknown-unknown),
//! and write their paths to `$OUT_DIR/plugins.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Extism plug-ins are core modules.
const EXTISM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().and_then(Path::parent).expect("tests/artifacts sits two levels below the repository").to_path_buf();
    let guests = root.join("tests/plugins");
    for watched in ["tests/plugins", "tests/plugins-python", "plugins", "sdk", "wit", "bench/extism-guest"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_root = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target_dir = target_root.join("guests");

    ensure_target(TARGET);
    ensure_target(EXTISM_TARGET);
    let mut out = String::new();
    for (workspace, into, shown) in
        [(guests.clone(), target_dir.clone(), "tests/plugins"), (root.join("plugins"), target_root.join("plugins"), "plugins")]
    {
        build_workspace(&workspace, &into, TARGET);
        for name in plugin_dirs(&workspace) {
            let wasm = into.join(TARGET).join("release").join(format!("{}.wasm", name.replace('-', "_")));
            out.push_str(&constant(shown, &name, &workspace.join(&name), &wasm));
        }
    }

    let python = root.join("tests/plugins-python");
    let names = plugin_dirs(&python);
    if !names.is_empty() {
        let componentize = componentize_py(&target_dir);
        for name in names {
            let dir = python.join(&name);
            let wasm = target_dir.join("python").join(format!("{name}.wasm"));
            std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
            let status = Command::new(&componentize)
                .arg("-d")
                .arg(root.join("wit/v0.1"))
                .args(["-w", "tag-rule", "componentize", "-p"])
                .arg(&dir)
                .arg("app")
                .arg("-o")
                .arg(&wasm)
                .status()
                .expect("running componentize-py");
            assert!(status.success(), "componentize-py failed for tests/plugins-python/{name}");
            out.push_str(&constant("tests/plugins-python", &name, &dir, &wasm));
        }
    }
    let extism = target_root.join("extism-guest");
    build_workspace(&root.join("bench/extism-guest"), &extism, EXTISM_TARGET);
    let wasm = extism.join(EXTISM_TARGET).join("release/high_value_extism.wasm");
    out.push_str(&format!(
        "/// `bench/extism-guest`: plugins/high-value's rule as an Extism plug-in.\npub const EXTISM_HIGH_VALUE: &str = {:?};\n",
        wasm.display().to_string()
    ));
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins.rs"), out).unwrap();
}

/// `cargo build --release --target <target>` of a plugin workspace into `target_dir`.
fn build_workspace(workspace: &Path, target_dir: &Path, target: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", target, "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's flags are for the host; the guests get their own.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        build.env_remove(var);
    }
    let status = build.status().expect("running cargo for the plugins");
    assert!(status.success(), "building {} for {target} failed", workspace.display());
}

/// Folders of `parent` holding a `plugin.toml`, sorted.
fn plugin_dirs(parent: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("plugin.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn constant(parent: &str, name: &str, dir: &Path, wasm: &Path) -> String {
    format!(
        "/// `{parent}/{name}`.\npub const {constant}: Package = Package {{ name: {name:?}, dir: {dir:?}, wasm: {wasm:?} }};\n",
        constant = name.to_uppercase().replace('-', "_"),
        dir = dir.display().to_string(),
        wasm = wasm.display().to_string(),
    )
}

/// The pinned componentize-py, installed from PyPI into a virtual environment under the target directory.
const COMPONENTIZE_PY: &str = "0.25.1";

fn componentize_py(target_dir: &Path) -> PathBuf {
    let venv = target_dir.join("python-venv");
    let tool = venv.join("bin/componentize-py");
    let installed = Command::new(&tool).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if installed.as_deref().map(str::trim) != Some(&format!("componentize-py {COMPONENTIZE_PY}")) {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&python).args(["-m", "venv"]).arg(&venv).status().expect("running python3 -m venv");
        assert!(status.success(), "creating a Python virtual environment failed");
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", &format!("componentize-py=={COMPONENTIZE_PY}")])
            .status()
            .expect("running pip");
        assert!(status.success(), "pip install componentize-py=={COMPONENTIZE_PY} failed");
    }
    tool
}

/// Add the target through rustup when it is missing: a fresh machine needs
/// nothing but the README's test command.
fn ensure_target(target: &str) {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == target) => {}
        Ok(_) => {
            let status = Command::new("rustup").args(["target", "add", target]).status().expect("running rustup");
            assert!(status.success(), "rustup target add {target} failed");
        }
        // Without rustup the toolchain must already have the target; cargo says so if not.
        Err(_) => {}
    }
}
