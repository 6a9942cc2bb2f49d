//! The outbox as the API and the bus reach it: the store's public methods, which
//! delegate the rules (what a message may do when it is claimed, what a send's
//! outcome or a receipt does to it) to `kith_core::outbox`, and the queries that
//! only list: which groups of messages are due, the messages, consents and
//! connectors of a shop, a connector's backlog.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_core::outbox;
pub use kith_core::outbox::{Claimed, OutboxPolicy, SendOutcome};
use kith_core::ports::OutboxRead;
use kith_domain::messaging::{
    ConnectorRoute, Consent, ConsentInput, ConsentStatus, Message, MessageEvent, MessageStatus, MessagingSettings, SendRequest,
};
use kith_domain::plugin::Receipt;
use rusqlite::{Connection, OptionalExtension, params};

use crate::attempts::record_attempt;
use crate::customers::customer_in_shop;
use crate::sql::Sql;
use crate::{Actor, Attempt, Result, Store, StoreError, from_ms, settings, to_ms};

/// A group's messages due at `?1`, `?4` of them: expired leases (their `next_attempt_at` is
/// NULL) first, then queued messages in the order they fell due. Each part seeks its group in
/// its index and reads no further than it needs; only the expired leases (no more than were
/// claimed) are sorted.
pub(crate) const CLAIM_DUE: &str = "
    SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
     WHERE status = 'queued' AND shop_id = ?2 AND channel = ?3 AND next_attempt_at <= ?1
    UNION ALL
    SELECT id, shop_id, customer_id, channel, public_id, template, variables, attempts, next_attempt_at FROM messages
     WHERE status = 'sending' AND shop_id = ?2 AND channel = ?3 AND lease_until <= ?1
    ORDER BY next_attempt_at, id LIMIT ?4";

const MESSAGE_COLUMNS: &str = "id, public_id, customer_id, channel, template, variables, status, reason, recipient, plugin_id, provider_id,
    attempts, next_attempt_at, source, idempotency_key, created_at, sent_at, delivered_at, personal_variables";

/// A message of the shop, with its history, found by `filter` (over `?2`).
pub(crate) fn load_message(conn: &Connection, shop_id: i64, filter: &str, key: &dyn rusqlite::ToSql) -> Result<Option<Message>> {
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

/// What a batch of receipts matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReceiptReport {
    pub matched: usize,
    pub unknown: usize,
}

/// Record that a connector plugin sends `channel` in a shop, in the caller's transaction;
/// refused while another enabled connector holds the channel.
pub(crate) fn register_connector(conn: &Connection, shop_id: i64, plugin_id: &str, channel: &str, now: i64) -> Result<()> {
    Ok(outbox::register_connector(&Sql(conn), shop_id, plugin_id, channel, from_ms(now))?)
}

/// Store a message for sending in the caller's transaction (`req` validated), naming the
/// variables filled from personal data (a journey's `{{customer.name}}`), which reads mask
/// for keys without `pii:read`; a resend with the same idempotency key answers the first
/// message (`false`: not new).
pub(crate) fn enqueue_personal(
    tx: &Connection,
    shop_id: i64,
    req: &SendRequest,
    personal: &[String],
    source: &str,
    now: DateTime<Utc>,
) -> Result<(Message, bool)> {
    Ok(outbox::enqueue(&Sql(tx), shop_id, req, personal, source, now)?)
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

impl Store {
    /// Store a message for sending; a resend with the same idempotency key
    /// answers the first message (`false`: not new). The channel is not
    /// checked against the shop's connectors: a message without one is
    /// retried and then fails, as one whose connector is disabled after it
    /// was queued. Clients' sends go through `send_message`.
    pub fn enqueue_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        Ok(outbox::enqueue_message(self, shop_id, req, source, now)?)
    }

    /// Store a message a client asked to send: like `enqueue_message`, but a
    /// channel that no enabled connector of the shop sends is refused, naming
    /// the field, since such a message could only wait and fail. A resend of
    /// an accepted key still answers its message, even if the connector has
    /// been disabled since.
    pub fn send_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        Ok(outbox::send_message(self, shop_id, req, source, now)?)
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
                    let connector = Sql(conn).route(shop_id, &channel)?;
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
        Ok(outbox::claim(self, now, policy, (shop_id, channel), connector, limit)?)
    }

    /// Hand claimed messages back unsent: queued again, due now, their attempt not counted.
    /// A claim taken again since (its lease ran out) is left as it is.
    pub fn hand_back(&self, claims: &[Claimed], reason: &str, now: DateTime<Utc>) -> Result<()> {
        Ok(outbox::hand_back(self, claims, reason, now)?)
    }

    /// Record the connector's answer to a claimed message, with the call's
    /// logs. An answer for a claim that has since expired and been taken
    /// again is ignored (the later attempt decides).
    pub fn record_send(&self, claim: &Claimed, outcome: &SendOutcome, call: &Attempt<'_>, policy: &OutboxPolicy) -> Result<()> {
        self.write(|tx| {
            let error = match outcome {
                SendOutcome::CallFailed(e) => Some(e.as_str()),
                SendOutcome::Answered(_) => None,
            };
            record_attempt(tx, call, error)?;
            Ok(outbox::record_send(&Sql(tx), claim, outcome, policy, call.now)?)
        })
    }

    /// Apply receipts a connector parsed from its provider's request.
    pub fn apply_receipts(&self, shop_id: i64, plugin_id: &str, receipts: &[Receipt], now: DateTime<Utc>) -> Result<ReceiptReport> {
        let tally = outbox::apply_receipts(self, shop_id, plugin_id, receipts, now)?;
        Ok(ReceiptReport { matched: tally.matched, unknown: tally.unknown })
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
        Ok(outbox::put_consent(self, shop_id, customer_id, channel, input, actor, now)?)
    }
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
