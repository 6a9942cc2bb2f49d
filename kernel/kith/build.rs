//! The `kith plugin` commands embed the WIT, the SDKs and the templates (see src/plugin/assets.rs):
//! rebuild when a file is added to them, which `include_dir!` alone does not notice.
//!
//! The merchant console (console/, built by Vite into console/dist by `cargo xtask demo` and
//! `cargo xtask test`) is copied into `$OUT_DIR/console` with a gzipped copy of each text file
//! beside it, and embedded from there (src/console.rs). Without a build, a page saying how to
//! make one stands in for it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    for dir in [
        "../../wit/v0.2",
        "../../sdk/src",
        "../../sdk/js/src",
        "../../sdk/js/toolchain",
        "../../sdk/python/kith_sdk",
        "../../sdk/c/src",
        "../../sdk/templates",
        "../../console/dist",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("console");
    if out.exists() {
        fs::remove_dir_all(&out).expect("clearing the console's copy");
    }
    fs::create_dir_all(&out).expect("creating the console's copy");
    let dist = Path::new("../../console/dist");
    if dist.join("index.html").is_file() {
        copy(dist, &out);
    } else {
        fs::write(out.join("index.html"), PLACEHOLDER).expect("writing the console's placeholder");
        println!(
            "cargo:warning=console/dist is missing: this kith serves a placeholder at / (build the console with `cargo xtask console`)"
        );
    }
}

const PLACEHOLDER: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Kith</title></head><body>\
<h1>Kith</h1><p>This kith binary was built without the merchant console. Build it with \
<code>cargo xtask console</code> (or <code>cargo xtask demo</code>), which runs Vite in <code>console/</code>, \
then build kith again. The API is at <a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>\n";

/// Copy `from` into `to`, with `<file>.gz` beside each text file.
fn copy(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("reading console/dist") {
        let entry = entry.expect("reading console/dist");
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            fs::create_dir_all(&target).expect("copying console/dist");
            copy(&path, &target);
            continue;
        }
        let bytes = fs::read(&path).expect("reading a file of console/dist");
        fs::write(&target, &bytes).expect("copying a file of console/dist");
        let text = matches!(path.extension().and_then(|e| e.to_str()), Some("html" | "js" | "mjs" | "css" | "svg" | "json" | "txt"));
        if text {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&bytes).expect("gzipping");
            let gz = gz.finish().expect("gzipping");
            let mut name = target.into_os_string();
            name.push(".gz");
            fs::write(name, gz).expect("writing a gzipped file");
        }
    }
}
