//! `kith:plugin@0.1.0`, served as a thin shim onto 0.2: its imports convert
//! their arguments up to the 0.2 types and delegate to the one implementation
//! (`imports.rs`), converting the answer down; its exports are called with
//! arguments converted down and their results converted up. 0.2 only adds to
//! 0.1 (`summaries`), so every 0.1 type has a 0.2 twin of the same shape.

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{v0_1 as old, v0_2 as new};
use crate::imports::Res;
use crate::state::State;

pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    old::types::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::log::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::config::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::kv::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::clock::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::customers::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    old::shop::add_to_linker::<State, HasSelf<State>>(linker, |s| s)?;
    Ok(())
}

/// A conversion between the twin types of two versions.
pub(crate) trait To<T> {
    fn to(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl To<$t> for $t {
            fn to(self) -> $t {
                self
            }
        }
    )*};
}
same!((), i64, u32, u64, f64, bool, String, u8);

impl<A: To<B>, B> To<Option<B>> for Option<A> {
    fn to(self) -> Option<B> {
        self.map(To::to)
    }
}

impl<A: To<B>, B> To<Vec<B>> for Vec<A> {
    fn to(self) -> Vec<B> {
        self.into_iter().map(To::to).collect()
    }
}

impl<A: To<C>, B: To<D>, C, D> To<(C, D)> for (A, B) {
    fn to(self) -> (C, D) {
        (self.0.to(), self.1.to())
    }
}

impl<A: To<C>, B: To<D>, C, D> To<Result<C, D>> for Result<A, B> {
    fn to(self) -> Result<C, D> {
        self.map(To::to).map_err(To::to)
    }
}

/// A record of the same fields in both versions.
macro_rules! record {
    ($from:ident => $to:ident :: $name:ident { $($field:ident),* $(,)? }) => {
        impl To<$to::types::$name> for $from::types::$name {
            fn to(self) -> $to::types::$name {
                $to::types::$name { $($field: self.$field.to()),* }
            }
        }
    };
}

/// A variant (or enum, with no payloads) of the same cases in both versions.
macro_rules! variant {
    ($from:ident => $to:ident :: $name:ident { $($case:ident),* $(,)? } $({ $($unit:ident),* $(,)? })?) => {
        impl To<$to::types::$name> for $from::types::$name {
            fn to(self) -> $to::types::$name {
                match self {
                    $($from::types::$name::$case(v) => $to::types::$name::$case(v.to()),)*
                    $($($from::types::$name::$unit => $to::types::$name::$unit,)*)?
                }
            }
        }
    };
}

// Both ways.
variant!(new => old::Error { AccessDenied, NotFound, QuotaExceeded, Invalid, Failed });
variant!(old => new::Error { AccessDenied, NotFound, QuotaExceeded, Invalid, Failed });

// Down: what the kernel hands a 0.1 plugin.
record!(new => old::Profile { name, gender, birthday, province, city, attributes });
record!(new => old::Stats { total_spent, order_count, average_order_value, first_order_at, last_order_at, refund_count, refund_amount });
record!(new => old::Tag { name, source });
record!(new => old::Score { model, value, label });
record!(new => old::Customer { id, profile, stats, tags, scores, points, tier, created_at });
record!(new => old::OrderItem { sku, name, category, quantity, unit_price, discount });
record!(new => old::Order { id, customer_id, amount, refunded_amount, status, coupon_code, paid_at, items });
record!(new => old::Event { seq, event_type, customer_id, payload, created_at });
variant!(new => old::BehaviourKind {} { View, Favorite, Cart, Purchase });
record!(new => old::Behaviour { kind, sku, category, occurred_at });
record!(new => old::History { customer_id, orders, behaviours, truncated });
record!(new => old::Subject { customer, event, order });
record!(new => old::Distribution { average, quintiles });
record!(new => old::ShopContext {
    shop_id, now, window_days, time_zone, currency, customer_count, buyer_count, recency_days, frequency, monetary, average_order_value
});
record!(new => old::Message { id, customer_id, channel, recipient, template, variables });
record!(new => old::InboundRequest { method, path, headers, body });

// Up: what a 0.1 plugin hands back.
record!(old => new::TagChange { customer_id, tag, reason });
record!(old => new::ScoreChange { customer_id, model, value, label, explanation });
record!(old => new::PointsChange { customer_id, points, source_key, reason, expires_at });
record!(old => new::TierChange { customer_id, tier, reason });
record!(old => new::EmittedEvent { customer_id, event_type, payload });
variant!(old => new::Decision { AddTag, RemoveTag, SetScore, AwardPoints, ClawBackPoints, ChangeTier, EmitEvent });
variant!(old => new::Delivery { Accepted, Rejected, RetryAfter });
variant!(old => new::ReceiptStatus {} { Delivered, Failed, Pending });
record!(old => new::Receipt { message_id, provider_id, status, detail, at });

/// An import's answer in 0.1 terms.
fn down<A: To<B>, B>(res: Res<A>) -> wasmtime::Result<Result<B, old::types::Error>> {
    res.map(To::to)
}

impl old::types::Host for State {}

impl old::log::Host for State {
    fn write(&mut self, level: old::log::Level, message: String) -> wasmtime::Result<Result<(), old::types::Error>> {
        let level = match level {
            old::log::Level::Trace => new::log::Level::Trace,
            old::log::Level::Debug => new::log::Level::Debug,
            old::log::Level::Info => new::log::Level::Info,
            old::log::Level::Warn => new::log::Level::Warn,
            old::log::Level::Error => new::log::Level::Error,
        };
        down(new::log::Host::write(self, level, message))
    }
}

impl old::config::Host for State {
    fn get(&mut self) -> wasmtime::Result<Result<String, old::types::Error>> {
        down(new::config::Host::get(self))
    }
}

impl old::kv::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, old::types::Error>> {
        down(new::kv::Host::get(self, key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), old::types::Error>> {
        down(new::kv::Host::set(self, key, value))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), old::types::Error>> {
        down(new::kv::Host::delete(self, key))
    }
}

impl old::clock::Host for State {
    fn now(&mut self) -> wasmtime::Result<Result<i64, old::types::Error>> {
        down(new::clock::Host::now(self))
    }
}

impl old::customers::Host for State {
    fn read(&mut self, id: i64) -> wasmtime::Result<Result<old::types::Customer, old::types::Error>> {
        down(new::customers::Host::read(self, id))
    }

    fn histories(&mut self, ids: Vec<i64>, since: i64) -> wasmtime::Result<Result<Vec<old::types::History>, old::types::Error>> {
        down(new::customers::Host::histories(self, ids, since))
    }
}

impl old::shop::Host for State {
    fn context(&mut self, window_days: Option<u32>) -> wasmtime::Result<Result<old::types::ShopContext, old::types::Error>> {
        down(new::shop::Host::context(self, window_days))
    }
}
