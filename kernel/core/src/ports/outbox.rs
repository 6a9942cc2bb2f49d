//! The outbox's port: messages and their history, and what the outbox's rules read
//! of a shop and its customers (consents, addresses, the connectors that route
//! channels, recent sends).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_domain::identity::IdentityKind;
use kith_domain::messaging::{ConnectorRoute, Consent, ConsentStatus, Message, MessageStatus};

use crate::Result;

/// The outbox as stored, and what its rules read beside it.
pub trait OutboxRead {
    /// The shop's customer's answer for a channel, when they gave one.
    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> Result<Option<ConsentAnswer>>;
    /// The shop's customer's oldest identifier of `kind` (the value as stored, normalised).
    fn identifier(&self, shop_id: i64, customer_id: i64, kind: IdentityKind) -> Result<Option<String>>;
    /// The connector plugin enabled for a shop's channel (its subscription enabled).
    fn route(&self, shop_id: i64, channel: &str) -> Result<Option<String>>;
    /// The channels an enabled connector sends in a shop, sorted.
    fn served_channels(&self, shop_id: i64) -> Result<Vec<String>>;
    /// How many of the shop's customer's messages on a channel, other than `except` (a
    /// message's row id), were sent after `since` or are being sent now.
    fn sent_since(&self, shop_id: i64, customer_id: i64, channel: &str, except: i64, since: DateTime<Utc>) -> Result<i64>;
    /// A message of the shop, with its history (oldest first).
    fn message(&self, shop_id: i64, key: MessageKey<'_>) -> Result<Option<Message>>;
    /// Up to `limit` messages of a shop's channel due at `now`: first those being sent
    /// whose lease ran out (`lease_until <= now`), then queued ones whose time came
    /// (`next_attempt_at <= now`) in the order they fell due, then by row id.
    fn due(&self, shop_id: i64, channel: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueMessage>>;
    /// A message's status and the attempts made; `None` when the shop has no such row.
    fn attempt_state(&self, shop_id: i64, row_id: i64) -> Result<Option<(MessageStatus, i64)>>;
    /// The message of the shop a connector sent, by the kernel's id or the provider's.
    fn sent_through(&self, shop_id: i64, plugin_id: &str, key: SentKey<'_>) -> Result<Option<(i64, MessageStatus)>>;
    /// A page of a shop's messages, newest first: up to `limit` (row id, public id) with a
    /// row id below `before` (any when `None`), of one customer (by its own id) or status
    /// when given.
    fn list(
        &self,
        shop_id: i64,
        customer_id: Option<i64>,
        status: Option<MessageStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, String)>>;
    /// The groups (shop, channel) of every shop with messages due at `now` (queued ones
    /// whose time came, or being sent with their lease run out), the group whose oldest due
    /// message has waited longest first, then by shop and channel.
    fn due_groups(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String)>>;
    /// The shop and connector plugin a receipt URL's secret token belongs to.
    fn connector_by_token(&self, token: &str) -> Result<Option<(i64, String)>>;
    /// How many of a shop's messages are queued or being sent on the channel the connector
    /// `plugin_id` sends; 0 when it sends none.
    fn backlog(&self, shop_id: i64, plugin_id: &str) -> Result<i64>;
    /// A shop's connectors by channel, enabled or not.
    fn connectors(&self, shop_id: i64) -> Result<Vec<ConnectorRoute>>;
    /// The shop's customer's answers (by its own id), by channel.
    fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Consent>>;
}

/// Writes to the outbox. Every change of a message's status is followed by a history line
/// ([`OutboxWrite::log`]), which the rules write themselves. A method taking a message's row
/// id writes nothing when the row is not the shop's.
pub trait OutboxWrite {
    /// Store a new message, queued and due at its `at`, under a new public id (a UUID);
    /// its row id.
    fn insert(&self, message: &NewMessage<'_>) -> Result<i64>;
    /// Move the shop's message to `status` with `reason` and `next_attempt_at`, releasing its
    /// claim.
    fn set_status(
        &self,
        shop_id: i64,
        row_id: i64,
        status: MessageStatus,
        reason: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Set the attempts made on the shop's message.
    fn set_attempts(&self, shop_id: i64, row_id: i64, attempts: i64) -> Result<()>;
    /// Mark the shop's message as being sent under a claim (`next_attempt_at` and `reason`
    /// cleared).
    fn claim(&self, shop_id: i64, row_id: i64, claim: &ClaimRow<'_>) -> Result<()>;
    /// Queue the shop's message claimed by attempt `attempt` again, due at `at`, that attempt
    /// not counted; `false` (nothing written) when the message is no longer in that claim or
    /// is not the shop's.
    fn unclaim(&self, shop_id: i64, row_id: i64, attempt: i64, at: DateTime<Utc>) -> Result<bool>;
    /// The provider took the shop's message: sent at `at`, its claim and reason cleared.
    fn sent(&self, shop_id: i64, row_id: i64, provider_id: Option<&str>, at: DateTime<Utc>) -> Result<()>;
    /// A receipt says the shop's message arrived at `delivered_at` (also its `sent_at` if it
    /// has none yet); its claim released; changed at `at`.
    fn delivered(&self, shop_id: i64, row_id: i64, delivered_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()>;
    /// A line of the shop's message's history.
    fn log(&self, shop_id: i64, row_id: i64, status: MessageStatus, detail: &str, at: DateTime<Utc>) -> Result<()>;
    /// Set a customer's answer for a channel (replacing an earlier one).
    fn put_consent(&self, shop_id: i64, customer_id: i64, channel: &str, answer: &ConsentAnswer, at: DateTime<Utc>) -> Result<()>;
    /// Record that a connector plugin sends `channel` in a shop (replacing the channel it
    /// sent before), with a new secret receipt token the first time.
    fn put_connector(&self, shop_id: i64, plugin_id: &str, channel: &str, at: DateTime<Utc>) -> Result<()>;
}

/// A customer's answer for a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentAnswer {
    pub status: ConsentStatus,
    /// Where the customer said so, e.g. `checkout`.
    pub source: String,
}

/// How a message is found in its shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKey<'a> {
    /// The backend's row id.
    Row(i64),
    /// The kernel's public id.
    Public(&'a str),
    /// The sender's idempotency key.
    Idempotency(&'a str),
}

/// How a receipt names the message it reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentKey<'a> {
    /// The kernel's public id, which connectors pass to the provider.
    Public(&'a str),
    /// The provider's id, from its answer to the send.
    Provider(&'a str),
}

/// A message whose time has come, as a claim reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    pub row_id: i64,
    pub shop_id: i64,
    /// As stored: the customer may have been merged since.
    pub customer_id: i64,
    pub channel: String,
    pub public_id: String,
    pub template: String,
    pub variables: BTreeMap<String, String>,
    pub attempts: i64,
}

/// A message to store, as the rules made it.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub channel: &'a str,
    pub template: &'a str,
    pub variables: &'a BTreeMap<String, String>,
    /// Variables filled from personal data (masked on reads without `pii:read`).
    pub personal_variables: &'a [String],
    pub source: &'a str,
    pub idempotency_key: &'a str,
    pub at: DateTime<Utc>,
}

/// What a claim writes on a message.
#[derive(Debug, Clone)]
pub struct ClaimRow<'a> {
    pub attempt: i64,
    pub plugin_id: &'a str,
    pub recipient: &'a str,
    pub lease_until: DateTime<Utc>,
    /// The customer the message goes to now (after merges).
    pub customer_id: i64,
    pub at: DateTime<Utc>,
}
