//! Customers as every feature finds them: scoped by shop, through merges; reading
//! customers, and manual tags.

use chrono::Utc;
use kith_domain::FieldError;
use kith_domain::model::{Customer, CustomerDetail, Stats, Tag};
use serde_json::json;

use crate::ports::{ReadTx, Storage, StorageExt};
use crate::tags::{self, Removable, Source, TagRemoval, TagWrite};
use crate::{Actor, Error, Result};

/// The customer `customer_id` of the shop is now (itself, or the survivor of its
/// merges); not found when the shop has no such customer.
pub fn in_shop(tx: &dyn ReadTx, shop_id: i64, customer_id: i64) -> Result<i64> {
    tx.customers().active(shop_id, customer_id)?.ok_or_else(|| Error::NotFound(format!("customer {customer_id}")))
}

pub use crate::ports::CustomerFilter;

/// The answer to a read by id: the customer, or where a merged customer went.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerRead {
    Found(Box<CustomerDetail>),
    Merged { into: i64 },
}

/// A customer whose stored stats differ from those recomputed from orders.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsMismatch {
    pub customer_id: i64,
    pub stored: Stats,
    pub recomputed: Stats,
}

fn label_matches(label: Option<&str>, code: &str) -> bool {
    label.is_some_and(|l| l == code || l.split('|').next() == Some(code))
}

/// Fail with not-found unless `customer_id` is an active customer of the shop.
fn require_active(tx: &dyn ReadTx, shop_id: i64, customer_id: i64) -> Result<()> {
    if tx.customer_views().exists(shop_id, customer_id)? { Ok(()) } else { Err(Error::NotFound(format!("customer {customer_id}"))) }
}

fn validate_tag(tag: &str) -> std::result::Result<String, FieldError> {
    let tag = tag.trim();
    if tag.is_empty() || tag.chars().count() > 64 || tag.chars().any(kith_domain::text::is_forbidden) {
        return Err(FieldError::new("tag", "must be 1-64 printable characters, without zero-width or bidirectional-override ones"));
    }
    Ok(tag.to_owned())
}

/// Reading customers, and manual tags.
pub trait CustomerService: Storage {
    /// A customer with the newest `timeline` events, including those recorded
    /// under customers since merged into them.
    fn get_customer(&self, shop_id: i64, customer_id: i64, timeline: usize) -> Result<CustomerRead> {
        self.read(|tx| {
            let Some(customer) = tx.customer_views().get(shop_id, customer_id)? else {
                return match tx.customers().active(shop_id, customer_id)? {
                    Some(into) if into != customer_id => Ok(CustomerRead::Merged { into }),
                    _ => Err(Error::NotFound(format!("customer {customer_id}"))),
                };
            };
            let timeline = tx.customer_views().timeline(shop_id, customer_id, timeline)?;
            Ok(CustomerRead::Found(Box::new(CustomerDetail { customer, timeline })))
        })
    }

    /// A page of active customers in id order, after the id `after`.
    fn list_customers(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>> {
        self.read(|tx| {
            if let Some(identifier) = &filter.identity {
                let owner = tx.customer_views().owner(shop_id, identifier)?;
                let Some(id) = owner.filter(|id| *id > after) else { return Ok(Vec::new()) };
                let customer = tx.customer_views().get(shop_id, id)?;
                return Ok(customer
                    .into_iter()
                    .filter(|c| filter.tag.as_ref().is_none_or(|t| c.tags.iter().any(|x| &x.tag == t)))
                    .filter(|c| filter.updated_since.is_none_or(|s| c.updated_at >= s))
                    .filter(|c| {
                        filter.score.as_ref().is_none_or(|(model, code)| {
                            c.scores
                                .iter()
                                .any(|s| &s.model == model && code.as_deref().is_none_or(|code| label_matches(s.label.as_deref(), code)))
                        })
                    })
                    .collect());
            }
            tx.customer_views().page(shop_id, filter, after, limit)
        })
    }

    /// Add (or update the reason of) a manual tag, with the effects of every tag writer
    /// (`tags.rs`); the request is audited even when the tag was already set.
    fn add_tag(&self, shop_id: i64, customer_id: i64, tag: &str, reason: Option<&str>, actor: &Actor) -> Result<Tag> {
        let tag = validate_tag(tag)?;
        if let Some(reason) = reason {
            kith_domain::text::check_free("reason", reason, kith_domain::text::MAX_TEXT)?;
        }
        let now = Utc::now();
        self.write(|tx| {
            require_active(tx, shop_id, customer_id)?;
            let write = TagWrite { shop_id, customer_id, tag: &tag, source: Source::Manual, reason, at: now, chain: 1 };
            tags::add(tx, &write)?;
            tx.audit().record(Some(shop_id), actor, "tag.add", Some(&format!("customer:{customer_id}")), json!({"tag": tag}), now)?;
            tx.tags().get(shop_id, customer_id, &tag, "manual")
        })
    }

    /// Remove a manual tag; tags set by plugins belong to those plugins.
    fn remove_tag(&self, shop_id: i64, customer_id: i64, tag: &str, actor: &Actor) -> Result<()> {
        let now = Utc::now();
        self.write(|tx| {
            require_active(tx, shop_id, customer_id)?;
            let removal = TagRemoval { shop_id, customer_id, tag, which: Removable::Of(Source::Manual), reason: None, at: now, chain: 1 };
            if tags::remove(tx, &removal)? == 0 {
                return Err(Error::NotFound(format!("manual tag `{tag}` on customer {customer_id}")));
            }
            tx.audit().record(Some(shop_id), actor, "tag.remove", Some(&format!("customer:{customer_id}")), json!({"tag": tag}), now)?;
            Ok(())
        })
    }

    /// Customers of a shop whose incrementally maintained stats differ from a
    /// recomputation from their orders; empty when the invariant holds.
    fn verify_stats(&self, shop_id: i64) -> Result<Vec<StatsMismatch>> {
        self.read(|tx| {
            let mut out = Vec::new();
            for (customer_id, stored, recomputed) in tx.customer_views().stats_check(shop_id)? {
                if stored != recomputed {
                    out.push(StatsMismatch { customer_id, stored, recomputed });
                }
            }
            Ok(out)
        })
    }

    /// Count of active customers in a shop.
    fn count_customers(&self, shop_id: i64) -> Result<i64> {
        self.read(|tx| tx.customer_views().count(shop_id))
    }
}

impl<S: Storage + ?Sized> CustomerService for S {}
