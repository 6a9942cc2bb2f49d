//! Buy-till-you-die models for non-contractual retail: BG/NBD for repeat
//! purchasing and the probability a customer is still alive, Gamma-Gamma for
//! the value of their orders, and the customer lifetime value built on both.
//! Pure Rust without I/O, so the same code runs natively and in a wasm32-wasip2
//! plugin. The formulas and their sources are in this crate's README.

pub mod backtest;
pub mod bgnbd;
pub mod clv;
pub mod gamma_gamma;
pub mod minimum;
mod optimize;
pub mod special;
pub mod summary;

pub use backtest::{Backtest, Bucket, backtest};
pub use bgnbd::BgNbd;
pub use clv::{ClvSettings, clv, expected_next_order, expected_wait};
pub use gamma_gamma::GammaGamma;
pub use minimum::{MinimumData, Shortfall, check_minimum_data};
pub use optimize::Fit;
pub use summary::{History, Summary, TimeUnit, Transaction, summarize};

/// What can go wrong: bad input names its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("`{field}` {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("nothing to fit: {0}")]
    NoData(&'static str),
    #[error("numerical failure: {0}")]
    Numerical(String),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), reason: reason.into() }
    }
}
