//! Effects without measure: the configured `tags` (another plugin's
//! namespace, invisible characters) and `count` distinct tags `t<n>` on each
//! customer, and `kv_bytes` of 64 KiB values written to its key-value space.

use kith_sdk::{Decision, Error, LogLevel, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    kv_bytes: u64,
}

struct Hostile;

impl TagRule for Hostile {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config = kith_sdk::config::get::<Config>()?;
        let value = vec![b'x'; 64 << 10];
        let mut written = 0u64;
        while written < config.kv_bytes {
            if let Err(err) = kith_sdk::kv::set(&format!("k{written}"), &value) {
                kith_sdk::log(LogLevel::Warn, &format!("kv refused after {written} bytes: {err:?}"));
                break;
            }
            written += value.len() as u64;
        }
        let mut out = Vec::new();
        for subject in &batch {
            let id = subject.customer.id;
            out.extend(config.tags.iter().map(|t| Decision::add_tag(id, t, "hostile")));
            out.extend((0..config.count).map(|i| Decision::add_tag(id, &format!("t{i}"), "flood")));
        }
        Ok(out)
    }
}

kith_sdk::export_tag_rule!(Hostile);
