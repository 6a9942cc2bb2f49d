//! Write Kith plugins in Rust.
//!
//! A plugin is a `cdylib` crate compiled for `wasm32-wasip2` that depends on
//! this crate with the feature of its kind (`tag-rule`, `scoring-model`,
//! `loyalty-scheme` or `channel-connector`), implements the kind's trait on a
//! type, and exports it with the kind's macro:
//!
//! ```
//! # #[cfg(feature = "tag-rule")] mod doc {
//! use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};
//!
//! struct Vip;
//!
//! impl TagRule for Vip {
//!     fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
//!         Ok(batch
//!             .iter()
//!             .filter(|s| s.customer.stats.total_spent >= 100_000)
//!             .map(|s| Decision::add_tag(s.customer.id, "vip", "spent 1,000 or more"))
//!             .collect())
//!     }
//! }
//!
//! kith_sdk::export_tag_rule!(Vip);
//! # }
//! ```
//!
//! The logic is plain Rust: call `Vip::evaluate` in a native unit test with
//! snapshots built by hand. Host imports ([`log`], [`config`], [`kv`],
//! [`now`], [`read_customer`]) only work inside the kernel; natively they
//! are not linked, unless the `testing` feature answers them from a fake
//! host that a fixture of `kith plugin test` fills (`testing::Fixture`). Each is behind a capability the manifest requests and the
//! shop grants; without it the call returns [`Error::AccessDenied`].
//!
//! The SDK builds against `kith:plugin@0.2.0`: a plugin built with it says
//! `api-version = "0.2.0"` in its `plugin.toml`. Moving a plugin from an SDK
//! that targeted 0.1 changes nothing else: 0.2 adds [`summaries`] and keeps
//! every 0.1 import and type as it was; the kernel goes on serving 0.1 builds.

#![deny(missing_docs)]

/// Bindings generated from the `kith:plugin@0.2.0` WIT package (the SDK targets 0.2).
#[allow(missing_docs, reason = "generated from the WIT files, whose comments are the documentation")]
pub mod bindings {
    /// The imports every plugin may use, and the shared types.
    pub mod host {
        wit_bindgen::generate!({
            path: "../wit/v0.2",
            features: ["clocks-timezone"],
            world: "host",
        });
    }

    /// One kind's world, sharing the `host` world's interfaces.
    macro_rules! kind {
        ($feature:literal, $module:ident, $world:literal, $path:literal $(, $extra:ident)?) => {
            #[cfg(feature = $feature)]
            pub mod $module {
                wit_bindgen::generate!({
                    path: "../wit/v0.2",
                    features: ["clocks-timezone"],
                    world: $world,
                    with: {
                        "kith:plugin/types@0.2.0": crate::bindings::host::kith::plugin::types,
                        "kith:plugin/log@0.2.0": crate::bindings::host::kith::plugin::log,
                        "kith:plugin/config@0.2.0": crate::bindings::host::kith::plugin::config,
                        "kith:plugin/kv@0.2.0": crate::bindings::host::kith::plugin::kv,
                        "kith:plugin/clock@0.2.0": crate::bindings::host::kith::plugin::clock,
                        "kith:plugin/customers@0.2.0": crate::bindings::host::kith::plugin::customers,
                        "kith:plugin/shop@0.2.0": crate::bindings::host::kith::plugin::shop,
                        "kith:plugin/summaries@0.2.0": crate::bindings::host::kith::plugin::summaries,
                    },
                    $($extra,)?
                    pub_export_macro: true,
                    default_bindings_module: $path,
                });
            }
        };
    }

    kind!("tag-rule", tag_rule, "tag-rule", "kith_sdk::bindings::tag_rule");
    kind!("scoring-model", scoring_model, "scoring-model", "kith_sdk::bindings::scoring_model");
    kind!("loyalty-scheme", loyalty_scheme, "loyalty-scheme", "kith_sdk::bindings::loyalty_scheme");
    // Connectors also get the `wasi:http` bindings (`generate_all`), for `kith_sdk::http`.
    kind!("channel-connector", channel_connector, "channel-connector", "kith_sdk::bindings::channel_connector", generate_all);
}

mod decisions;
#[cfg(feature = "channel-connector")]
pub mod http;
mod kinds;

pub use bindings::host::kith::plugin::types::{
    Behaviour, BehaviourKind, BuyerSummary, Customer, Decision, Delivery, Distribution, EmittedEvent, Error, Event, History,
    InboundRequest, Message, Order, OrderItem, PointsChange, Profile, Receipt, ReceiptStatus, Score, ScoreChange, ShopContext, Stats,
    Subject, Tag, TagChange, TierChange,
};
pub use kinds::*;

/// The host's imports: the component's, or natively with the `testing` feature, this thread's fake host.
mod host {
    #[cfg(any(target_arch = "wasm32", not(feature = "testing")))]
    pub use crate::bindings::host::kith::plugin::{clock, config, customers, kv, log, shop, summaries};
    #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
    pub use crate::testing::fake::{clock, config, customers, kv, log, shop, summaries};
}

#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
pub mod testing;

/// Write a log line, kept per shop and plugin (capability `log`).
///
/// Logging never fails the plugin: without the capability the line is dropped.
pub fn log(level: LogLevel, message: &str) {
    // A plugin that may not log has nowhere to report that; dropping the line is the contract.
    let _ = host::log::write(level, message);
}

/// Log levels.
pub use bindings::host::kith::plugin::log::Level as LogLevel;

/// The shop's configuration of this plugin (capability `config`).
pub mod config {
    use super::{Error, host};

    /// The configuration as JSON text.
    pub fn raw() -> Result<String, Error> {
        host::config::get()
    }

