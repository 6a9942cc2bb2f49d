//! Bindings generated from `wit/v0.1`, one `bindgen!` per world. The first
//! world generates the shared interfaces; the others reuse them through
//! `with`, so the host implements each import once.

pub mod v0_1 {
    pub mod tag_rule {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1",
            world: "tag-rule",
            imports: { default: trappable },
        });
    }
    pub use tag_rule::kith::plugin::{clock, config, customers, kv, log, shop, types};

    pub mod scoring_model {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1",
            world: "scoring-model",
            with: { "kith:plugin": super::tag_rule::kith::plugin },
        });
    }
    pub mod loyalty_scheme {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1",
            world: "loyalty-scheme",
            with: { "kith:plugin": super::tag_rule::kith::plugin },
        });
    }
    pub mod channel_connector {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.1",
            world: "channel-connector",
            require_store_data_send: true,
            with: {
                "kith:plugin": super::tag_rule::kith::plugin,
                "wasi": wasmtime_wasi_http::p2::bindings,
            },
        });
    }
}
