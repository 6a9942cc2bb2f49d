//! What `kith plugin` carries inside the binary, so that a vendor needs nothing else from this
//! repository: the WIT, the SDKs of every language, the project templates and the JavaScript
//! toolchain's lockfile. `build.rs` makes cargo rebuild the binary when any of them changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use include_dir::{Dir, DirEntry, include_dir};

/// `wit/v0.2`: the `kith:plugin` version the SDKs build against.
pub static WIT: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../wit/v0.2");
/// The Rust SDK's sources (`sdk/src`); its `Cargo.toml` is [`rust_sdk_manifest`].
static SDK_RUST: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/src");
static SDK_JS: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/js/src");
static SDK_PYTHON: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/python/kith_sdk");
/// The C SDK: `kith.h`, `kith.c` and (channel connectors) `kith_http.c`.
static SDK_C: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/c/src");
pub static TEMPLATES: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/templates");
/// `package.json` and `package-lock.json` of the JavaScript build tools.
pub static JS_TOOLCHAIN: Dir = include_dir!("$CARGO_MANIFEST_DIR/../../sdk/js/toolchain");

/// The `kith:plugin` version projects are built against.
pub const API_VERSION: &str = "0.2.0";
/// wit-bindgen as the workspace pins it (Cargo.lock): the Rust SDK is compiled with this one.
const WIT_BINDGEN: &str = "=0.46.0";

/// Folders never copied out (caches a developer's run may leave in the source tree).
fn skipped(path: &Path) -> bool {
    path.components().any(|c| matches!(c.as_os_str().to_str(), Some("__pycache__" | "node_modules")))
}

/// Write every file of `dir` under `to` (paths relative to `dir`), passing text files through `edit`.
pub fn write_dir(dir: &Dir, to: &Path, edit: &dyn Fn(&str) -> String) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    let mut written = Vec::new();
    for file in files {
        let relative = file.path().strip_prefix(dir.path()).unwrap_or(file.path());
        if skipped(relative) {
            continue;
        }
        let path = to.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let bytes = match file.contents_utf8() {
            Some(text) => edit(text).into_bytes(),
            None => file.contents().to_vec(),
        };
        write_if_changed(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// Every file below `dir`; embedded paths are relative to the `include_dir!` root at any depth.
fn collect<'a>(dir: &'a Dir<'a>, files: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => collect(sub, files),
            DirEntry::File(file) => files.push(file),
        }
    }
}

/// `KITH_SDK_SOURCE`: a checkout of Kith's repository whose WIT, SDKs and templates `kith plugin`
/// uses instead of the copies in this binary (for working on the SDKs themselves).
pub fn source() -> Option<PathBuf> {
    std::env::var_os("KITH_SDK_SOURCE").map(PathBuf::from)
}

/// Write the files of `dir` (embedded, or under `KITH_SDK_SOURCE` at `relative` when that is set) to `to`.
pub fn write_from(dir: &Dir, relative: &str, to: &Path, edit: &dyn Fn(&str) -> String) -> Result<Vec<PathBuf>> {
    match source() {
        Some(root) => copy_tree(&root.join(relative), to, edit),
        None => write_dir(dir, to, edit),
    }
}

fn copy_tree(from: &Path, to: &Path, edit: &dyn Fn(&str) -> String) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if skipped(Path::new(&entry.file_name())) {
            continue;
        }
        let target = to.join(entry.file_name());
        if path.is_dir() {
            written.extend(copy_tree(&path, &target, edit)?);
        } else {
            std::fs::create_dir_all(to)?;
            let bytes = std::fs::read(&path)?;
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => edit(&text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            write_if_changed(&target, &bytes)?;
            written.push(target);
        }
    }
    Ok(written)
}

/// A file's new contents, written only when they differ: cargo then sees an unchanged SDK as
/// unchanged and does not compile it again.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Lay out `.kith/` in a project: the WIT and every language's SDK as this kernel ships them.
/// Every build does it, so a project built with a newer `kith` gets its SDK: files that changed
/// are written, files this kith does not ship are removed, the others are left as they are.
pub fn lay_out_kith(project: &Path) -> Result<()> {
    let kith = project.join(".kith");
    let same = |text: &str| text.to_owned();
    let mut written = Vec::new();
    written.extend(write_from(&WIT, "wit/v0.2", &kith.join("wit/v0.2"), &same)?);
    written.extend(write_from(&SDK_RUST, "sdk/src", &kith.join("kith-sdk/src"), &same)?);
    written.extend(write_from(&SDK_JS, "sdk/js/src", &kith.join("sdk/js"), &same)?);
    written.extend(write_from(&SDK_PYTHON, "sdk/python/kith_sdk", &kith.join("sdk/python/kith_sdk"), &same)?);
    written.extend(write_from(&SDK_C, "sdk/c/src", &kith.join("sdk/c"), &same)?);
    let manifest = kith.join("kith-sdk/Cargo.toml");
    write_if_changed(&manifest, rust_sdk_manifest().as_bytes())?;
    let readme = kith.join("README.md");
    let text = format!(
        "Written by `kith plugin` {} (kith:plugin@{API_VERSION}); rewritten by every `kith plugin build`. Do not edit.\n",
        env!("CARGO_PKG_VERSION")
    );
    write_if_changed(&readme, text.as_bytes())?;
    written.extend([manifest, readme]);
    remove_others(&kith, &written.into_iter().collect())
}

/// Remove the files below `dir` that are not `kept` (but the caches tools write there).
fn remove_others(dir: &Path, kept: &std::collections::HashSet<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if skipped(Path::new(path.file_name().unwrap_or_default())) {
            continue;
        }
        if path.is_dir() {
            remove_others(&path, kept)?;
        } else if !kept.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// The Rust SDK's `Cargo.toml` outside the kernel's workspace: the SDK finds the WIT at `../wit/v0.2`.
fn rust_sdk_manifest() -> String {
    format!(
        r#"[package]
name = "kith-sdk"
description = "Write Kith plugins in Rust (kith:plugin@{API_VERSION})"
version = "{version}"
edition = "2024"
license = "Apache-2.0"
publish = false

[features]
tag-rule = []
scoring-model = []
loyalty-scheme = []
channel-connector = []
testing = []

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
wit-bindgen = "{WIT_BINDGEN}"
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}
