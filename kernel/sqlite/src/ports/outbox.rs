//! The outbox's port on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{ClaimRow, ConsentAnswer, DueMessage, MessageKey, NewMessage, OutboxRead, OutboxWrite, SentKey};
use kith_domain::identity::IdentityKind;
use kith_domain::messaging::{ConnectorRoute, Consent, ConsentStatus, Message, MessageStatus};
use rand::Rng;
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, core, sql};
use crate::messages::{CLAIM_DUE, DUE_GROUPS, load_message};
use crate::sql::Sql;
use crate::{from_ms, to_ms};

impl OutboxRead for Sql<'_> {
    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> CoreResult<Option<ConsentAnswer>> {
        sql(self.0.prepare_cached("SELECT status, source FROM consents WHERE customer_id = ?1 AND channel = ?2 AND shop_id = ?3").and_then(
            |mut s| {
                s.query_row(params![customer_id, channel, shop_id], |r| {
                    let status: String = r.get(0)?;
                    let status = if status == ConsentStatus::OptedOut.as_str() { ConsentStatus::OptedOut } else { ConsentStatus::OptedIn };
                    Ok(ConsentAnswer { status, source: r.get(1)? })
                })
                .optional()
            },
        ))
    }

    fn identifier(&self, shop_id: i64, customer_id: i64, kind: IdentityKind) -> CoreResult<Option<String>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT value FROM identities WHERE customer_id = ?1 AND kind = ?2 AND shop_id = ?3 ORDER BY created_at LIMIT 1",
            )
            .and_then(|mut s| s.query_row(params![customer_id, kind.to_string(), shop_id], |r| r.get(0)).optional()))
    }

    fn route(&self, shop_id: i64, channel: &str) -> CoreResult<Option<String>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT c.plugin_id FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
                 WHERE c.shop_id = ?1 AND c.channel = ?2 AND s.status = 'enabled'",
            )
            .and_then(|mut s| s.query_row(params![shop_id, channel], |r| r.get(0)).optional()))
    }

    fn served_channels(&self, shop_id: i64) -> CoreResult<Vec<String>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT DISTINCT c.channel FROM connectors c JOIN subscriptions s ON s.shop_id = c.shop_id AND s.plugin_id = c.plugin_id
                 WHERE c.shop_id = ?1 AND s.status = 'enabled' ORDER BY c.channel",
            )
            .and_then(|mut s| s.query_map([shop_id], |r| r.get(0))?.collect()))
    }

    fn sent_since(&self, shop_id: i64, customer_id: i64, channel: &str, except: i64, since: DateTime<Utc>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "SELECT COUNT(*) FROM messages WHERE customer_id = ?1 AND channel = ?2 AND id != ?3 AND +shop_id = ?5
                   AND ((sent_at IS NOT NULL AND sent_at > ?4) OR status = 'sending')",
            )
            .and_then(|mut s| s.query_row(params![customer_id, channel, except, to_ms(since), shop_id], |r| r.get(0))))
    }

    fn message(&self, shop_id: i64, key: MessageKey<'_>) -> CoreResult<Option<Message>> {
        core(match key {
            MessageKey::Row(id) => load_message(self.0, shop_id, "id = ?2", &id),
            MessageKey::Public(id) => load_message(self.0, shop_id, "public_id = ?2", &id),
            MessageKey::Idempotency(key) => load_message(self.0, shop_id, "idempotency_key = ?2", &key),
        })
    }

    fn due(&self, shop_id: i64, channel: &str, now: DateTime<Utc>, limit: usize) -> CoreResult<Vec<DueMessage>> {
        sql(self.0.prepare_cached(CLAIM_DUE).and_then(|mut s| {
            s.query_map(params![to_ms(now), shop_id, channel, limit as i64], |r| {
                let variables: String = r.get(6)?;
                Ok(DueMessage {
                    row_id: r.get(0)?,
                    shop_id: r.get(1)?,
                    customer_id: r.get(2)?,
                    channel: r.get(3)?,
                    public_id: r.get(4)?,
                    template: r.get(5)?,
                    variables: serde_json::from_str(&variables).unwrap_or_default(),
                    attempts: r.get(7)?,
                })
            })?
            .collect()
        }))
    }

    fn attempt_state(&self, shop_id: i64, row_id: i64) -> CoreResult<Option<(MessageStatus, i64)>> {
        sql(self.0.prepare_cached("SELECT status, attempts FROM messages WHERE id = ?1 AND shop_id = ?2").and_then(|mut s| {
            s.query_row([row_id, shop_id], |r| {
                Ok((MessageStatus::parse(&r.get::<_, String>(0)?).unwrap_or(MessageStatus::Failed), r.get(1)?))
            })
            .optional()
        }))
    }

    fn sent_through(&self, shop_id: i64, plugin_id: &str, key: SentKey<'_>) -> CoreResult<Option<(i64, MessageStatus)>> {
        let (text, first, second) = match key {
            SentKey::Public(id) => {
                ("SELECT id, status FROM messages WHERE shop_id = ?1 AND public_id = ?2 AND plugin_id = ?3", id, plugin_id)
            }
            SentKey::Provider(id) => {
                ("SELECT id, status FROM messages WHERE shop_id = ?1 AND plugin_id = ?2 AND provider_id = ?3", plugin_id, id)
            }
        };
        sql(self.0.prepare_cached(text).and_then(|mut s| {
            s.query_row(params![shop_id, first, second], |r| {
                // A status unknown to this kernel counts as sent, as receipts always read it.
                Ok((r.get(0)?, MessageStatus::parse(&r.get::<_, String>(1)?).unwrap_or(MessageStatus::Sent)))
            })
            .optional()
        }))
    }

    fn list(
        &self,
        shop_id: i64,
        customer_id: Option<i64>,
        status: Option<MessageStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> CoreResult<Vec<(i64, String)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT id, public_id FROM messages WHERE shop_id = ?1 AND id < ?2 AND (?3 IS NULL OR customer_id = ?3)
                   AND (?4 IS NULL OR status = ?4) ORDER BY id DESC LIMIT ?5",
            )
            .and_then(|mut s| {
                s.query_map(params![shop_id, before.unwrap_or(i64::MAX), customer_id, status.map(|s| s.as_str()), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            }))
    }

    fn due_groups(&self, now: DateTime<Utc>) -> CoreResult<Vec<(i64, String)>> {
        sql(self.0.prepare_cached(DUE_GROUPS).and_then(|mut s| s.query_map([to_ms(now)], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()))
    }

    fn connector_by_token(&self, token: &str) -> CoreResult<Option<(i64, String)>> {
        sql(self
            .0
            .prepare_cached("SELECT shop_id, plugin_id FROM connectors WHERE receipt_token = ?1")
            .and_then(|mut s| s.query_row([token], |r| Ok((r.get(0)?, r.get(1)?))).optional()))
    }

    fn backlog(&self, shop_id: i64, plugin_id: &str) -> CoreResult<i64> {
        // One count per status, so that each reads its partial index.
        sql(self
            .0
            .prepare_cached(
                "SELECT COALESCE(SUM((SELECT COUNT(*) FROM messages m WHERE m.status = 'queued' AND m.shop_id = c.shop_id
                                        AND m.channel = c.channel)
                                   + (SELECT COUNT(*) FROM messages m WHERE m.status = 'sending' AND m.shop_id = c.shop_id
                                        AND m.channel = c.channel)), 0)
                 FROM connectors c WHERE c.shop_id = ?1 AND c.plugin_id = ?2",
            )
            .and_then(|mut s| s.query_row(params![shop_id, plugin_id], |r| r.get(0))))
    }

    fn connectors(&self, shop_id: i64) -> CoreResult<Vec<ConnectorRoute>> {
        sql(self.0.prepare_cached("SELECT channel, plugin_id, receipt_token FROM connectors WHERE shop_id = ?1 ORDER BY channel").and_then(
            |mut s| {
                s.query_map([shop_id], |r| Ok(ConnectorRoute { channel: r.get(0)?, plugin_id: r.get(1)?, receipt_token: r.get(2)? }))?
                    .collect()
            },
        ))
    }

    fn consents(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<Consent>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT channel, status, source, updated_at FROM consents WHERE customer_id = ?1 AND shop_id = ?2 ORDER BY channel",
            )
            .and_then(|mut s| {
                s.query_map([customer_id, shop_id], |r| {
                    let status: String = r.get(1)?;
                    Ok(Consent {
                        channel: r.get(0)?,
                        status: if status == "opted_out" { ConsentStatus::OptedOut } else { ConsentStatus::OptedIn },
                        source: r.get(2)?,
                        updated_at: from_ms(r.get(3)?),
                    })
                })?
                .collect()
            }))
    }
}