    /// The configuration deserialised; an [`Error::Invalid`] names what did not fit.
    ///
    /// ```no_run
    /// #[derive(serde::Deserialize)]
    /// struct Config { threshold: i64 }
    /// let threshold = kith_sdk::config::get::<Config>().map(|c| c.threshold).unwrap_or(100_000);
    /// ```
    pub fn get<T: serde::de::DeserializeOwned>() -> Result<T, Error> {
        let text = raw()?;
        serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("configuration: {e}")))
    }
}

/// The key-value space of this shop and plugin (capability `kv`).
///
/// Writes take effect with the call's decisions: if the call fails, its
/// writes are discarded.
pub mod kv {
    use super::{Error, host};

    /// The bytes stored under `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        host::kv::get(key)
    }

    /// Store bytes; [`Error::QuotaExceeded`] past the kernel's limits.
    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        host::kv::set(key, value)
    }

    /// Remove a key; removing a missing key succeeds.
    pub fn delete(key: &str) -> Result<(), Error> {
        host::kv::delete(key)
    }

    /// A JSON value stored under `key`.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
        match get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Invalid(format!("value of `{key}`: {e}"))),
            None => Ok(None),
        }
    }

    /// Store a value as JSON.
    pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid(format!("value of `{key}`: {e}")))?;
        set(key, &bytes)
    }
}

/// The kernel's clock in milliseconds since the Unix epoch (capability `clock`).
///
/// Prefer this, or the `now` of the [`ShopContext`], to the system clock:
/// tests of the kernel move this clock.
pub fn now() -> Result<i64, Error> {
    host::clock::now()
}

/// Any customer of the calling shop (capability `customers:read`);
/// [`Error::NotFound`] for ids of other shops.
pub fn read_customer(id: i64) -> Result<Customer, Error> {
    host::customers::read(id)
}

/// Orders (with items) and behaviours since `since` (milliseconds), newest
/// first, of up to 1,000 customers of the calling shop, in the order asked
/// (capability `customers:read`). Ids of other shops are left out.
///
/// ```no_run
/// # fn demo(batch: &[kith_sdk::Subject], ctx: &kith_sdk::ShopContext) -> Result<(), kith_sdk::Error> {
/// // A batch may hold several events of one customer: ask for each customer once.
/// let mut ids: Vec<i64> = batch.iter().map(|s| s.customer.id).collect();
/// ids.sort_unstable();
/// ids.dedup();
/// let thirty_days_ago = ctx.now - 30 * 86_400_000;
/// for history in kith_sdk::histories(&ids, thirty_days_ago)? {
///     let views = history.behaviours.iter().filter(|b| b.kind == kith_sdk::BehaviourKind::View).count();
/// }
/// # Ok(()) }
/// ```
pub fn histories(ids: &[i64], since: i64) -> Result<Vec<History>, Error> {
    host::customers::histories(ids, since)
}

/// The shop's context with its distributions over the last `window_days`
/// days (`None`: all time), e.g. for RFM over a configurable window
/// (capability `customers:read`).
pub fn shop_context(window_days: Option<u32>) -> Result<ShopContext, Error> {
    host::shop::context(window_days)
}

/// The shop's buyers summarised for models fitted over the whole shop (BG/NBD,
/// Gamma-Gamma), since `kith:plugin@0.2.0` (capability `customers:read`).
///
/// A buyer has at least one order that is paid and not fully refunded; amounts
/// are net of partial refunds; days are calendar days in the shop's time zone.
/// For the models: x = `purchase_days - 1`, tₓ = `span_days`, T = `age_days`, and
/// the average repeat purchase is `repeat_spent / x` when x > 0.
///
/// ```no_run
/// # fn demo() -> Result<(), kith_sdk::Error> {
/// let mut repeat_buyers = 0;
/// for buyer in kith_sdk::summaries::all(1000) {
///     if buyer?.purchase_days > 1 {
///         repeat_buyers += 1;
///     }
/// }
/// # Ok(()) }
/// ```
pub mod summaries {
    use super::{BuyerSummary, Error, host};

    /// Buyers on one page at most.
    pub const MAX_PAGE: u32 = 1000;

    /// Up to `limit` (1 to [`MAX_PAGE`]) buyers with an id above `after`, by id; ask
    /// for the next page with the last id of this one. A short page is the last.
    pub fn buyers(after: Option<i64>, limit: u32) -> Result<Vec<BuyerSummary>, Error> {
        host::summaries::buyers(after, limit)
    }

    /// Every buyer of the shop, by id, read `page` at a time (clamped to 1..=[`MAX_PAGE`]).
    /// An error ends the iteration after it is yielded.
    pub fn all(page: u32) -> Buyers {
        Buyers { page: page.clamp(1, MAX_PAGE), after: None, buffer: Vec::new().into_iter(), done: false }
    }

    /// The iterator of [`all`].
    #[derive(Debug)]
    pub struct Buyers {
        page: u32,
        after: Option<i64>,
        buffer: std::vec::IntoIter<BuyerSummary>,
        done: bool,
    }

    impl Iterator for Buyers {
        type Item = Result<BuyerSummary, Error>;

        fn next(&mut self) -> Option<Self::Item> {
            if let Some(buyer) = self.buffer.next() {
                return Some(Ok(buyer));
            }
            if self.done {
                return None;
            }
            match buyers(self.after, self.page) {
                Ok(page) => {
                    self.done = page.len() < self.page as usize;
                    self.after = page.last().map(|b| b.customer_id).or(self.after);
                    self.buffer = page.into_iter();
                    let next = self.buffer.next();
                    if next.is_none() {
                        self.done = true;
                    }
                    next.map(Ok)
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            }
        }
    }
}
