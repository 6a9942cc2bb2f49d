//! Kith's domain: the vocabulary every other crate shares.
//!
//! This crate holds rules that need no I/O — how identifiers are normalised and
//! masked, which scopes a role carries, what a valid ingest event is, how money
//! is written — so that the store, the API and the CLI apply them identically.

pub mod auth;
pub mod identity;
pub mod ingest;
pub mod model;
pub mod money;

/// A validation failure pinned to the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, utoipa::ToSchema)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Path of the field at fault, e.g. `order.items[0].quantity`.
    pub field: String,
    /// Why the value was refused.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// Prefix the field path, e.g. `identities[1]` + `value`.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}
