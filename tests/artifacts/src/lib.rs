//! The test plugins of `tests/plugins`, built from source by this crate's
//! build script: paths to their components and manifests, and packages.

use std::io::Write;

/// A plugin package of `tests/plugins`.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    pub name: &'static str,
    /// The crate's folder, with `plugin.toml`.
    pub dir: &'static str,
    /// The compiled component.
    pub wasm: &'static str,
}

impl Package {
    pub fn manifest(&self) -> String {
        std::fs::read_to_string(format!("{}/plugin.toml", self.dir)).expect("reading plugin.toml")
    }

    pub fn wasm(&self) -> Vec<u8> {
        std::fs::read(self.wasm).expect("reading the component; the build script compiles it")
    }

    /// A `.tar.gz` package of `manifest` (this plugin's own unless given) and the component.
    pub fn tar_gz_with(&self, manifest: &str) -> Vec<u8> {
        tar_gz(&[("plugin.toml", manifest.as_bytes()), ("plugin.wasm", &self.wasm())])
    }

    pub fn tar_gz(&self) -> Vec<u8> {
        self.tar_gz_with(&self.manifest())
    }
}

/// A `.tar.gz` holding the given files.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, name, *bytes).expect("writing to memory");
    }
    let mut gz = archive.into_inner().expect("finishing the archive");
    gz.flush().expect("writing to memory");
    gz.finish().expect("finishing gzip")
}

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
