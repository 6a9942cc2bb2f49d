//! Sleeps in a blocking WASI call (`wasi:clocks` and `wasi:io/poll`), where no
//! wasm runs for the epoch deadline to interrupt: an hour, or `sleep_ms` of
//! the configuration; then tags each customer `slept`. With `init_sleep_ms`, it
//! first sleeps that long in `_initialize`, which runs at instantiation.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    #[serde(default = "an_hour")]
    sleep_ms: u64,
    #[serde(default)]
    init_sleep_ms: u64,
}

fn an_hour() -> u64 {
    3_600_000
}

/// A module's `_initialize` is the component's start: it runs at instantiation, before
/// any export is called.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    if let Ok(config) = kith_sdk::config::get::<Config>()
        && config.init_sleep_ms > 0
    {
        std::thread::sleep(std::time::Duration::from_millis(config.init_sleep_ms));
    }
}

struct Hostile;

impl TagRule for Hostile {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config = kith_sdk::config::get::<Config>()?;
        std::thread::sleep(std::time::Duration::from_millis(config.sleep_ms));
        Ok(batch.iter().map(|s| Decision::add_tag(s.customer.id, "slept", "woke up")).collect())
    }
}

kith_sdk::export_tag_rule!(Hostile);
