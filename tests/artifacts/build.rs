//! Compile every crate of `tests/plugins` to a wasm32-wasip2 component, in
//! a target directory of its own (the outer cargo holds the lock of ours),
//! and write their paths to `$OUT_DIR/plugins.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().and_then(Path::parent).expect("tests/artifacts sits two levels below the repository").to_path_buf();
    let guests = root.join("tests/plugins");
    for watched in ["tests/plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guests");

    ensure_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
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
    let status = build.status().expect("running cargo for the test plugins");
    assert!(status.success(), "building tests/plugins for {TARGET} failed");

    let mut names: Vec<String> = std::fs::read_dir(&guests)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("plugin.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        let constant = name.to_uppercase().replace('-', "_");
        let wasm = target_dir.join(TARGET).join("release").join(format!("{}.wasm", name.replace('-', "_")));
        out.push_str(&format!(
            "/// `tests/plugins/{name}`.\npub const {constant}: Package = Package {{ name: {name:?}, dir: {dir:?}, wasm: {wasm:?} }};\n",
            dir = guests.join(&name).display().to_string(),
            wasm = wasm.display().to_string(),
        ));
    }
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("plugins.rs"), out).unwrap();
}

/// Add the target through rustup when it is missing: a fresh machine needs
/// nothing but the README's test command.
fn ensure_target() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) => {}
        Ok(_) => {
            let status = Command::new("rustup").args(["target", "add", TARGET]).status().expect("running rustup");
            assert!(status.success(), "rustup target add {TARGET} failed");
        }
        // Without rustup the toolchain must already have the target; cargo says so if not.
        Err(_) => {}
    }
}
