//! `kith plugin pack`: the package the install API takes, checked as install checks it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{Project, build};
use crate::config::Config;

#[derive(Args)]
pub struct PackArgs {
    /// The project (default: the current folder, or the nearest above it with a plugin.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the package (default: target/kith/ID-VERSION.tar.gz).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Pack the component the last build made, without building.
    #[arg(long)]
    pub no_build: bool,
}

pub fn run(config: &Config, args: PackArgs) -> Result<PathBuf> {
    let project = Project::find(&args.dir)?;
    let (path, _) = pack(config, &project, args.out, args.no_build)?;
    Ok(path)
}

/// Build (unless `no_build`), pack and check; the package's path and bytes.
pub fn pack(config: &Config, project: &Project, out: Option<PathBuf>, no_build: bool) -> Result<(PathBuf, Vec<u8>)> {
    let wasm = if no_build { project.wasm() } else { build::build(project)? };
    let component = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let manifest = std::fs::read(project.dir.join("plugin.toml"))?;
    let bytes = tar_gz(&[("plugin.toml", &manifest), ("plugin.wasm", &component)])?;
    // What `POST /v1/plugins` checks, but the catalogue (the tag prefix of other plugins): the
    // manifest, its schema, the size, and a component that exports its kind's world in the WIT version it names.
    let package =
        kith_bus::Package::from_tar_gz(&bytes).map_err(|e| anyhow::anyhow!("the package is refused: {}: {}", e.field, e.reason))?;
    let host = kith_host::Host::new(config.host_config(Some(super::cache_root().join("wasmtime")))?)?;
    if let Err(err) = host.load(&package.manifest, &package.wasm) {
        bail!("the package is refused: {err}");
    }
    let path = out.unwrap_or_else(|| project.out_dir().join(format!("{}-{}.tar.gz", project.manifest.id, project.manifest.version)));
    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("packed {} ({:.1} MB)", path.display(), bytes.len() as f64 / 1e6);
    Ok((path, bytes))
}

fn tar_gz(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut archive = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, *bytes)?;
    }
    let mut gz = archive.into_inner()?;
    gz.flush()?;
    Ok(gz.finish()?)
}
