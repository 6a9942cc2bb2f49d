//! Per-shop settings of the features above the kernel, one JSON document per section;
//! replacing a section is audited as `settings.<section>`.

use chrono::{DateTime, Utc};
use kith_domain::model::ExportPolicy;
use serde::Serialize;

use crate::ports::{Storage, StorageExt, WriteTx};
use crate::{Actor, Result};

/// The section of the export policy.
pub const EXPORT: &str = "export";
/// The section of the loyalty settings (`LoyaltyService`).
pub const LOYALTY: &str = "loyalty";
/// The section of the messaging settings (`OutboxService`).
pub const MESSAGING: &str = "messaging";

/// Replace a shop's section with `value`, audited as `settings.<section>` with the new value.
pub fn put<T: Serialize>(tx: &dyn WriteTx, shop_id: i64, section: &str, value: &T, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
    let json = serde_json::to_value(value).map_err(anyhow::Error::from)?;
    tx.settings_writer().put(shop_id, section, &json, now)?;
    tx.audit().record(Some(shop_id), actor, &format!("settings.{section}"), None, json, now)
}

/// Reading and replacing a shop's export policy.
pub trait SettingsService: Storage {
    /// The shop's export policy; no personal columns unless the owner allowed them.
    fn export_policy(&self, shop_id: i64) -> Result<ExportPolicy> {
        self.read(|tx| tx.settings().export(shop_id))
    }

    /// Replace the shop's export policy (audited as `settings.export`).
    fn put_export_policy(&self, shop_id: i64, policy: &ExportPolicy, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| put(tx, shop_id, EXPORT, policy, actor, now))
    }
}

impl<S: Storage + ?Sized> SettingsService for S {}
