//! The merchant console embedded in the binary (copied and gzipped by build.rs from
//! console/dist), served by kith-api at `/`.

use std::sync::Arc;

use include_dir::{Dir, include_dir};
use kith_api::console::{Asset, Assets, Console};

static FILES: Dir<'static> = include_dir!("$OUT_DIR/console");

struct Embedded;

impl Assets for Embedded {
    fn get(&self, path: &str) -> Option<Asset> {
        let file = FILES.get_file(path)?;
        let gzip = FILES.get_file(format!("{path}.gz")).map(|f| f.contents());
        Some(Asset { body: file.contents(), gzip })
    }
}

/// The embedded console.
pub fn console() -> Console {
    Console(Arc::new(Embedded))
}