impl OutboxWrite for Sql<'_> {
    fn insert(&self, m: &NewMessage<'_>) -> CoreResult<i64> {
        let public_id = uuid::Uuid::new_v4().to_string();
        let variables = serde_json::to_string(m.variables).map_err(anyhow::Error::from)?;
        let personal = if m.personal_variables.is_empty() {
            None
        } else {
            Some(serde_json::to_string(m.personal_variables).map_err(anyhow::Error::from)?)
        };
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO messages (public_id, shop_id, customer_id, channel, template, variables, status, next_attempt_at, source,
                   idempotency_key, created_at, updated_at, personal_variables)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?7, ?7, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    public_id,
                    m.shop_id,
                    m.customer_id,
                    m.channel,
                    m.template,
                    variables,
                    to_ms(m.at),
                    m.source,
                    m.idempotency_key,
                    personal
                ])
            }))?;
        Ok(self.0.last_insert_rowid())
    }

    fn set_status(
        &self,
        shop_id: i64,
        row_id: i64,
        status: MessageStatus,
        reason: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE messages SET status = ?2, reason = ?3, next_attempt_at = ?4, lease_until = NULL, updated_at = ?5
                 WHERE id = ?1 AND shop_id = ?6",
            )
            .and_then(|mut s| s.execute(params![row_id, status.as_str(), reason, next_attempt_at.map(to_ms), to_ms(at), shop_id])))?;
        Ok(())
    }

    fn set_attempts(&self, shop_id: i64, row_id: i64, attempts: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE messages SET attempts = ?2 WHERE id = ?1 AND shop_id = ?3")
            .and_then(|mut s| s.execute(params![row_id, attempts, shop_id])))?;
        Ok(())
    }

    fn claim(&self, shop_id: i64, row_id: i64, c: &ClaimRow<'_>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE messages SET status = 'sending', attempts = ?2, plugin_id = ?3, recipient = ?4, lease_until = ?5,
                   next_attempt_at = NULL, reason = NULL, updated_at = ?6, customer_id = ?7 WHERE id = ?1 AND shop_id = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![row_id, c.attempt, c.plugin_id, c.recipient, to_ms(c.lease_until), to_ms(c.at), c.customer_id, shop_id])
            }))?;
        Ok(())
    }

    fn unclaim(&self, shop_id: i64, row_id: i64, attempt: i64, at: DateTime<Utc>) -> CoreResult<bool> {
        let handed = sql(self
            .0
            .prepare_cached(
                "UPDATE messages SET status = 'queued', attempts = attempts - 1, next_attempt_at = ?3, lease_until = NULL,
                   updated_at = ?3 WHERE id = ?1 AND shop_id = ?4 AND status = 'sending' AND attempts = ?2",
            )
            .and_then(|mut s| s.execute(params![row_id, attempt, to_ms(at), shop_id])))?;
        Ok(handed == 1)
    }

    fn sent(&self, shop_id: i64, row_id: i64, provider_id: Option<&str>, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE messages SET status = 'sent', sent_at = ?2, provider_id = ?3, lease_until = NULL, reason = NULL, updated_at = ?2
                 WHERE id = ?1 AND shop_id = ?4",
            )
            .and_then(|mut s| s.execute(params![row_id, to_ms(at), provider_id, shop_id])))?;
        Ok(())
    }

    fn delivered(&self, shop_id: i64, row_id: i64, delivered_at: DateTime<Utc>, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE messages SET status = 'delivered', delivered_at = ?2, sent_at = COALESCE(sent_at, ?2), lease_until = NULL,
                   updated_at = ?3 WHERE id = ?1 AND shop_id = ?4",
            )
            .and_then(|mut s| s.execute(params![row_id, to_ms(delivered_at), to_ms(at), shop_id])))?;
        Ok(())
    }

    fn log(&self, shop_id: i64, row_id: i64, status: MessageStatus, detail: &str, at: DateTime<Utc>) -> CoreResult<()> {
        // The history table has no shop: the line is written only when the message is the shop's.
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO message_events (message_id, status, detail, at)
                 SELECT m.id, ?2, ?3, ?4 FROM messages m WHERE m.id = ?1 AND m.shop_id = ?5",
            )
            .and_then(|mut s| s.execute(params![row_id, status.as_str(), detail, to_ms(at), shop_id])))?;
        Ok(())
    }

    fn put_consent(&self, shop_id: i64, customer_id: i64, channel: &str, answer: &ConsentAnswer, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, channel) DO UPDATE SET status = excluded.status, source = excluded.source, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![customer_id, channel, shop_id, answer.status.as_str(), answer.source, to_ms(at)])))?;
        Ok(())
    }

    fn put_connector(&self, shop_id: i64, plugin_id: &str, channel: &str, at: DateTime<Utc>) -> CoreResult<()> {
        let token: String = {
            let mut rng = rand::rng();
            (0..32).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect()
        };
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO connectors (shop_id, plugin_id, channel, receipt_token, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (shop_id, plugin_id) DO UPDATE SET channel = excluded.channel",
            )
            .and_then(|mut s| s.execute(params![shop_id, plugin_id, channel, token, to_ms(at)])))?;
        Ok(())
    }
}
