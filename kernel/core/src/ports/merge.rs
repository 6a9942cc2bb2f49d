//! The ports of merges: what moves from the merged customer to the survivor, and the
//! record that lets an unmerge put it back.

use chrono::{DateTime, Utc};
use kith_domain::model::Merge;
use serde::{Deserialize, Serialize};

use super::ingest::{IdentityRow, from_millis};
use crate::Result;

/// What a merge reads of the two customers, and of merges made before. A method naming a
/// customer by id reads only the shop's rows: a customer of another shop holds none.
pub trait MergeRead {
    /// Ids of a customer's orders.
    fn order_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>>;
    /// Ids of a customer's behaviours.
    fn behaviour_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>>;
    /// Ids of a customer's points ledger entries.
    fn ledger_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>>;
    /// A customer's tags, each with `added_to_survivor` false.
    fn tags(&self, shop_id: i64, customer_id: i64) -> Result<Vec<MovedTag>>;
    /// A customer's scores, each with `added_to_survivor` false.
    fn scores(&self, shop_id: i64, customer_id: i64) -> Result<Vec<MovedScore>>;
    /// A customer's consents, by channel.
    fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<(String, ConsentRow)>>;
    /// A customer's consent on one channel.
    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> Result<Option<ConsentRow>>;
    /// The customer the shop's customer `customer_id` was merged into directly, if it was;
    /// an error when the shop has no such customer.
    fn merged_into(&self, shop_id: i64, customer_id: i64) -> Result<Option<i64>>;
    /// A merge of the shop as the API shows it (without its identifiers), and its record.
    fn merge(&self, shop_id: i64, merge_id: i64) -> Result<Option<(Merge, MergeRecord)>>;
    /// Whether the shop has the customer `customer_id`, merged or not.
    fn customer_exists(&self, shop_id: i64, customer_id: i64) -> Result<bool>;
    /// The shop's merges in which a customer took part, as survivor or as merged side,
    /// newest first (by id), each as the API shows it (without its identifiers) with its
    /// record (an empty one when the stored record does not read).
    fn involving(&self, shop_id: i64, customer_id: i64) -> Result<Vec<(Merge, MergeRecord)>>;
}

/// What a merge and an unmerge write. Every method writes only the shop's rows: a customer
/// or a merge of another shop is left as it is.
pub trait MergeWrite {
    /// Give every identifier, order, behaviour and ledger entry of `from` to `to`.
    fn move_identities(&self, shop_id: i64, from: i64, to: i64) -> Result<()>;
    fn move_orders(&self, shop_id: i64, from: i64, to: i64) -> Result<()>;
    fn move_behaviours(&self, shop_id: i64, from: i64, to: i64) -> Result<()>;
    fn move_ledger(&self, shop_id: i64, from: i64, to: i64) -> Result<()>;
    /// Give these identifiers, orders, behaviours and ledger entries back from `from`
    /// to `to`, each only where `from` still holds it.
    fn return_identities(&self, shop_id: i64, identities: &[IdentityRow], from: i64, to: i64) -> Result<()>;
    fn return_orders(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()>;
    fn return_behaviours(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()>;
    fn return_ledger(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()>;
    /// Give a customer a tag unless it holds it from that source already; whether it was added.
    fn add_tag(&self, shop_id: i64, customer_id: i64, tag: &MovedTag) -> Result<bool>;
    /// Remove a customer's tag from one source.
    fn remove_tag(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<()>;
    /// Remove every tag of a customer.
    fn clear_tags(&self, shop_id: i64, customer_id: i64) -> Result<()>;
    /// Give a customer a score unless it holds one of that model already; whether it was added.
    fn add_score(&self, shop_id: i64, customer_id: i64, score: &MovedScore) -> Result<bool>;
    /// Remove a customer's score of one model.
    fn remove_score(&self, shop_id: i64, customer_id: i64, model: &str) -> Result<()>;
    /// Remove every score of a customer.
    fn clear_scores(&self, shop_id: i64, customer_id: i64) -> Result<()>;
    /// Set (or, with `None`, remove) a customer's consent on one channel.
    fn set_consent(&self, shop_id: i64, customer_id: i64, channel: &str, consent: Option<&ConsentRow>) -> Result<()>;
    /// Make a customer the tombstone of a merge into `into`, or (with `None`) active
    /// again; changed at `at` either way.
    fn set_merged_into(&self, shop_id: i64, customer_id: i64, into: Option<i64>, at: DateTime<Utc>) -> Result<()>;
    /// Record a merge; its id.
    fn insert(&self, merge: &NewMerge<'_>) -> Result<i64>;
    /// Mark a merge undone.
    fn mark_unmerged(&self, shop_id: i64, merge_id: i64, actor: &str, at: DateTime<Utc>) -> Result<()>;
}

/// A merge to record.
#[derive(Debug, Clone)]
pub struct NewMerge<'a> {
    pub shop_id: i64,
    pub survivor_id: i64,
    pub merged_id: i64,
    pub reason: &'a str,
    /// The actor's label.
    pub actor: &'a str,
    pub record: &'a MergeRecord,
    pub at: DateTime<Utc>,
}

/// What moved in a merge: every row that came from the merged side, so that an
/// unmerge puts back exactly that. A backend keeps it as it likes; SQLite keeps its
/// JSON (this serde form, which records written before must still read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub identities: Vec<IdentityRow>,
    pub orders: Vec<i64>,
    pub behaviours: Vec<i64>,
    /// Points ledger entries; absent from records written before the ledger existed.
    #[serde(default)]
    pub points: Vec<i64>,
    /// The merged side's tags, and whether each was new to the survivor.
    pub tags: Vec<MovedTag>,
    pub scores: Vec<MovedScore>,
    /// Profile fields the survivor lacked and took from the merged side.
    pub filled_fields: Vec<String>,
    pub filled_attributes: Vec<String>,
    /// Consents the survivor took from the merged side; absent from records written before.
    #[serde(default)]
    pub consents: Vec<ConsentChange>,
}

/// A tag of the merged side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovedTag {
    pub tag: String,
    pub source: String,
    pub reason: Option<String>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
    pub added_to_survivor: bool,
}

/// A score of the merged side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovedScore {
    pub model: String,
    pub value: f64,
    pub label: Option<String>,
    pub explanation: Option<String>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub scored_at: DateTime<Utc>,
    pub added_to_survivor: bool,
}

/// A consent as stored: status, source and time; in a merge record the array
/// `[status, source, Unix milliseconds]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(String, String, i64)", into = "(String, String, i64)")]
pub struct ConsentRow {
    pub status: String,
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

impl From<(String, String, i64)> for ConsentRow {
    fn from((status, source, ms): (String, String, i64)) -> Self {
        ConsentRow { status, source, updated_at: from_millis(ms) }
    }
}

impl From<ConsentRow> for (String, String, i64) {
    fn from(row: ConsentRow) -> Self {
        (row.status, row.source, row.updated_at.timestamp_millis())
    }
}

/// A channel's consent on the survivor before and after the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub channel: String,
    pub before: Option<ConsentRow>,
    pub after: ConsentRow,
}
