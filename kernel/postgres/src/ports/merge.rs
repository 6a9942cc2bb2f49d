//! The merge ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::model::Merge;
use serde::{Deserialize, Serialize};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl MergeRead for Pg<'_> {
    fn order_ids(&self, customer_id: i64) -> Result<Vec<i64>> {
        Err(unported("MergeRead::order_ids"))
    }

    fn behaviour_ids(&self, customer_id: i64) -> Result<Vec<i64>> {
        Err(unported("MergeRead::behaviour_ids"))
    }

    fn ledger_ids(&self, customer_id: i64) -> Result<Vec<i64>> {
        Err(unported("MergeRead::ledger_ids"))
    }

    fn tags(&self, customer_id: i64) -> Result<Vec<MovedTag>> {
        Err(unported("MergeRead::tags"))
    }

    fn scores(&self, customer_id: i64) -> Result<Vec<MovedScore>> {
        Err(unported("MergeRead::scores"))
    }

    fn consents(&self, customer_id: i64) -> Result<Vec<(String, ConsentRow)>> {
        Err(unported("MergeRead::consents"))
    }

    fn consent(&self, customer_id: i64, channel: &str) -> Result<Option<ConsentRow>> {
        Err(unported("MergeRead::consent"))
    }

    fn merged_into(&self, customer_id: i64) -> Result<Option<i64>> {
        Err(unported("MergeRead::merged_into"))
    }

    fn merge(&self, shop_id: i64, merge_id: i64) -> Result<Option<(Merge, MergeRecord)>> {
        Err(unported("MergeRead::merge"))
    }

    fn customer_exists(&self, shop_id: i64, customer_id: i64) -> Result<bool> {
        Err(unported("MergeRead::customer_exists"))
    }

    fn involving(&self, shop_id: i64, customer_id: i64) -> Result<Vec<(Merge, MergeRecord)>> {
        Err(unported("MergeRead::involving"))
    }
}

impl MergeWrite for Pg<'_> {
    fn move_identities(&self, from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::move_identities"))
    }

    fn move_orders(&self, from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::move_orders"))
    }

    fn move_behaviours(&self, from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::move_behaviours"))
    }

    fn move_ledger(&self, from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::move_ledger"))
    }

    fn return_identities(&self, shop_id: i64, identities: &[IdentityRow], from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::return_identities"))
    }

    fn return_orders(&self, ids: &[i64], from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::return_orders"))
    }

    fn return_behaviours(&self, ids: &[i64], from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::return_behaviours"))
    }

    fn return_ledger(&self, ids: &[i64], from: i64, to: i64) -> Result<()> {
        Err(unported("MergeWrite::return_ledger"))
    }

    fn add_tag(&self, shop_id: i64, customer_id: i64, tag: &MovedTag) -> Result<bool> {
        Err(unported("MergeWrite::add_tag"))
    }

    fn remove_tag(&self, customer_id: i64, tag: &str, source: &str) -> Result<()> {
        Err(unported("MergeWrite::remove_tag"))
    }

    fn clear_tags(&self, customer_id: i64) -> Result<()> {
        Err(unported("MergeWrite::clear_tags"))
    }

    fn add_score(&self, shop_id: i64, customer_id: i64, score: &MovedScore) -> Result<bool> {
        Err(unported("MergeWrite::add_score"))
    }

    fn remove_score(&self, customer_id: i64, model: &str) -> Result<()> {
        Err(unported("MergeWrite::remove_score"))
    }

    fn clear_scores(&self, customer_id: i64) -> Result<()> {
        Err(unported("MergeWrite::clear_scores"))
    }

    fn set_consent(&self, shop_id: i64, customer_id: i64, channel: &str, consent: Option<&ConsentRow>) -> Result<()> {
        Err(unported("MergeWrite::set_consent"))
    }

    fn set_merged_into(&self, customer_id: i64, into: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("MergeWrite::set_merged_into"))
    }

    fn insert(&self, merge: &NewMerge<'_>) -> Result<i64> {
        Err(unported("MergeWrite::insert"))
    }

    fn mark_unmerged(&self, merge_id: i64, actor: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("MergeWrite::mark_unmerged"))
    }
}
