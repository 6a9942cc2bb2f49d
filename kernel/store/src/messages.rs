//! The outbox: messages stored before they are sent, the shop's rules applied
//! when a message is claimed for sending (consent, frequency cap, quiet
//! hours), the connector's answer, and receipts. Also consents and the
//! routes from a shop's channels to its connectors.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use kith_domain::FieldError;
use kith_domain::messaging::{
    ConnectorRoute, Consent, ConsentInput, ConsentStatus, Message, MessageEvent, MessageStatus, MessagingSettings, SendRequest,
    recipient_kind,
};
use kith_domain::plugin::{Delivery, OutboundMessage, Receipt, ReceiptStatus};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::attempts::record_attempt;
use crate::customers::{active_customer, customer_in_shop};
use crate::{Actor, Attempt, FailurePolicy, Result, Store, StoreError, audit, from_ms, settings, shops, to_ms};

/// How the outbox retries and how long a claim holds a message.
#[derive(Debug, Clone, Copy)]
pub struct OutboxPolicy {
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// Backoff after a failed call (the provider's retry-after wins when it gives one).
    pub backoff: FailurePolicy,
    /// The margin of a claim's lease: a claimed message not answered for this long past the
    /// worst case of the sends before it and its own (each its connector's call deadline) is
    /// claimed again (the sender died).
    pub lease: Duration,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy { max_attempts: 8, backoff: FailurePolicy::default(), lease: Duration::from_secs(120) }
    }
}

/// A message claimed for sending through a connector.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub row_id: i64,
    pub shop_id: i64,
    pub plugin_id: String,
    /// The attempt this claim is; the answer is recorded only for it.
    pub attempt: i64,
    /// When the claim runs out and the message may be claimed again: the policy's margin
    /// past the worst case of the claim's sends up to this one.
    pub lease_until: DateTime<Utc>,
    pub message: OutboundMessage,
}

/// How a send ended, as the bus reports it.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    Answered(Delivery),
    /// The call failed (trap, timeout, guest error); retried with backoff.
    CallFailed(String),
}

/// What a batch of receipts matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReceiptReport {
    pub matched: usize,
    pub unknown: usize,
}

const MESSAGE_COLUMNS: &str = "id, public_id, customer_id, channel, template, variables, status, reason, recipient, plugin_id, provider_id,
    attempts, next_attempt_at, source, idempotency_key, created_at, sent_at, delivered_at, personal_variables";

fn load_message(conn: &Connection, shop_id: i64, filter: &str, key: &dyn rusqlite::ToSql) -> Result<Option<Message>> {
    let row = conn
        .prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE shop_id = ?1 AND {filter}"))?
        .query_row(params![shop_id, key], |r| {
            let variables: String = r.get(5)?;
            Ok((
                r.get::<_, i64>(0)?,
                Message {
                    id: r.get(1)?,
                    customer_id: r.get(2)?,
                    channel: r.get(3)?,
                    template: r.get(4)?,
                    variables: serde_json::from_str::<BTreeMap<String, String>>(&variables).unwrap_or_default(),
                    status: MessageStatus::parse(&r.get::<_, String>(6)?).unwrap_or(MessageStatus::Failed),
                    reason: r.get(7)?,
                    recipient: r.get(8)?,
                    plugin_id: r.get(9)?,
                    provider_id: r.get(10)?,
                    attempts: r.get(11)?,
                    next_attempt_at: r.get::<_, Option<i64>>(12)?.map(from_ms),
                    source: r.get(13)?,
                    idempotency_key: r.get(14)?,
                    created_at: from_ms(r.get(15)?),
                    sent_at: r.get::<_, Option<i64>>(16)?.map(from_ms),
                    delivered_at: r.get::<_, Option<i64>>(17)?.map(from_ms),
                    personal_variables: r
                        .get::<_, Option<String>>(18)?
                        .and_then(|text| serde_json::from_str(&text).ok())
                        .unwrap_or_default(),
                    history: Vec::new(),
                },
            ))
        })
        .optional()?;
    let Some((row_id, mut message)) = row else { return Ok(None) };
    message.history = conn
        .prepare_cached("SELECT at, status, detail FROM message_events WHERE message_id = ?1 ORDER BY id")?
        .query_map([row_id], |r| {
            Ok(MessageEvent {
                at: from_ms(r.get(0)?),
                status: MessageStatus::parse(&r.get::<_, String>(1)?).unwrap_or(MessageStatus::Failed),
                detail: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(message))
}

/// Move a message to `status` and say why in its history.
fn transition(conn: &Connection, row_id: i64, status: MessageStatus, reason: Option<&str>, next: Option<i64>, at: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE messages SET status = ?2, reason = ?3, next_attempt_at = ?4, lease_until = NULL, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![row_id, status.as_str(), reason, next, at])?;
    event(conn, row_id, status, reason.unwrap_or(""), at)
}

fn event(conn: &Connection, row_id: i64, status: MessageStatus, detail: &str, at: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO message_events (message_id, status, detail, at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
        row_id,
        status.as_str(),
        detail,
        at
    ])?;
    Ok(())
}

/// The enabled connector of a shop's channel.
fn route(conn: &Connection, shop_id: i64, channel: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT c.plugin_id FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
             WHERE c.shop_id = ?1 AND c.channel = ?2 AND s.status = 'enabled'",
        )?
        .query_row(params![shop_id, channel], |r| r.get(0))
        .optional()?)
}

