//! The outbox ports on PostgreSQL: messages and their history, consents, connectors.
//!
//! Messages are addressed within their shop: by row id, public id or idempotency key, every
//! statement filtering `shop_id` (the distribution column). A message's history lines carry
//! the message's shop (`message_events.shop_id`), copied from the message when written.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::identity::IdentityKind;
use kith_domain::messaging::{ConnectorRoute, Consent, ConsentStatus, Message, MessageEvent, MessageStatus};
use rand::Rng;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

/// A group's messages due at `$1`, `$4` of them: expired leases (their `next_attempt_at` is
/// NULL) first, then queued messages in the order they fell due. Each part seeks its group in
/// its partial index and reads no further than it needs.
///
/// No `FOR UPDATE SKIP LOCKED` here: the statement is also read in the read-only snapshot
/// that looks for work before writing, where locking clauses are refused, and a claim's
/// write transaction holds the global write lock already (one claimer at a time).
const CLAIM_DUE: &str = "
    (SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
      WHERE status = 'sending' AND shop_id = $2 AND channel = $3 AND lease_until <= $1
      ORDER BY next_attempt_at NULLS FIRST, id LIMIT $4)
    UNION ALL
    (SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
      WHERE status = 'queued' AND shop_id = $2 AND channel = $3 AND next_attempt_at <= $1
      ORDER BY next_attempt_at, id LIMIT $4)
    ORDER BY next_attempt_at NULLS FIRST, id LIMIT $4";

/// The groups (shop, channel) with messages due at `$1`, oldest due first, then by shop and
/// channel. Each status's distinct groups are stepped through over its partial index, one
/// seek from a group to the next (a row comparison on (shop_id, channel)); each group's
/// oldest due message is then one seek more. Nothing reads a group's backlog.
const DUE_GROUPS: &str = "
    WITH RECURSIVE
      queued(shop_id, channel) AS (
        (SELECT shop_id, channel FROM messages WHERE status = 'queued' ORDER BY shop_id, channel LIMIT 1)
        UNION ALL
        SELECT n.shop_id, n.channel FROM queued g CROSS JOIN LATERAL (
          SELECT m.shop_id, m.channel FROM messages m
           WHERE m.status = 'queued' AND (m.shop_id, m.channel) > (g.shop_id, g.channel)
           ORDER BY m.shop_id, m.channel LIMIT 1) n),
      sending(shop_id, channel) AS (
        (SELECT shop_id, channel FROM messages WHERE status = 'sending' ORDER BY shop_id, channel LIMIT 1)
        UNION ALL
        SELECT n.shop_id, n.channel FROM sending g CROSS JOIN LATERAL (
          SELECT m.shop_id, m.channel FROM messages m
           WHERE m.status = 'sending' AND (m.shop_id, m.channel) > (g.shop_id, g.channel)
           ORDER BY m.shop_id, m.channel LIMIT 1) n),
      due(shop_id, channel, queued, sending) AS MATERIALIZED (
        SELECT shop_id, channel,
          (SELECT MIN(m.next_attempt_at) FROM messages m
            WHERE m.status = 'queued' AND m.shop_id = g.shop_id AND m.channel = g.channel AND m.next_attempt_at <= $1),
          (SELECT MIN(m.lease_until) FROM messages m
            WHERE m.status = 'sending' AND m.shop_id = g.shop_id AND m.channel = g.channel AND m.lease_until <= $1)
        FROM (SELECT shop_id, channel FROM queued UNION SELECT shop_id, channel FROM sending) g)
    SELECT shop_id, channel FROM due WHERE queued IS NOT NULL OR sending IS NOT NULL
    ORDER BY LEAST(queued, sending), shop_id, channel";

const MESSAGE_COLUMNS: &str = "id, public_id, customer_id, channel, template, variables, status, reason, recipient, plugin_id, provider_id,
    attempts, next_attempt_at, source, idempotency_key, created_at, sent_at, delivered_at, personal_variables";

fn consent_status(status: &str) -> ConsentStatus {
    if status == ConsentStatus::OptedOut.as_str() { ConsentStatus::OptedOut } else { ConsentStatus::OptedIn }
}

