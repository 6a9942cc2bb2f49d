//! Bindings generated from each served WIT version, one `bindgen!` per world.
//! Within a version, the first world generates the shared interfaces and the
//! others reuse them through `with`, so the host implements each import once
//! per version. The imports are implemented for the newest version
//! (`imports.rs`); older versions are shims onto it (`v0_1.rs`).

/// `kith:plugin@0.2.0`: 0.1 and `summaries`.
pub mod v0_2 {
    pub mod tag_rule {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "tag-rule",
            imports: { default: trappable },
        });
    }
    pub use tag_rule::kith::plugin::{clock, config, customers, kv, log, shop, summaries, types};

    pub mod scoring_model {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "scoring-model",
            with: { "kith:plugin": super::tag_rule::kith::plugin },
        });
    }
    pub mod loyalty_scheme {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "loyalty-scheme",
            with: { "kith:plugin": super::tag_rule::kith::plugin },
        });
    }
    pub mod channel_connector {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "channel-connector",
            require_store_data_send: true,
            with: {
                "kith:plugin": super::tag_rule::kith::plugin,
                "wasi": wasmtime_wasi_http::p2::bindings,
            },
        });
    }
}

/// `kith:plugin@0.1.0`, released and frozen.
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
