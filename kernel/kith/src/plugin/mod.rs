//! `kith plugin`: a vendor's workflow from a new project to a plugin installed in a shop.
//!
//! - `new` lays out a project from a template (`sdk/templates/<lang>/<kind>`, embedded in this binary);
//! - `build` compiles it into `target/kith/plugin.wasm` with the language's pinned toolchain, installed on first use;
//! - `test` runs the component in the kernel's own plugin host, with the kernel's limits, against fixtures;
//! - `pack` writes the `.tar.gz` the install API takes, checked as install checks it;
//! - `publish` installs it into a running kernel, and enables it in a shop.

mod assets;
mod build;
mod c;
mod fixture;
mod new;
mod pack;
mod publish;
mod test;
mod toolchain;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use kith_domain::plugin::Manifest;

use crate::config::Config;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Create a plugin project from a template: manifest, source, a passing fixture, a README.
    New(new::NewArgs),
    /// Build the project's component into target/kith/plugin.wasm.
    Build(build::BuildArgs),
    /// Run the component in the kernel's plugin host against fixtures (fixtures/*.json by default) and check what they expect.
    Test(test::TestArgs),
    /// Build and write the package the install API takes (target/kith/ID-VERSION.tar.gz), checked as install checks it.
    Pack(pack::PackArgs),
    /// Pack, install into a running kernel with an admin key, and optionally enable in a shop.
    Publish(publish::PublishArgs),
}

pub fn run(config: &Config, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args).map(|_| ()),
        PluginCommand::Test(args) => test::run(config, args),
        PluginCommand::Pack(args) => pack::run(config, args).map(|_| ()),
        PluginCommand::Publish(args) => publish::run(config, args),
    }
}

/// The languages a project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
    C,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::C => "c",
        }
    }
}

/// A plugin project: a folder with `plugin.toml` and the sources of one language.
pub struct Project {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// `None` for a component built by another toolchain: it can be tested (`--wasm`) and
    /// packed or published (`--no-build`), not built.
    pub lang: Option<Lang>,
}

impl Project {
    /// The project in `dir` or the nearest folder above it that holds a `plugin.toml`.
    pub fn find(dir: &Path) -> Result<Project> {
        let start = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        let dir = start
            .ancestors()
            .find(|d| d.join("plugin.toml").is_file())
            .with_context(|| {
                format!("no plugin.toml in {} or a folder above it: create a project with `kith plugin new`", start.display())
            })?
            .to_path_buf();
        let text =
            std::fs::read_to_string(dir.join("plugin.toml")).with_context(|| format!("reading {}", dir.join("plugin.toml").display()))?;
        let manifest =
            Manifest::parse(&text).map_err(|e| anyhow::anyhow!("{}: {}: {}", dir.join("plugin.toml").display(), e.field, e.reason))?;
        let lang = if dir.join("Cargo.toml").is_file() {
            Some(Lang::Rust)
        } else if dir.join("package.json").is_file() {
            Some(Lang::Js)
        } else if dir.join("app.py").is_file() {
            Some(Lang::Python)
        } else if has_c_sources(&dir.join("src")) {
            Some(Lang::C)
        } else {
            None
        };
        Ok(Project { dir, manifest, lang })
    }

    /// Where builds put their output: `target/kith/`.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.join("target/kith")
    }

    pub fn wasm(&self) -> PathBuf {
        self.out_dir().join("plugin.wasm")
    }
}

/// A C project: `.c` files in `src/`.
fn has_c_sources(src: &Path) -> bool {
    c::sources(src).is_ok_and(|found| !found.is_empty())
}

/// Where `kith plugin` keeps toolchains and compiled components: `$KITH_CACHE`, else
/// `$XDG_CACHE_HOME/kith`, else `~/.cache/kith`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KITH_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("kith");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/kith"),
        None => std::env::temp_dir().join("kith-cache"),
    }
}