fn row_to_message(r: &Row) -> Result<(i64, Message)> {
    let variables: String = get(r, 5)?;
    let status: String = get(r, 6)?;
    Ok((
        get(r, 0)?,
        Message {
            id: get(r, 1)?,
            customer_id: get(r, 2)?,
            channel: get(r, 3)?,
            template: get(r, 4)?,
            variables: serde_json::from_str::<BTreeMap<String, String>>(&variables).unwrap_or_default(),
            status: MessageStatus::parse(&status).unwrap_or(MessageStatus::Failed),
            reason: get(r, 7)?,
            recipient: get(r, 8)?,
            plugin_id: get(r, 9)?,
            provider_id: get(r, 10)?,
            attempts: get(r, 11)?,
            next_attempt_at: get::<Option<i64>>(r, 12)?.map(time).transpose()?,
            source: get(r, 13)?,
            idempotency_key: get(r, 14)?,
            created_at: time(get(r, 15)?)?,
            sent_at: get::<Option<i64>>(r, 16)?.map(time).transpose()?,
            delivered_at: get::<Option<i64>>(r, 17)?.map(time).transpose()?,
            personal_variables: get::<Option<String>>(r, 18)?.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default(),
            history: Vec::new(),
        },
    ))
}

/// A message of the shop, with its history, found by `filter` (over `$2`).
fn load_message(pg: &Pg<'_>, shop_id: i64, filter: &str, key: &(dyn ToSql + Sync)) -> Result<Option<Message>> {
    let row = pg.query_opt(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE shop_id = $1 AND {filter}"), &[&shop_id, key])?;
    let Some(row) = row else { return Ok(None) };
    let (row_id, mut message) = row_to_message(&row)?;
    message.history = pg
        .query("SELECT at, status, detail FROM message_events WHERE shop_id = $1 AND message_id = $2 ORDER BY id", &[&shop_id, &row_id])?
        .iter()
        .map(|r| {
            Ok(MessageEvent {
                at: time(get(r, 0)?)?,
                status: MessageStatus::parse(&get::<String>(r, 1)?).unwrap_or(MessageStatus::Failed),
                detail: get(r, 2)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(message))
}

impl OutboxRead for Pg<'_> {
    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> Result<Option<ConsentAnswer>> {
        let row = self.query_opt(
            "SELECT status, source FROM consents WHERE shop_id = $3 AND customer_id = $1 AND channel = $2",
            &[&customer_id, &channel, &shop_id],
        )?;
        row.map(|r| Ok(ConsentAnswer { status: consent_status(&get::<String>(&r, 0)?), source: get(&r, 1)? })).transpose()
    }

    fn identifier(&self, shop_id: i64, customer_id: i64, kind: IdentityKind) -> Result<Option<String>> {
        // Ties on created_at in SQLite's order: its index's (shop_id, kind, value).
        let row = self.query_opt(
            "SELECT value FROM identities WHERE shop_id = $3 AND customer_id = $1 AND kind = $2 ORDER BY created_at, value LIMIT 1",
            &[&customer_id, &kind.to_string(), &shop_id],
        )?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn route(&self, shop_id: i64, channel: &str) -> Result<Option<String>> {
        // Two connectors sending one channel: the first by plugin id, as SQLite reads them.
        let row = self.query_opt(
            "SELECT c.plugin_id FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
             WHERE c.shop_id = $1 AND c.channel = $2 AND s.status = 'enabled' ORDER BY c.plugin_id LIMIT 1",
            &[&shop_id, &channel],
        )?;
        row.map(|r| get(&r, 0)).transpose()
    }

    fn served_channels(&self, shop_id: i64) -> Result<Vec<String>> {
        self.query(
            "SELECT DISTINCT c.channel FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
             WHERE c.shop_id = $1 AND s.status = 'enabled' ORDER BY c.channel",
            &[&shop_id],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }

    fn sent_since(&self, shop_id: i64, customer_id: i64, channel: &str, except: i64, since: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(
            "SELECT COUNT(*) FROM messages WHERE shop_id = $5 AND customer_id = $1 AND channel = $2 AND id <> $3
               AND ((sent_at IS NOT NULL AND sent_at > $4) OR status = 'sending')",
            &[&customer_id, &channel, &except, &millis(since), &shop_id],
        )?;
        get(&row, 0)
    }

    fn message(&self, shop_id: i64, key: MessageKey<'_>) -> Result<Option<Message>> {
        match key {
            MessageKey::Row(id) => load_message(self, shop_id, "id = $2", &id),
            MessageKey::Public(id) => load_message(self, shop_id, "public_id = $2", &id),
            MessageKey::Idempotency(key) => load_message(self, shop_id, "idempotency_key = $2", &key),
        }
    }

    fn due(&self, shop_id: i64, channel: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueMessage>> {
        self.query(CLAIM_DUE, &[&millis(now), &shop_id, &channel, &(limit as i64)])?
            .iter()
            .map(|r| {
                let variables: String = get(r, 6)?;
                Ok(DueMessage {
                    row_id: get(r, 0)?,
                    shop_id: get(r, 1)?,
                    customer_id: get(r, 2)?,
                    channel: get(r, 3)?,
                    public_id: get(r, 4)?,
                    template: get(r, 5)?,
                    variables: serde_json::from_str(&variables).unwrap_or_default(),
                    attempts: get(r, 7)?,
                })
            })
            .collect()
    }

    fn attempt_state(&self, shop_id: i64, row_id: i64) -> Result<Option<(MessageStatus, i64)>> {
        let row = self.query_opt("SELECT status, attempts FROM messages WHERE shop_id = $2 AND id = $1", &[&row_id, &shop_id])?;
        row.map(|r| Ok((MessageStatus::parse(&get::<String>(&r, 0)?).unwrap_or(MessageStatus::Failed), get(&r, 1)?))).transpose()
    }

    fn sent_through(&self, shop_id: i64, plugin_id: &str, key: SentKey<'_>) -> Result<Option<(i64, MessageStatus)>> {
        let (text, first, second) = match key {
            SentKey::Public(id) => {
                ("SELECT id, status FROM messages WHERE shop_id = $1 AND public_id = $2 AND plugin_id = $3", id, plugin_id)
            }
            // A provider's id is not unique: the oldest message, as SQLite's index reads them.
            SentKey::Provider(id) => (
                "SELECT id, status FROM messages WHERE shop_id = $1 AND plugin_id = $2 AND provider_id = $3 ORDER BY id LIMIT 1",
                plugin_id,
                id,
            ),
        };
        let row = self.query_opt(text, &[&shop_id, &first, &second])?;
        // A status unknown to this kernel counts as sent, as receipts always read it.
        row.map(|r| Ok((get(&r, 0)?, MessageStatus::parse(&get::<String>(&r, 1)?).unwrap_or(MessageStatus::Sent)))).transpose()
    }

    fn list(
        &self,
        shop_id: i64,
        customer_id: Option<i64>,
        status: Option<MessageStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, String)>> {
        self.query(
            "SELECT id, public_id FROM messages WHERE shop_id = $1 AND id < $2 AND ($3::BIGINT IS NULL OR customer_id = $3::BIGINT)
               AND ($4::TEXT IS NULL OR status = $4::TEXT) ORDER BY id DESC LIMIT $5",
            &[&shop_id, &before.unwrap_or(i64::MAX), &customer_id, &status.map(|s| s.as_str()), &(limit as i64)],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect()
    }

    fn due_groups(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String)>> {
        self.query(DUE_GROUPS, &[&millis(now)])?.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
    }

    fn connector_by_token(&self, token: &str) -> Result<Option<(i64, String)>> {
        // Tokens are unique per shop only; 32 random characters never meet across shops,
        // but the answer stays one row whatever happens.
        let row = self.query_opt(
            "SELECT shop_id, plugin_id FROM connectors WHERE receipt_token = $1 ORDER BY shop_id, plugin_id LIMIT 1",
            &[&token],
        )?;
        row.map(|r| Ok((get(&r, 0)?, get(&r, 1)?))).transpose()
    }

    fn backlog(&self, shop_id: i64, plugin_id: &str) -> Result<i64> {
        // One count per status, so that each reads its partial index.
        let row = self.query_one(
            "SELECT COALESCE(SUM((SELECT COUNT(*) FROM messages m WHERE m.status = 'queued' AND m.shop_id = c.shop_id
                                    AND m.channel = c.channel)
                               + (SELECT COUNT(*) FROM messages m WHERE m.status = 'sending' AND m.shop_id = c.shop_id
                                    AND m.channel = c.channel)), 0)::BIGINT
             FROM connectors c WHERE c.shop_id = $1 AND c.plugin_id = $2",
            &[&shop_id, &plugin_id],
        )?;
        get(&row, 0)
    }

    fn connectors(&self, shop_id: i64) -> Result<Vec<ConnectorRoute>> {
        self.query("SELECT channel, plugin_id, receipt_token FROM connectors WHERE shop_id = $1 ORDER BY channel, plugin_id", &[&shop_id])?
            .iter()
            .map(|r| Ok(ConnectorRoute { channel: get(r, 0)?, plugin_id: get(r, 1)?, receipt_token: get(r, 2)? }))
            .collect()
    }

    fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Consent>> {
        self.query(
            "SELECT channel, status, source, updated_at FROM consents WHERE shop_id = $2 AND customer_id = $1 ORDER BY channel",
            &[&customer_id, &shop_id],
        )?
        .iter()
        .map(|r| {
            Ok(Consent {
                channel: get(r, 0)?,
                status: consent_status(&get::<String>(r, 1)?),
                source: get(r, 2)?,
                updated_at: time(get(r, 3)?)?,
            })
        })
        .collect()
    }
}

impl OutboxWrite for Pg<'_> {
    fn insert(&self, m: &NewMessage<'_>) -> Result<i64> {
        let public_id = uuid::Uuid::new_v4().to_string();
        let variables = serde_json::to_string(m.variables).map_err(anyhow::Error::from)?;
        let personal = if m.personal_variables.is_empty() {
            None
        } else {
            Some(serde_json::to_string(m.personal_variables).map_err(anyhow::Error::from)?)
        };
        let row = self.query_one(
            "INSERT INTO messages (public_id, shop_id, customer_id, channel, template, variables, status, next_attempt_at, source,
               idempotency_key, created_at, updated_at, personal_variables)
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8, $9, $7, $7, $10) RETURNING id",
            &[
                &public_id,
                &m.shop_id,
                &m.customer_id,
                &m.channel,
                &m.template,
                &variables,
                &millis(m.at),
                &m.source,
                &m.idempotency_key,
                &personal,
            ],
        )?;
        get(&row, 0)
    }

    fn set_status(
        &self,
        shop_id: i64,
        row_id: i64,
        status: MessageStatus,
        reason: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.execute(
            "UPDATE messages SET status = $2, reason = $3, next_attempt_at = $4, lease_until = NULL, updated_at = $5
             WHERE shop_id = $6 AND id = $1",
            &[&row_id, &status.as_str(), &reason, &next_attempt_at.map(millis), &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn set_attempts(&self, shop_id: i64, row_id: i64, attempts: i64) -> Result<()> {
        self.execute("UPDATE messages SET attempts = $2 WHERE shop_id = $3 AND id = $1", &[&row_id, &attempts, &shop_id])?;
        Ok(())
    }

    fn claim(&self, shop_id: i64, row_id: i64, c: &ClaimRow<'_>) -> Result<()> {
        self.execute(
            "UPDATE messages SET status = 'sending', attempts = $2, plugin_id = $3, recipient = $4, lease_until = $5,
               next_attempt_at = NULL, reason = NULL, updated_at = $6, customer_id = $7 WHERE shop_id = $8 AND id = $1",
            &[&row_id, &c.attempt, &c.plugin_id, &c.recipient, &millis(c.lease_until), &millis(c.at), &c.customer_id, &shop_id],
        )?;
        Ok(())
    }

    fn unclaim(&self, shop_id: i64, row_id: i64, attempt: i64, at: DateTime<Utc>) -> Result<bool> {
        let handed = self.execute(
            "UPDATE messages SET status = 'queued', attempts = attempts - 1, next_attempt_at = $3, lease_until = NULL,
               updated_at = $3 WHERE shop_id = $4 AND id = $1 AND status = 'sending' AND attempts = $2",
            &[&row_id, &attempt, &millis(at), &shop_id],
        )?;
        Ok(handed == 1)
    }

    fn sent(&self, shop_id: i64, row_id: i64, provider_id: Option<&str>, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE messages SET status = 'sent', sent_at = $2, provider_id = $3, lease_until = NULL, reason = NULL, updated_at = $2
             WHERE shop_id = $4 AND id = $1",
            &[&row_id, &millis(at), &provider_id, &shop_id],
        )?;
        Ok(())
    }

    fn delivered(&self, shop_id: i64, row_id: i64, delivered_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE messages SET status = 'delivered', delivered_at = $2, sent_at = COALESCE(sent_at, $2), lease_until = NULL,
               updated_at = $3 WHERE shop_id = $4 AND id = $1",
            &[&row_id, &millis(delivered_at), &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn log(&self, shop_id: i64, row_id: i64, status: MessageStatus, detail: &str, at: DateTime<Utc>) -> Result<()> {
        // The line's shop is the message's.
        self.execute(
            "INSERT INTO message_events (shop_id, message_id, status, detail, at)
             SELECT m.shop_id, m.id, $2::TEXT, $3::TEXT, $4::BIGINT FROM messages m WHERE m.shop_id = $5 AND m.id = $1",
            &[&row_id, &status.as_str(), &detail, &millis(at), &shop_id],
        )?;
        Ok(())
    }

    fn put_consent(&self, shop_id: i64, customer_id: i64, channel: &str, answer: &ConsentAnswer, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (shop_id, customer_id, channel)
             DO UPDATE SET status = EXCLUDED.status, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at",
            &[&customer_id, &channel, &shop_id, &answer.status.as_str(), &answer.source, &millis(at)],
        )?;
        Ok(())
    }

    fn put_connector(&self, shop_id: i64, plugin_id: &str, channel: &str, at: DateTime<Utc>) -> Result<()> {
        let token: String = {
            let mut rng = rand::rng();
            (0..32).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect()
        };
        self.execute(
            "INSERT INTO connectors (shop_id, plugin_id, channel, receipt_token, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (shop_id, plugin_id) DO UPDATE SET channel = EXCLUDED.channel",
            &[&shop_id, &plugin_id, &channel, &token, &millis(at)],
        )?;
        Ok(())
    }
}