/// The channels an enabled connector sends in a shop, sorted.
fn served_channels(conn: &Connection, shop_id: i64) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT c.channel FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
             WHERE c.shop_id = ?1 AND s.status = 'enabled' ORDER BY c.channel",
        )?
        .query_map([shop_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Record that a connector plugin sends `channel` in a shop; refused while
/// another enabled connector holds the channel.
pub(crate) fn register_connector(conn: &Connection, shop_id: i64, plugin_id: &str, channel: &str, now: i64) -> Result<()> {
    if let Some(other) = route(conn, shop_id, channel)?.filter(|p| p != plugin_id) {
        return Err(StoreError::Conflict(format!("channel `{channel}` is sent by {other} in this shop; disable it first")));
    }
    let token: String = {
        let mut rng = rand::rng();
        (0..32).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect()
    };
    conn.prepare_cached(
        "INSERT INTO connectors (shop_id, plugin_id, channel, receipt_token, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (shop_id, plugin_id) DO UPDATE SET channel = excluded.channel",
    )?
    .execute(params![shop_id, plugin_id, channel, token, now])?;
    Ok(())
}

/// Where a message goes on its channel: the customer's phone or e-mail, or their id.
fn recipient(conn: &Connection, customer_id: i64, channel: &str) -> Result<Option<String>> {
    match recipient_kind(channel) {
        None => Ok(Some(customer_id.to_string())),
        Some(kind) => Ok(conn
            .prepare_cached("SELECT value FROM identities WHERE customer_id = ?1 AND kind = ?2 ORDER BY created_at LIMIT 1")?
            .query_row(params![customer_id, kind.to_string()], |r| r.get(0))
            .optional()?),
    }
}

fn consent_status(conn: &Connection, customer_id: i64, channel: &str) -> Result<Option<(String, String)>> {
    Ok(conn
        .prepare_cached("SELECT status, source FROM consents WHERE customer_id = ?1 AND channel = ?2")?
        .query_row(params![customer_id, channel], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// A message whose send time has come, as the claim reads it.
struct DueMessage {
    row_id: i64,
    shop_id: i64,
    customer: i64,
    channel: String,
    public_id: String,
    template: String,
    variables: String,
    attempts: i64,
}

/// The decision for one due message.
enum Verdict {
    Send { plugin_id: String, recipient: String },
    Suppress(String),
    Hold(i64, String),
    Retry(String),
}

/// What the rules of one shop need, read once per claim.
struct ShopRules {
    settings: MessagingSettings,
    zone_name: String,
}

impl ShopRules {
    fn load(conn: &Connection, shop_id: i64) -> Result<ShopRules> {
        let settings = settings::load(conn, shop_id, settings::MESSAGING)?;
        let zone_name = shops::load_shop(conn, shop_id)?.time_zone;
        Ok(ShopRules { settings, zone_name })
    }
}

fn judge(
    conn: &Connection,
    rules: &ShopRules,
    shop_id: i64,
    customer_id: i64,
    row_id: i64,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    if let Some((status, source)) = consent_status(conn, customer_id, channel)?
        && status == ConsentStatus::OptedOut.as_str()
    {
        return Ok(Verdict::Suppress(format!("the customer opted out of {channel} ({source})")));
    }
    let Some(to) = recipient(conn, customer_id, channel)? else {
        let kind = recipient_kind(channel).map(|k| k.to_string()).unwrap_or_default();
        return Ok(Verdict::Suppress(format!("the customer has no {kind} to send {channel} to")));
    };
    let Some(plugin_id) = route(conn, shop_id, channel)? else {
        return Ok(Verdict::Retry(format!("no connector is enabled for channel `{channel}` in this shop")));
    };
    let policy = rules.settings.policy(channel);
    if let Some(quiet) = &policy.quiet_hours {
        let zone_name = &rules.zone_name;
        let zone: Tz = zone_name.parse().unwrap_or(Tz::UTC);
        if let Some(until) = quiet.held_until(zone, now) {
            return Ok(Verdict::Hold(
                to_ms(until),
                format!("held for quiet hours {}-{} ({zone_name}) until {}", quiet.start, quiet.end, until.to_rfc3339()),
            ));
        }
    }
    if let Some(cap) = policy.frequency_cap {
        let since = to_ms(now) - i64::from(cap.window_hours) * 3_600_000;
        let recent: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE customer_id = ?1 AND channel = ?2 AND id != ?3
                   AND ((sent_at IS NOT NULL AND sent_at > ?4) OR status = 'sending')",
            )?
            .query_row(params![customer_id, channel, row_id, since], |r| r.get(0))?;
        if recent >= i64::from(cap.max) {
            return Ok(Verdict::Suppress(format!(
                "frequency cap: at most {} {channel} message(s) per customer in {} hours",
                cap.max, cap.window_hours
            )));
        }
    }
    Ok(Verdict::Send { plugin_id, recipient: to })
}

/// Store a message for sending in the caller's transaction (`req` validated); a
/// resend with the same idempotency key answers the first message (`false`: not new).
pub(crate) fn enqueue_in(tx: &Connection, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
    enqueue_personal(tx, shop_id, req, &[], source, now)
}

/// [`enqueue_in`], naming the variables filled from personal data (a journey's
/// `{{customer.name}}`), which reads mask for keys without `pii:read`.
pub(crate) fn enqueue_personal(
    tx: &Connection,
    shop_id: i64,
    req: &SendRequest,
    personal: &[String],
    source: &str,
    now: DateTime<Utc>,
) -> Result<(Message, bool)> {
    let at = to_ms(now);
    if let Some(existing) = load_message(tx, shop_id, "idempotency_key = ?2", &req.idempotency_key)? {
        let same = existing.channel == req.channel && existing.template == req.template && existing.variables == req.variables;
        if !same || active_customer(tx, shop_id, existing.customer_id)? != active_customer(tx, shop_id, req.customer_id)? {
            return Err(StoreError::Conflict(format!(
                "idempotency_key `{}` was already used for a different message",
                req.idempotency_key
            )));
        }
        return Ok((existing, false));
    }
    let customer = active_customer(tx, shop_id, req.customer_id)?
        .ok_or_else(|| StoreError::Invalid(FieldError::new("customer_id", "no such customer in this shop")))?;
    let public_id = uuid::Uuid::new_v4().to_string();
    let variables = serde_json::to_string(&req.variables).map_err(anyhow::Error::from)?;
    let personal = if personal.is_empty() { None } else { Some(serde_json::to_string(personal).map_err(anyhow::Error::from)?) };
    tx.prepare_cached(
        "INSERT INTO messages (public_id, shop_id, customer_id, channel, template, variables, status, next_attempt_at, source,
               idempotency_key, created_at, updated_at, personal_variables)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?7, ?7, ?10)",
    )?
    .execute(params![
        public_id,
        shop_id,
        customer,
        req.channel,
        req.template,
        variables,
        at,
        source,
        req.idempotency_key,
        personal
    ])?;
    let row_id = tx.last_insert_rowid();
    event(tx, row_id, MessageStatus::Queued, "stored", at)?;
    let message = load_message(tx, shop_id, "id = ?2", &row_id)?.ok_or_else(|| anyhow::anyhow!("message {row_id} vanished"))?;
    Ok((message, true))
}

/// The groups (shop, channel) with messages due at `?1`, oldest due first, then by shop and
/// channel. Each status's distinct groups are stepped through over its index, one seek from
/// a group to the next (the next channel of the shop, else the first of the next shop); each
/// group's oldest due message is then one seek more. Nothing reads a group's backlog: a
/// campaign of 200,000 queued messages costs what one message costs.
const DUE_GROUPS: &str = "
    WITH RECURSIVE
      queued(shop_id, channel) AS (
        SELECT * FROM (SELECT shop_id, channel FROM messages WHERE status = 'queued' ORDER BY shop_id, channel LIMIT 1)
        UNION ALL
        SELECT m.shop_id, m.channel FROM queued g JOIN messages m ON m.id = COALESCE(
          (SELECT n.id FROM messages n WHERE n.status = 'queued' AND n.shop_id = g.shop_id AND n.channel > g.channel
            ORDER BY n.channel LIMIT 1),
          (SELECT n.id FROM messages n WHERE n.status = 'queued' AND n.shop_id > g.shop_id ORDER BY n.shop_id, n.channel LIMIT 1))),
      sending(shop_id, channel) AS (
        SELECT * FROM (SELECT shop_id, channel FROM messages WHERE status = 'sending' ORDER BY shop_id, channel LIMIT 1)
        UNION ALL
        SELECT m.shop_id, m.channel FROM sending g JOIN messages m ON m.id = COALESCE(
          (SELECT n.id FROM messages n WHERE n.status = 'sending' AND n.shop_id = g.shop_id AND n.channel > g.channel
            ORDER BY n.channel LIMIT 1),
          (SELECT n.id FROM messages n WHERE n.status = 'sending' AND n.shop_id > g.shop_id ORDER BY n.shop_id, n.channel LIMIT 1))),
      due(shop_id, channel, queued, sending) AS MATERIALIZED (
        SELECT shop_id, channel,
          (SELECT MIN(m.next_attempt_at) FROM messages m
            WHERE m.status = 'queued' AND m.shop_id = g.shop_id AND m.channel = g.channel AND m.next_attempt_at <= ?1),
          (SELECT MIN(m.lease_until) FROM messages m
            WHERE m.status = 'sending' AND m.shop_id = g.shop_id AND m.channel = g.channel AND m.lease_until <= ?1)
        FROM (SELECT shop_id, channel FROM queued UNION SELECT shop_id, channel FROM sending) g)
    SELECT shop_id, channel FROM due WHERE queued IS NOT NULL OR sending IS NOT NULL
    ORDER BY MIN(COALESCE(queued, sending), COALESCE(sending, queued)), shop_id, channel";

/// A group's messages due at `?1`, `?4` of them: expired leases (their `next_attempt_at` is
/// NULL) first, then queued messages in the order they fell due. Each part seeks its group in
/// its index and reads no further than it needs; only the expired leases (no more than were
/// claimed) are sorted.
const CLAIM_DUE: &str = "
    SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
     WHERE status = 'queued' AND shop_id = ?2 AND channel = ?3 AND next_attempt_at <= ?1
    UNION ALL
    SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
     WHERE status = 'sending' AND shop_id = ?2 AND channel = ?3 AND lease_until <= ?1
    ORDER BY next_attempt_at, id LIMIT ?4";

impl Store {
    /// Store a message for sending; a resend with the same idempotency key
    /// answers the first message (`false`: not new). The channel is not
    /// checked against the shop's connectors: a message without one is
    /// retried and then fails, as one whose connector is disabled after it
    /// was queued. Clients' sends go through `send_message`.
    pub fn enqueue_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        req.validate()?;
        self.write(|tx| enqueue_in(tx, shop_id, req, source, now))
    }

    /// Store a message a client asked to send: like `enqueue_message`, but a
    /// channel that no enabled connector of the shop sends is refused, naming
    /// the field, since such a message could only wait and fail. A resend of
    /// an accepted key still answers its message, even if the connector has
    /// been disabled since.
    pub fn send_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        req.validate()?;
        self.write(|tx| {
            let known = load_message(tx, shop_id, "idempotency_key = ?2", &req.idempotency_key)?.is_some();
            if !known && route(tx, shop_id, &req.channel)?.is_none() {
                let served = served_channels(tx, shop_id)?;
                let served = if served.is_empty() { "none".to_owned() } else { served.join(", ") };
                return Err(FieldError::new(
                    "channel",
                    format!("no connector is enabled for channel `{}` in this shop (channels sent: {served})", req.channel),
                )
                .into());
            }
            enqueue_in(tx, shop_id, req, source, now)
        })
    }

    pub fn message(&self, shop_id: i64, id: &str) -> Result<Message> {
        self.read(|conn| load_message(conn, shop_id, "public_id = ?2", &id)?.ok_or_else(|| StoreError::NotFound(format!("message {id}"))))
    }

    /// A shop's messages, newest first, optionally of one customer or status.
    pub fn messages(
        &self,
        shop_id: i64,
        customer_id: Option<i64>,
        status: Option<MessageStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>> {
        self.read(|conn| {
            let ids: Vec<(i64, String)> = conn
                .prepare_cached(
                    "SELECT id, public_id FROM messages WHERE shop_id = ?1 AND id < ?2 AND (?3 IS NULL OR customer_id = ?3)
                       AND (?4 IS NULL OR status = ?4) ORDER BY id DESC LIMIT ?5",
                )?
                .query_map(params![shop_id, before.unwrap_or(i64::MAX), customer_id, status.map(|s| s.as_str()), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for (row, public) in ids {
                if let Some(m) = load_message(conn, shop_id, "public_id = ?2", &public)? {
                    out.push((row, m));
                }
            }
            Ok(out)
        })
    }

    /// The shops and channels with messages due now, the one whose oldest message has waited
    /// longest first, each with the connector enabled for it (if any). The outbox is claimed and
    /// sent a group at a time, so that one shop's slow connector holds up only its own messages.
    pub fn due_outbox_groups(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, Option<String>)>> {
        let at = to_ms(now);
        self.read(|conn| {
            let groups: Vec<(i64, String)> =
                conn.prepare_cached(DUE_GROUPS)?.query_map([at], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
            groups
                .into_iter()
                .map(|(shop_id, channel)| {
                    let connector = route(conn, shop_id, &channel)?;
                    Ok((shop_id, channel, connector))
                })
                .collect()
        })
    }

    /// Claim up to `limit` due messages of one shop's channel for sending, through
    /// `connector` (its id and call deadline: the connector the bus found for the channel,
    /// `None` if none). The shop's rules are applied here, in the transaction that claims: a
    /// message that may not go is suppressed or held instead of claimed; one that the shop's
    /// route now sends through another connector is left for the next pass.
    ///
    /// The messages of a claim are sent one after another, each up to the connector's
    /// deadline: the lease of the claim's n-th message is n deadlines past now, plus the
    /// policy's margin, so that a live sender's message is never claimed again.
    pub fn claim_messages(
        &self,
        now: DateTime<Utc>,
        policy: &OutboxPolicy,
        (shop_id, channel): (i64, &str),
        connector: Option<(&str, Duration)>,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        let at = to_ms(now);
        let due = |conn: &Connection| -> Result<Vec<DueMessage>> {
            Ok(conn
                .prepare_cached(CLAIM_DUE)?
                .query_map(params![at, shop_id, channel, limit as i64], |r| {
                    Ok(DueMessage {
                        row_id: r.get(0)?,
                        shop_id: r.get(1)?,
                        customer: r.get(2)?,
                        channel: r.get(3)?,
                        public_id: r.get(4)?,
                        template: r.get(5)?,
                        variables: r.get(6)?,
                        attempts: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        };
        // Most polls find nothing: look without taking the writer.
        if self.read(|conn| due(conn))?.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut claimed = Vec::new();
            let rules = ShopRules::load(tx, shop_id)?;
            for DueMessage { row_id, shop_id, customer, channel, public_id, template, variables, attempts } in due(tx)? {
                let Some(customer_id) = active_customer(tx, shop_id, customer)? else {
                    transition(tx, row_id, MessageStatus::Failed, Some("the customer no longer exists"), None, at)?;
                    continue;
                };
                match judge(tx, &rules, shop_id, customer_id, row_id, &channel, now)? {
                    Verdict::Suppress(reason) => transition(tx, row_id, MessageStatus::Suppressed, Some(&reason), None, at)?,
                    Verdict::Hold(until, reason) => transition(tx, row_id, MessageStatus::Queued, Some(&reason), Some(until), at)?,
                    Verdict::Retry(reason) => retry(tx, row_id, attempts + 1, &reason, None, policy, at)?,
                    Verdict::Send { plugin_id, recipient } => {
                        let Some((_, deadline)) = connector.filter(|(expected, _)| *expected == plugin_id) else { continue };
                        let attempt = attempts + 1;
                        let sends = u32::try_from(claimed.len() + 1).unwrap_or(u32::MAX);
                        let lease = policy.lease.saturating_add(deadline.saturating_mul(sends));
                        let lease_until = at.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
                        tx.prepare_cached(
                            "UPDATE messages SET status = 'sending', attempts = ?2, plugin_id = ?3, recipient = ?4, lease_until = ?5,
                               next_attempt_at = NULL, reason = NULL, updated_at = ?6, customer_id = ?7 WHERE id = ?1",
                        )?
                        .execute(params![row_id, attempt, plugin_id, recipient, lease_until, at, customer_id])?;
                        event(tx, row_id, MessageStatus::Sending, &format!("attempt {attempt} through {plugin_id}"), at)?;
                        let variables: BTreeMap<String, String> = serde_json::from_str(&variables).unwrap_or_default();
                        claimed.push(Claimed {
                            row_id,
                            shop_id,
                            plugin_id,
                            attempt,
                            lease_until: from_ms(lease_until),
                            message: OutboundMessage {
                                id: public_id,
                                customer_id,
                                channel,
                                recipient,
                                template,
                                variables: variables.into_iter().collect(),
                            },
                        });
                    }
                }
            }
            Ok(claimed)
        })
    }

    /// Hand claimed messages back unsent: queued again, due now, their attempt not counted.
    /// A claim taken again since (its lease ran out) is left as it is.
    pub fn hand_back(&self, claims: &[Claimed], reason: &str, now: DateTime<Utc>) -> Result<()> {
        let at = to_ms(now);
        self.write(|tx| {
            for claim in claims {
                let handed = tx
                    .prepare_cached(
                        "UPDATE messages SET status = 'queued', attempts = attempts - 1, next_attempt_at = ?3, lease_until = NULL,
                           updated_at = ?3 WHERE id = ?1 AND status = 'sending' AND attempts = ?2",
                    )?
                    .execute(params![claim.row_id, claim.attempt, at])?;
                if handed == 1 {
                    event(tx, claim.row_id, MessageStatus::Queued, reason, at)?;
                }
            }
            Ok(())
        })
    }

    /// Record the connector's answer to a claimed message, with the call's
    /// logs. An answer for a claim that has since expired and been taken
    /// again is ignored (the later attempt decides).
    pub fn record_send(&self, claim: &Claimed, outcome: &SendOutcome, call: &Attempt<'_>, policy: &OutboxPolicy) -> Result<()> {
        let at = to_ms(call.now);
        self.write(|tx| {
            let error = match outcome {
                SendOutcome::CallFailed(e) => Some(e.as_str()),
                SendOutcome::Answered(_) => None,
            };
            record_attempt(tx, call, error)?;
            let current: Option<(String, i64)> = tx
                .prepare_cached("SELECT status, attempts FROM messages WHERE id = ?1")?
                .query_row([claim.row_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if current != Some((MessageStatus::Sending.as_str().to_owned(), claim.attempt)) {
                return Ok(());
            }
            match outcome {
                SendOutcome::Answered(Delivery::Accepted { provider_id }) => {
                    tx.prepare_cached(
                        "UPDATE messages SET status = 'sent', sent_at = ?2, provider_id = ?3, lease_until = NULL, reason = NULL, updated_at = ?2
                         WHERE id = ?1",
                    )?
                    .execute(params![claim.row_id, at, provider_id])?;
                    let detail = match provider_id {
                        Some(id) => format!("accepted by the provider as {id}"),
                        None => "accepted by the provider".to_owned(),
                    };
                    event(tx, claim.row_id, MessageStatus::Sent, &detail, at)
                }
                SendOutcome::Answered(Delivery::Rejected { reason }) => {
                    transition(tx, claim.row_id, MessageStatus::Failed, Some(&format!("rejected by the provider: {reason}")), None, at)
                }
                SendOutcome::Answered(Delivery::RetryAfter { seconds }) => {
                    let reason = format!("the provider asked to retry after {seconds}s");
                    retry(tx, claim.row_id, claim.attempt, &reason, Some(at + i64::from(*seconds) * 1000), policy, at)
                }
                SendOutcome::CallFailed(error) => retry(tx, claim.row_id, claim.attempt, error, None, policy, at),
            }
        })
    }

    /// Apply receipts a connector parsed from its provider's request.
    pub fn apply_receipts(&self, shop_id: i64, plugin_id: &str, receipts: &[Receipt], now: DateTime<Utc>) -> Result<ReceiptReport> {
        let fallback = to_ms(now);
        self.write(|tx| {
            let mut report = ReceiptReport::default();
            for receipt in receipts {
                let by_id = match &receipt.message_id {
                    Some(id) => tx
                        .prepare_cached("SELECT id, status FROM messages WHERE shop_id = ?1 AND public_id = ?2 AND plugin_id = ?3")?
                        .query_row(params![shop_id, id, plugin_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                        .optional()?,
                    None => None,
                };
                let found = match (by_id, &receipt.provider_id) {
                    (Some(found), _) => Some(found),
                    (None, Some(provider)) => tx
                        .prepare_cached("SELECT id, status FROM messages WHERE shop_id = ?1 AND plugin_id = ?2 AND provider_id = ?3")?
                        .query_row(params![shop_id, plugin_id, provider], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?,
                    (None, None) => None,
                };
                let Some((row_id, status)) = found else {
                    report.unknown += 1;
                    continue;
                };
                report.matched += 1;
                let at = receipt.at_ms.unwrap_or(fallback);
                let detail = receipt.detail.clone().unwrap_or_default();
                // A receipt may overtake the commit of the send it reports on.
                let open = matches!(status.as_str(), "sent" | "sending");
                match receipt.status {
                    ReceiptStatus::Delivered if open => {
                        tx.prepare_cached(
                            "UPDATE messages SET status = 'delivered', delivered_at = ?2, sent_at = COALESCE(sent_at, ?2), lease_until = NULL,
                               updated_at = ?3 WHERE id = ?1",
                        )?
                        .execute(params![row_id, at, fallback])?;
                        event(tx, row_id, MessageStatus::Delivered, format!("receipt: delivered {detail}").trim_end(), at)?;
                    }
                    ReceiptStatus::Failed if open => {
                        let reason = format!("receipt: failed {detail}").trim_end().to_owned();
                        transition(tx, row_id, MessageStatus::Failed, Some(&reason), None, at)?;
                    }
                    _ => {
                        let status = MessageStatus::parse(&status).unwrap_or(MessageStatus::Sent);
                        event(tx, row_id, status, &format!("receipt: {:?} {detail}", receipt.status).trim_end().to_lowercase(), at)?;
                    }
                }
            }
            Ok(report)
        })
    }

    /// The shop and connector a receipt URL's token belongs to.
    pub fn connector_by_token(&self, token: &str) -> Result<Option<(i64, String)>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT shop_id, plugin_id FROM connectors WHERE receipt_token = ?1")?
                .query_row([token], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })
    }

    /// Messages of a shop waiting to go out on the channel a connector
    /// sends: queued (held for quiet hours or a retry included) or being
    /// sent. 0 for a plugin that sends no channel.
    pub fn outbox_backlog(&self, shop_id: i64, plugin_id: &str) -> Result<i64> {
        self.read(|conn| {
            // One count per status, so that each reads its partial index.
            Ok(conn
                .prepare_cached(
                    "SELECT COALESCE(SUM((SELECT COUNT(*) FROM messages m WHERE m.status = 'queued' AND m.shop_id = c.shop_id
                                            AND m.channel = c.channel)
                                       + (SELECT COUNT(*) FROM messages m WHERE m.status = 'sending' AND m.shop_id = c.shop_id
                                            AND m.channel = c.channel)), 0)
                     FROM connectors c WHERE c.shop_id = ?1 AND c.plugin_id = ?2",
                )?
                .query_row(params![shop_id, plugin_id], |r| r.get(0))?)
        })
    }

    /// A shop's connectors by channel, enabled or not.
    pub fn connector_routes(&self, shop_id: i64) -> Result<Vec<ConnectorRoute>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT channel, plugin_id, receipt_token FROM connectors WHERE shop_id = ?1 ORDER BY channel")?;
            Ok(stmt
                .query_map([shop_id], |r| Ok(ConnectorRoute { channel: r.get(0)?, plugin_id: r.get(1)?, receipt_token: r.get(2)? }))?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn messaging_settings(&self, shop_id: i64) -> Result<MessagingSettings> {
        self.read(|conn| settings::load(conn, shop_id, settings::MESSAGING))
    }

    pub fn put_messaging_settings(&self, shop_id: i64, value: &MessagingSettings, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        value.validate()?;
        self.write(|tx| settings::store(tx, shop_id, settings::MESSAGING, value, actor, now))
    }

    pub fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Consent>> {
        self.read(|conn| {
            let id = customer_in_shop(conn, shop_id, customer_id)?;
            let mut stmt =
                conn.prepare_cached("SELECT channel, status, source, updated_at FROM consents WHERE customer_id = ?1 ORDER BY channel")?;
            Ok(stmt
                .query_map([id], |r| {
                    let status: String = r.get(1)?;
                    Ok(Consent {
                        channel: r.get(0)?,
                        status: if status == "opted_out" { ConsentStatus::OptedOut } else { ConsentStatus::OptedIn },
                        source: r.get(2)?,
                        updated_at: from_ms(r.get(3)?),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn put_consent(
        &self,
        shop_id: i64,
        customer_id: i64,
        channel: &str,
        input: &ConsentInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Consent> {
        if !kith_domain::messaging::valid_channel(channel) {
            return Err(FieldError::new("channel", "expected lower-case letters, digits or `-`, e.g. `sms`").into());
        }
        if input.source.trim().is_empty() || input.source.len() > 64 {
            return Err(FieldError::new("source", "must be 1 to 64 bytes").into());
        }
        self.write(|tx| {
            let id = customer_in_shop(tx, shop_id, customer_id)?;
            tx.prepare_cached(
                "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, channel) DO UPDATE SET status = excluded.status, source = excluded.source, updated_at = excluded.updated_at",
            )?
            .execute(params![id, channel, shop_id, input.status.as_str(), input.source, to_ms(now)])?;
            audit::record(
                tx,
                Some(shop_id),
                actor,
                "consent.update",
                Some(&id.to_string()),
                json!({"channel": channel, "status": input.status, "source": input.source}),
                now,
            )?;
            Ok(Consent { channel: channel.to_owned(), status: input.status, source: input.source.clone(), updated_at: now })
        })
    }
}

/// Queue a message again after a failed attempt, or fail it when out of attempts.
fn retry(conn: &Connection, row_id: i64, attempts: i64, reason: &str, at_least: Option<i64>, policy: &OutboxPolicy, at: i64) -> Result<()> {
    conn.prepare_cached("UPDATE messages SET attempts = ?2 WHERE id = ?1")?.execute(params![row_id, attempts])?;
    if attempts >= policy.max_attempts {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        return transition(conn, row_id, MessageStatus::Failed, Some(&reason), None, at);
    }
    let next = at_least.unwrap_or(at + policy.backoff.backoff(attempts).as_millis() as i64);
    transition(conn, row_id, MessageStatus::Queued, Some(reason), Some(next), at)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{CLAIM_DUE, DUE_GROUPS};

    /// The plan of `sql`, a line per step, indented by depth.
    fn plan(sql: &str) -> Vec<String> {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let unbound = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let steps: Vec<(i64, i64, String)> = stmt
            .query_map(rusqlite::params_from_iter(unbound), |r| Ok((r.get(0)?, r.get(1)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut depth = std::collections::HashMap::from([(0, 0)]);
        steps
            .into_iter()
            .map(|(id, parent, detail)| {
                let d = depth.get(&parent).copied().unwrap_or(0) + 1;
                depth.insert(id, d);
                format!("{}{detail}", "  ".repeat(d - 1))
            })
            .collect()
    }

    /// Every read of `messages` seeks a group index or a row by its id; the one scan is of a
    /// group index, for its first entry (`LIMIT 1`).
    fn reads_only_group_indexes(plan: &[String]) {
        let of_messages = |step: &str| {
            let mut words = step.split(' ');
            matches!(words.next(), Some("SCAN" | "SEARCH")) && matches!(words.next(), Some("messages" | "m" | "n"))
        };
        let steps: Vec<&str> = plan.iter().map(|s| s.trim()).filter(|s| of_messages(s)).collect();
        assert!(steps.len() >= 2, "{}", plan.join("\n"));
        for step in steps {
            let seek = step.starts_with("SEARCH") && (step.contains("INDEX messages_group_") || step.contains("INTEGER PRIMARY KEY"));
            let first = step.starts_with("SCAN messages USING COVERING INDEX messages_group_") && !step.contains('(');
            assert!(seek || first, "{step} in\n{}", plan.join("\n"));
        }
    }

    #[test]
    fn the_outbox_groups_are_stepped_through_by_seeks() {
        let plan = plan(DUE_GROUPS);
        println!("{}", plan.join("\n"));
        reads_only_group_indexes(&plan);
        for index in ["messages_group_queued", "messages_group_sending"] {
            let seeks = |what: &str| plan.iter().any(|s| s.contains(&format!("SEARCH n USING COVERING INDEX {index} ({what})")));
            assert!(seeks("shop_id=? AND channel>?") && seeks("shop_id>?"), "{index}: {}", plan.join("\n"));
        }
        // One temporary B-tree joins the two statuses' groups, one orders them: both hold groups, not messages.
        assert_eq!(plan.iter().filter(|s| s.contains("TEMP B-TREE")).count(), 2, "{}", plan.join("\n"));
    }

    #[test]
    fn a_claim_seeks_its_group_in_due_order() {
        let plan = plan(CLAIM_DUE);
        println!("{}", plan.join("\n"));
        reads_only_group_indexes(&plan);
        let left = plan.iter().position(|s| s.trim() == "LEFT").unwrap();
        let right = plan.iter().position(|s| s.trim() == "RIGHT").unwrap();
        // The queued messages come in due order from the index: no sort of the backlog.
        assert_eq!(
            plan[left + 1..right].iter().map(|s| s.trim()).collect::<Vec<_>>(),
            ["SEARCH messages USING INDEX messages_group_queued (shop_id=? AND channel=? AND next_attempt_at<?)"]
        );
        assert!(
            plan[right + 1]
                .trim()
                .starts_with("SEARCH messages USING INDEX messages_group_sending (shop_id=? AND channel=? AND lease_until<?)")
        );
    }
}
