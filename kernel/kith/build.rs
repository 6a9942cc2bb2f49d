//! The `kith plugin` commands embed the WIT, the SDKs and the templates (see src/plugin/assets.rs):
//! rebuild when a file is added to them, which `include_dir!` alone does not notice.

fn main() {
    for dir in [
        "../../wit/v0.2",
        "../../sdk/src",
        "../../sdk/js/src",
        "../../sdk/js/toolchain",
        "../../sdk/python/kith_sdk",
        "../../sdk/c/src",
        "../../sdk/templates",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
