//! Customers, orders, settings and the audit record: the small ports of the core's `ports` module, on PostgreSQL.

use chrono::{DateTime, Utc};
use kith_core::Actor;
use kith_core::ports::*;
use kith_core::settings::{EXPORT, LOYALTY, MESSAGING};
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::messaging::MessagingSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis};

impl Customers for Pg<'_> {
    /// Follow merge tombstones from `customer_id` to the customer that holds its records now.
    fn active(&self, shop_id: i64, customer_id: i64) -> Result<Option<i64>> {
        let mut id = customer_id;
        // Chains are short (one link per merge); the bound only guards against a corrupt cycle.
        for _ in 0..64 {
            let row = self.query_opt("SELECT merged_into FROM customers WHERE id = $1 AND shop_id = $2", &[&id, &shop_id])?;
            match row {
                None => return Ok(None),
                Some(row) => match get::<Option<i64>>(&row, 0)? {
                    None => return Ok(Some(id)),
                    Some(into) => id = into,
                },
            }
        }
        Err(kith_core::Error::Internal(anyhow::anyhow!("merge chain from customer {customer_id} does not end")))
    }
}

impl Orders for Pg<'_> {
    fn by_external_id(&self, shop_id: i64, external_id: &str) -> Result<Option<i64>> {
        let row = self.query_opt("SELECT id FROM orders WHERE shop_id = $1 AND external_id = $2", &[&shop_id, &external_id])?;
        row.map(|row| get(&row, 0)).transpose()
    }

    fn refund_state(&self, shop_id: i64, order_id: i64) -> Result<RefundState> {
        let row = self.query_one(
            "SELECT external_id, customer_id, amount, refunded_amount FROM orders WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &order_id],
        )?;
        Ok(RefundState { external_id: get(&row, 0)?, customer_id: get(&row, 1)?, amount: get(&row, 2)?, refunded: get(&row, 3)? })
    }
}

impl Pg<'_> {
    /// A settings section as stored, or its default when the shop never set it.
    fn settings_section<T: DeserializeOwned + Default>(&self, shop_id: i64, section: &str) -> Result<T> {
        let row = self.query_opt("SELECT value FROM shop_settings WHERE shop_id = $1 AND section = $2", &[&shop_id, &section])?;
        match row {
            None => Ok(T::default()),
            Some(row) => {
                let text: String = get(&row, 0)?;
                serde_json::from_str(&text)
                    .map_err(|e| kith_core::Error::Internal(anyhow::anyhow!("stored {section} settings of shop {shop_id}: {e}")))
            }
        }
    }
}

impl Settings for Pg<'_> {
    fn loyalty(&self, shop_id: i64) -> Result<LoyaltySettings> {
        self.settings_section(shop_id, LOYALTY)
    }

    fn messaging(&self, shop_id: i64) -> Result<MessagingSettings> {
        self.settings_section(shop_id, MESSAGING)
    }

    fn time_zone(&self, shop_id: i64) -> Result<String> {
        let row = self.query_opt("SELECT time_zone FROM shops WHERE id = $1", &[&shop_id])?;
        match row {
            Some(row) => get(&row, 0),
            None => Err(kith_core::Error::NotFound(format!("shop {shop_id}"))),
        }
    }

    fn export(&self, shop_id: i64) -> Result<kith_domain::model::ExportPolicy> {
        self.settings_section(shop_id, EXPORT)
    }
}

impl Audit for Pg<'_> {
    fn record(
        &self,
        shop_id: Option<i64>,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: Value,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO audit_log (shop_id, key_id, action, target, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&shop_id, &actor.key_id, &action, &target, &detail.to_string(), &millis(at)],
        )?;
        Ok(())
    }
}
