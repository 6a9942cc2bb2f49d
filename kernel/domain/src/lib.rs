//! Kith's domain: the vocabulary every other crate shares.
//!
//! This crate holds rules that need no I/O — how identifiers are normalised and
//! masked, which scopes a role carries, what a valid ingest event is, how money
//! is written — so that the store, the API and the CLI apply them identically.

pub mod auth;
pub mod coupons;
pub mod identity;
pub mod ingest;
pub mod journeys;
pub mod loyalty;
pub mod messaging;
pub mod metrics;
pub mod model;
pub mod money;
pub mod personal;
pub mod plugin;
pub mod segments;
pub mod text;

/// A saved definition's `name` (1–200 bytes) and `description` (at most 2,000).
pub fn check_name(name: &str, description: Option<&str>) -> Result<(), FieldError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 bytes"));
    }
    text::check("name", name)?;
    if let Some(description) = description {
        if description.len() > 2000 {
            return Err(FieldError::new("description", "must be at most 2000 bytes"));
        }
        text::check_free("description", description, 2000)?;
    }
    Ok(())
}

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

    /// From a serde error at `path` (as serde_path_to_error prints it). serde
    /// reports a missing field at its parent; the field itself is named here.
    pub fn from_serde(path: &str, message: String) -> Self {
        let parent = if path == "." { "" } else { path };
        let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(str::to_owned);
        match missing {
            Some(name) if parent.is_empty() => FieldError::new(name, message),
            Some(name) => FieldError::new(format!("{parent}.{name}"), message),
            None => FieldError::new(parent, message),
        }
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
