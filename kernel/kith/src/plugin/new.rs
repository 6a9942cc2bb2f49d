//! `kith plugin new`: a project from a template.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use kith_domain::plugin::{Kind, Manifest};

use super::{Lang, assets};

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's id: lowercase letters, digits and dashes, e.g. `big-spender`; also the project's folder name.
    pub id: String,
    /// What the plugin is.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Kind,
    /// The language to write it in.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Where to create the project (default: ./ID); it must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn parse_kind(text: &str) -> Result<Kind, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| "expected tag-rule, scoring-model, loyalty-scheme or channel-connector".to_owned())
}

pub fn run(args: NewArgs) -> Result<()> {
    let id = args.id.trim();
    if !kith_domain::plugin::valid_plugin_id(id) {
        bail!(
            "`{id}` is not a plugin id: use lowercase letters, digits and dashes, starting with a letter, at most {} characters",
            kith_domain::plugin::MAX_ID_LEN
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(id));
    if dir.exists() && std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let template = format!("{}/{}", args.lang.as_str(), args.kind.as_str());
    let Some(files) = assets::TEMPLATES.get_dir(&template) else {
        bail!("this kith has no template for a {} in {}", args.kind.as_str(), args.lang.as_str());
    };
    let crate_name = id.replace('-', "_");
    let edit =
        |text: &str| text.replace("{{id}}", id).replace("{{crate}}", &crate_name).replace("{{kith_version}}", env!("CARGO_PKG_VERSION"));
    let written = assets::write_from(files, &format!("sdk/templates/{template}"), &dir, &edit)?;
    // The template's manifest must be one the kernel installs: check it as install would.
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).context("the template has no plugin.toml")?;
    Manifest::parse(&manifest).map_err(|e| anyhow::anyhow!("the template's plugin.toml is refused: {}: {}", e.field, e.reason))?;
    assets::lay_out_kith(&dir)?;
    println!(
        "created {} ({} in {}, kith:plugin@{}), {} files:",
        dir.display(),
        args.kind.as_str(),
        args.lang.as_str(),
        assets::API_VERSION,
        written.len()
    );
    for path in &written {
        println!("  {}", path.strip_prefix(&dir).unwrap_or(path).display());
    }
    println!("next:\n  cd {}\n  kith plugin build\n  kith plugin test\n  kith plugin pack", dir.display());
    Ok(())
}
