//! The outbox ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use std::collections::BTreeMap;
use chrono::{DateTime, Utc};
use kith_domain::identity::IdentityKind;
use kith_domain::messaging::{ConnectorRoute, Consent, ConsentStatus, Message, MessageStatus};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl OutboxRead for Pg<'_> {
    fn consent(&self, customer_id: i64, channel: &str) -> Result<Option<ConsentAnswer>> {
        Err(unported("OutboxRead::consent"))
    }

    fn identifier(&self, customer_id: i64, kind: IdentityKind) -> Result<Option<String>> {
        Err(unported("OutboxRead::identifier"))
    }

    fn route(&self, shop_id: i64, channel: &str) -> Result<Option<String>> {
        Err(unported("OutboxRead::route"))
    }

    fn served_channels(&self, shop_id: i64) -> Result<Vec<String>> {
        Err(unported("OutboxRead::served_channels"))
    }

    fn sent_since(&self, customer_id: i64, channel: &str, except: i64, since: DateTime<Utc>) -> Result<i64> {
        Err(unported("OutboxRead::sent_since"))
    }

    fn message(&self, shop_id: i64, key: MessageKey<'_>) -> Result<Option<Message>> {
        Err(unported("OutboxRead::message"))
    }

    fn due(&self, shop_id: i64, channel: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueMessage>> {
        Err(unported("OutboxRead::due"))
    }

    fn attempt_state(&self, row_id: i64) -> Result<Option<(MessageStatus, i64)>> {
        Err(unported("OutboxRead::attempt_state"))
    }

    fn sent_through(&self, shop_id: i64, plugin_id: &str, key: SentKey<'_>) -> Result<Option<(i64, MessageStatus)>> {
        Err(unported("OutboxRead::sent_through"))
    }

    fn list( &self, shop_id: i64, customer_id: Option<i64>, status: Option<MessageStatus>, before: Option<i64>, limit: usize, ) -> Result<Vec<(i64, String)>> {
        Err(unported("OutboxRead::list"))
    }

    fn due_groups(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String)>> {
        Err(unported("OutboxRead::due_groups"))
    }

    fn connector_by_token(&self, token: &str) -> Result<Option<(i64, String)>> {
        Err(unported("OutboxRead::connector_by_token"))
    }

    fn backlog(&self, shop_id: i64, plugin_id: &str) -> Result<i64> {
        Err(unported("OutboxRead::backlog"))
    }

    fn connectors(&self, shop_id: i64) -> Result<Vec<ConnectorRoute>> {
        Err(unported("OutboxRead::connectors"))
    }

    fn consents(&self, customer_id: i64) -> Result<Vec<Consent>> {
        Err(unported("OutboxRead::consents"))
    }
}

impl OutboxWrite for Pg<'_> {
    fn insert(&self, message: &NewMessage<'_>) -> Result<i64> {
        Err(unported("OutboxWrite::insert"))
    }

    fn set_status( &self, row_id: i64, status: MessageStatus, reason: Option<&str>, next_attempt_at: Option<DateTime<Utc>>, at: DateTime<Utc>, ) -> Result<()> {
        Err(unported("OutboxWrite::set_status"))
    }

    fn set_attempts(&self, row_id: i64, attempts: i64) -> Result<()> {
        Err(unported("OutboxWrite::set_attempts"))
    }

    fn claim(&self, row_id: i64, claim: &ClaimRow<'_>) -> Result<()> {
        Err(unported("OutboxWrite::claim"))
    }

    fn unclaim(&self, row_id: i64, attempt: i64, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("OutboxWrite::unclaim"))
    }

    fn sent(&self, row_id: i64, provider_id: Option<&str>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("OutboxWrite::sent"))
    }

    fn delivered(&self, row_id: i64, delivered_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("OutboxWrite::delivered"))
    }

    fn log(&self, row_id: i64, status: MessageStatus, detail: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("OutboxWrite::log"))
    }

    fn put_consent(&self, shop_id: i64, customer_id: i64, channel: &str, answer: &ConsentAnswer, at: DateTime<Utc>) -> Result<()> {
        Err(unported("OutboxWrite::put_consent"))
    }

    fn put_connector(&self, shop_id: i64, plugin_id: &str, channel: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("OutboxWrite::put_connector"))
    }
}
