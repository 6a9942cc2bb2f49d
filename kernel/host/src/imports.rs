//! The `kith:plugin` imports, implemented once for the newest version (0.2;
//! `v0_1.rs` serves 0.1 on top of them). Each checks its capability first; a
//! missing grant, an unknown customer or a full quota is an `error` value the
//! guest can handle, never a trap.

use kith_domain::plugin::{Capability, LogLevel, MAX_HISTORY_IDS, MAX_SUMMARIES_PAGE};
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::v0_2::{clock, config, customers, kv, log, shop, summaries, types};
use crate::convert;
use crate::state::State;

pub(crate) type Res<T> = wasmtime::Result<Result<T, types::Error>>;

fn denied(cap: Capability) -> types::Error {
    types::Error::AccessDenied(format!("capability `{cap}` is not granted"))
}

/// A storage failure is the kernel's, not the guest's: the delivery fails
/// and is retried, and the guest sees `failed`.
fn unavailable(state: &State, err: anyhow::Error) -> types::Error {
    tracing::warn!(plugin = %state.plugin_id, shop = state.shop_id, "plugin host import failed: {err:#}");
    types::Error::Failed("the kernel's storage is unavailable".into())
}

pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    types::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    log::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    config::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    kv::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    clock::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    customers::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    shop::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    summaries::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    Ok(())
}

impl types::Host for State {}

impl log::Host for State {
    fn write(&mut self, level: log::Level, message: String) -> Res<()> {
        if !self.granted(Capability::Log) {
            return Ok(Err(denied(Capability::Log)));
        }
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.log(level, &message);
        Ok(Ok(()))
    }
}

impl config::Host for State {
    fn get(&mut self) -> Res<String> {
        if !self.granted(Capability::Config) {
            return Ok(Err(denied(Capability::Config)));
        }
        Ok(Ok(self.config.clone()))
    }
}

impl kv::Host for State {
    fn get(&mut self, key: String) -> Res<Option<Vec<u8>>> {
        if !self.granted(Capability::Kv) {
            return Ok(Err(denied(Capability::Kv)));
        }
        Ok(self.kv_get(&key).map_err(|e| unavailable(self, e)))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Res<()> {
        self.put(key, Some(value))
    }

    fn delete(&mut self, key: String) -> Res<()> {
        self.put(key, None)
    }
}

impl State {
    fn put(&mut self, key: String, value: Option<Vec<u8>>) -> Res<()> {
        if !self.granted(Capability::Kv) {
            return Ok(Err(denied(Capability::Kv)));
        }
        Ok(match self.kv_put(&key, value) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(quota)) => Err(types::Error::QuotaExceeded(quota)),
            Err(e) => Err(unavailable(self, e)),
        })
    }
}

impl shop::Host for State {
    fn context(&mut self, window_days: Option<u32>) -> Res<types::ShopContext> {
        if !self.granted(Capability::CustomersRead) {
            return Ok(Err(denied(Capability::CustomersRead)));
        }
        if window_days == Some(0) {
            return Ok(Err(types::Error::Invalid("a window is at least one day".into())));
        }
        Ok(match self.services.shop_context(window_days) {
            Ok(ctx) => Ok(convert::context(&ctx)),
            Err(e) => Err(unavailable(self, e)),
        })
    }
}

impl clock::Host for State {
    fn now(&mut self) -> Res<i64> {
        if !self.granted(Capability::Clock) {
            return Ok(Err(denied(Capability::Clock)));
        }
        Ok(Ok(self.now_ms))
    }
}

impl customers::Host for State {
    fn read(&mut self, id: i64) -> Res<types::Customer> {
        if !self.granted(Capability::CustomersRead) {
            return Ok(Err(denied(Capability::CustomersRead)));
        }
        Ok(match self.services.read_customer(id) {
            Ok(Some(customer)) => Ok(convert::customer(customer)),
            // Another shop's customer is indistinguishable from no customer.
            Ok(None) => Err(types::Error::NotFound(format!("customer {id}"))),
            Err(e) => Err(unavailable(self, e)),
        })
    }

    fn histories(&mut self, ids: Vec<i64>, since: i64) -> Res<Vec<types::History>> {
        if !self.granted(Capability::CustomersRead) {
            return Ok(Err(denied(Capability::CustomersRead)));
        }
        if ids.len() > MAX_HISTORY_IDS {
            return Ok(Err(types::Error::Invalid(format!("{} ids; at most {MAX_HISTORY_IDS} per call", ids.len()))));
        }
        Ok(match self.services.histories(&ids, since) {
            Ok(histories) => Ok(histories.into_iter().map(convert::history).collect()),
            Err(e) => Err(unavailable(self, e)),
        })
    }
}

impl summaries::Host for State {
    fn buyers(&mut self, after: Option<i64>, limit: u32) -> Res<Vec<types::BuyerSummary>> {
        if !self.granted(Capability::CustomersRead) {
            return Ok(Err(denied(Capability::CustomersRead)));
        }
        if limit == 0 || limit as usize > MAX_SUMMARIES_PAGE {
            return Ok(Err(types::Error::Invalid(format!("limit {limit}; a page holds 1 to {MAX_SUMMARIES_PAGE} buyers"))));
        }
        Ok(match self.services.buyers(after, limit as usize, self.now_ms) {
            Ok(page) => Ok(page.into_iter().map(convert::buyer_summary).collect()),
            Err(e) => Err(unavailable(self, e)),
        })
    }
}
