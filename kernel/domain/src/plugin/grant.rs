//! What a merchant grants a plugin in a shop: the capabilities, checked in one place for the host, the bus and the API.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FieldError;

use super::*;

/// What a merchant grants a plugin in a shop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub capabilities: BTreeSet<Capability>,
    /// Hosts a connector may call; a subset of the manifest's `allowed-hosts`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Grant {
    /// Everything the manifest requests.
    pub fn all_requested(manifest: &Manifest) -> Grant {
        let hosts = manifest.allowed_hosts.iter().filter(|h| *h != "*").cloned().collect();
        Grant { capabilities: manifest.capabilities.clone(), allowed_hosts: hosts }
    }

    /// A grant may only hold what the manifest requests.
    pub fn check(&self, manifest: &Manifest) -> Result<(), FieldError> {
        if let Some(cap) = self.capabilities.iter().find(|c| !manifest.capabilities.contains(c)) {
            return Err(FieldError::new("grant.capabilities", format!("`{cap}` is not requested by {} {}", manifest.id, manifest.version)));
        }
        let any_host = manifest.allowed_hosts.iter().any(|h| h == "*");
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            if any_host && !valid_host_pattern(host) {
                return Err(FieldError::new(
                    format!("grant.allowed_hosts[{i}]"),
                    "expected a host name or `host:port`, without scheme or path",
                ));
            }
            if !any_host && !manifest.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(FieldError::new(format!("grant.allowed_hosts[{i}]"), format!("`{host}` is not declared by the manifest")));
            }
        }
        if !self.allowed_hosts.is_empty() && !self.capabilities.contains(&Capability::Http) {
            return Err(FieldError::new("grant.allowed_hosts", "hosts need the `http` capability granted"));
        }
        // Such a plugin could reach nothing: every call it makes would fail.
        if any_host && self.has(Capability::Http) && self.allowed_hosts.is_empty() {
            return Err(FieldError::new(
                "grant.allowed_hosts",
                format!("{} reaches whatever hosts the shop grants: name at least one, e.g. the provider's API host", manifest.id),
            ));
        }
        Ok(())
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    /// Hosts a request may go to: those granted, which are declared by construction.
    pub fn allows_host(&self, authority: &str) -> bool {
        self.has(Capability::Http) && host_allowed(&self.allowed_hosts, authority)
    }
}
