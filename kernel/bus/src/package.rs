//! Plugin packages: `plugin.toml` and `plugin.wasm`, as a folder or a `.tar.gz`.

use std::io::Read;
use std::path::Path;

use kith_domain::FieldError;
use kith_domain::plugin::{MAX_MANIFEST_BYTES, Manifest};

/// Most bytes a package may hold once unpacked.
pub const MAX_PACKAGE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub wasm: Vec<u8>,
}

impl Package {
    fn new(manifest: Option<String>, wasm: Option<Vec<u8>>) -> Result<Package, FieldError> {
        let manifest = manifest.ok_or_else(|| FieldError::new("package", "plugin.toml is missing"))?;
        if manifest.len() > MAX_MANIFEST_BYTES {
            return Err(FieldError::new("plugin.toml", format!("must be at most {MAX_MANIFEST_BYTES} bytes")));
        }
        let wasm = wasm.ok_or_else(|| FieldError::new("package", "plugin.wasm is missing"))?;
        let manifest = Manifest::parse(&manifest).map_err(|e| e.within("plugin.toml"))?;
        if let Some(schema) = &manifest.config_schema
            && let Err(err) = jsonschema::meta::validate(schema)
        {
            return Err(FieldError::new("plugin.toml.config-schema", format!("not a valid JSON Schema: {err}")));
        }
        Ok(Package { manifest, wasm })
    }

    /// A gzip-compressed tar holding `plugin.toml` and `plugin.wasm`, at its
    /// root or in one folder; other files are ignored.
    pub fn from_tar_gz(bytes: &[u8]) -> Result<Package, FieldError> {
        let refused = |e: std::io::Error| FieldError::new("package", format!("not a readable .tar.gz: {e}"));
        let decoder = flate2::read::GzDecoder::new(bytes).take(MAX_PACKAGE_BYTES + 1);
        let mut archive = tar::Archive::new(decoder);
        let (mut manifest, mut wasm) = (None, None);
        let mut total = 0u64;
        for entry in archive.entries().map_err(refused)? {
            let mut entry = entry.map_err(refused)?;
            total += entry.size();
            if total > MAX_PACKAGE_BYTES {
                return Err(FieldError::new("package", format!("unpacks to more than {MAX_PACKAGE_BYTES} bytes")));
            }
            let path = entry.path().map_err(refused)?.into_owned();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if path.components().count() > 2 {
                continue;
            }
            match name.as_str() {
                "plugin.toml" => {
                    // One byte past the cap is enough to refuse it.
                    let mut bytes = Vec::new();
                    entry.take(MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(refused)?;
                    if bytes.len() > MAX_MANIFEST_BYTES {
                        return Err(FieldError::new("plugin.toml", format!("must be at most {MAX_MANIFEST_BYTES} bytes")));
                    }
                    let text = String::from_utf8(bytes).map_err(|e| FieldError::new("plugin.toml", format!("not UTF-8 text: {e}")))?;
                    manifest = Some(text);
                }
                "plugin.wasm" => {
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).map_err(refused)?;
                    wasm = Some(bytes);
                }
                _ => {}
            }
        }
        Package::new(manifest, wasm)
    }

    /// A folder with `plugin.toml` and `plugin.wasm`, or a `.tar.gz` file.
    pub fn from_path(path: &Path) -> Result<Package, FieldError> {
        let unreadable = |e: std::io::Error| FieldError::new("package", format!("{}: {e}", path.display()));
        if path.is_dir() {
            let manifest = std::fs::read_to_string(path.join("plugin.toml")).ok();
            let wasm = std::fs::read(path.join("plugin.wasm")).ok();
            Package::new(manifest, wasm)
        } else {
            Package::from_tar_gz(&std::fs::read(path).map_err(unreadable)?)
        }
    }
}
