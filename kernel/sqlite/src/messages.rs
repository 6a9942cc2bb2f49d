//! The outbox on SQLite: the statements of the outbox's port (`ports/outbox.rs`) worth
//! reading on their own, with the plans they must keep (which groups of messages are due,
//! a group's due messages), and a message with its history. The rules are
//! `kith_core::outbox`'s (`OutboxService`).

use std::collections::BTreeMap;

use kith_domain::messaging::{Message, MessageEvent, MessageStatus};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, from_ms};

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
        .prepare_cached(
            "SELECT e.at, e.status, e.detail FROM message_events e JOIN messages m ON m.id = e.message_id
             WHERE e.message_id = ?1 AND m.shop_id = ?2 ORDER BY e.id",
        )?
        .query_map([row_id, shop_id], |r| {
            Ok(MessageEvent {
                at: from_ms(r.get(0)?),
                status: MessageStatus::parse(&r.get::<_, String>(1)?).unwrap_or(MessageStatus::Failed),
                detail: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(message))
}

/// The groups (shop, channel) with messages due at `?1`, oldest due first, then by shop and
/// channel. Each status's distinct groups are stepped through over its index, one seek from
/// a group to the next (the next channel of the shop, else the first of the next shop); each
/// group's oldest due message is then one seek more. Nothing reads a group's backlog: a
/// campaign of 200,000 queued messages costs what one message costs.
pub(crate) const DUE_GROUPS: &str = "
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
