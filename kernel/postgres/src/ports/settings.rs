//! Per-shop settings of the features above the kernel, one JSON document per section:
//! the settings writing port on PostgreSQL (reading is `Settings`, in `basics.rs`).

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use serde_json::Value;

use super::{CoreResult as Result, Pg};
use crate::pg::millis;

impl SettingsWrite for Pg<'_> {
    /// Replace a section's document.
    fn put(&self, shop_id: i64, section: &str, value: &Value, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO shop_settings (shop_id, section, value, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (shop_id, section) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
            &[&shop_id, &section, &value.to_string(), &millis(at)],
        )?;
        Ok(())
    }
}
