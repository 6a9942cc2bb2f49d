//! What a plugin's call means for the shop: its decisions checked against the shop's other
//! plugins and applied, its key-value writes, the subscription's cursor (or the run's
//! checkpoint) moved by compare-and-set in the same transaction, so a delivery's effects
//! happen exactly once; and what a failed call leads to (a retry with backoff, a dead letter
//! after too many attempts at one batch, the breaker after too many failures in a row).
//!
//! The bus calls the plugin (through the wasm host) and checks each decision against the
//! grant; the core applies what it returns. A decision's customer must be a customer of
//! the shop (a merged one is its survivor).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_domain::FieldError;
use kith_domain::plugin::{
    CHAIN_KEY, DeadLetter, Decision, EventSnapshot, LogLevel, MAX_EVENT_CHAIN, MAX_TAGS_PER_CUSTOMER, PluginRun, SubscriptionStatus,
};
use serde_json::{Value, json};

use crate::ledger::{self, SchemePoints};
pub use crate::ports::Attempt;
use crate::ports::{FailureState, NewDeadLetter, ScoreWrite, Storage, StorageExt, TierChange, WriteTx};
use crate::tags::{self, Removable, Source, TagRemoval, TagWrite};
use crate::{Actor, Error, Result};

/// The effects of a successful call.
#[derive(Debug, Clone, Copy)]
pub struct Effects<'a> {
    pub decisions: &'a [Decision],
    pub kv_writes: &'a [(String, Option<Vec<u8>>)],
    /// The chain the call's events were in, which its tag events continue; `None` for a call
    /// on no events (a run's batch).
    pub chain: Option<&'a Chain>,
}

/// How deep in a chain of plugins answering each other a delivery's events are, per
/// customer. An event a plugin emitted, and a tag event a plugin's tag decision wrote, is 1
/// deep unless its payload says more (`chain`). What a call emits, and the tag events its tag
/// decisions write, are one deeper than the deepest such event of their customer (of the
/// batch, for an event about no customer), and past [`MAX_EVENT_CHAIN`] the call is refused:
/// two plugins answering each other's events, or adding and removing tags in answer to each
/// other's tags, fail after a few rounds instead of growing the log without end.
#[derive(Debug, Default)]
pub struct Chain {
    by_customer: HashMap<i64, u32>,
    deepest: u32,
}

impl Chain {
    /// The chain of a batch of events, each with its customer.
    pub fn of<'a>(events: impl Iterator<Item = (i64, &'a EventSnapshot)>) -> Chain {
        let mut chain = Chain::default();
        for (customer, event) in events {
            // A customer of the batch is as deep as its own events, 0 when none is in a chain.
            chain.by_customer.entry(customer).or_default();
            let tag = event.kind == "tag.added" || event.kind == "tag.removed";
            if !tag && !event.kind.starts_with("plugin.") {
                continue;
            }
            let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else { continue };
            // Tags set by hand or by a journey start no chain.
            if tag && !payload.get("source").and_then(Value::as_str).is_some_and(Source::is_plugin) {
                continue;
            }
            let depth = payload.get(CHAIN_KEY).and_then(Value::as_u64).map_or(1, |d| d.clamp(1, u64::from(u32::MAX)) as u32);
            let held = chain.by_customer.entry(customer).or_default();
            *held = (*held).max(depth);
            chain.deepest = chain.deepest.max(depth);
        }
        chain
    }

    /// The depth of what a call writes about `customer`: one deeper than its events, or than
    /// the batch's deepest for a customer the batch has no event of (or no customer).
    pub fn depth(&self, customer: Option<i64>) -> u32 {
        1 + customer.and_then(|c| self.by_customer.get(&c).copied()).unwrap_or(self.deepest)
    }

    /// Write each emitted event's depth into its payload (from 2 on; a first emission carries
    /// none), or refuse the call when an event would go too deep. Only the kernel writes
    /// `chain`: what a plugin wrote there is replaced, or removed from a first emission. Tag
    /// decisions are held to the same limit when they are applied ([`apply`]), and only
    /// when they would change a tag: a tag the plugin set already writes nothing.
    pub fn mark(&self, decisions: &mut [Decision]) -> std::result::Result<(), String> {
        for decision in decisions {
            let Decision::EmitEvent { customer_id, event_type, payload } = decision else { continue };
            let depth = self.depth(*customer_id);
            if depth > MAX_EVENT_CHAIN {
                return Err(too_deep(&format!("event `{event_type}`"), depth));
            }
            if let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(payload)
                && (depth > 1 || map.contains_key(CHAIN_KEY))
            {
                if depth > 1 {
                    map.insert(CHAIN_KEY.into(), depth.into());
                } else {
                    map.remove(CHAIN_KEY);
                }
                *payload = Value::Object(map).to_string();
            }
        }
        Ok(())
    }
}

/// Why a write past [`MAX_EVENT_CHAIN`] is refused.
fn too_deep(what: &str, depth: u32) -> String {
    format!(
        "{what} refused: it would be the {depth}th in a chain of events plugins emitted in answer to each other (at most {MAX_EVENT_CHAIN})"
    )
}

/// When to retry, when to give up on a batch, when to trip the breaker.
#[derive(Debug, Clone, Copy)]
pub struct FailurePolicy {
    /// Attempts at one batch before it becomes a dead letter.
    pub max_attempts: i64,
    /// Consecutive failures that trip the breaker.
    pub breaker_threshold: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            max_attempts: 5,
            breaker_threshold: 10,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl FailurePolicy {
    /// Exponential backoff after the `attempt`-th failure (1-based).
    pub fn backoff(&self, attempt: i64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.clamp(1, 31) as u32 - 1);
        self.backoff_base.saturating_mul(factor).min(self.backoff_max)
    }
}

/// What a recorded failure led to.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureOutcome {
    /// The batch is retried at this time.
    Retry { at: DateTime<Utc> },
    /// The batch became a dead letter; the cursor moved past it.
    DeadLettered { dead_letter: i64 },
    /// The breaker tripped; the plugin is off for this shop until enabled again.
    Tripped { dead_letter: Option<i64> },
}

/// One batch of a run: customers after `from` up to `to`.
#[derive(Debug, Clone, Copy)]
pub struct PluginRunStep {
    pub run_id: i64,
    /// The checkpoint the batch started after.
    pub from: i64,
    /// The last customer id of the batch.
    pub to: i64,
    pub processed: i64,
    /// The batch was the last one.
    pub finished: bool,
}

/// Apply the checked decisions and key-value writes of plugin `plugin_id`, in the caller's
/// transaction. Tags are checked here (another plugin's namespace is refused, failing the
/// call; a tag beyond the plugin's cap per customer is dropped and the drop logged) and
/// written by [`tags`], with the same effects as a merchant's or a journey's.
pub fn apply(tx: &dyn WriteTx, shop_id: i64, plugin_id: &str, effects: &Effects<'_>, now: DateTime<Utc>) -> Result<()> {
    // Tag namespaces other plugins declared (`tag-prefix`), read once when tags are added.
    let foreign_prefixes = if effects.decisions.iter().any(|d| matches!(d, Decision::AddTag { .. })) {
        tx.plugins().foreign_tag_prefixes(plugin_id)?
    } else {
        Vec::new()
    };
    // Tags refused because their customer holds the most of this plugin's, by customer.
    let mut refused_tags: BTreeMap<i64, usize> = BTreeMap::new();
    let source = Source::Plugin(plugin_id);
    // Depths are by the customer the decision names, as the chain's events name them.
    let depth = |decision: &Decision| effects.chain.map_or(1, |chain| chain.depth(decision.customer_id()));
    for (i, decision) in effects.decisions.iter().enumerate() {
        let customer = match decision.customer_id() {
            Some(id) => Some(tx.customers().active(shop_id, id)?.ok_or_else(|| {
                Error::Invalid(FieldError::new(
                    format!("decisions[{i}].customer_id"),
                    format!("customer {id} is not a customer of this shop"),
                ))
            })?),
            None => None,
        };
        let customer_id = customer.unwrap_or_default();
        match decision {
            Decision::AddTag { tag, reason, .. } => {
                if let Some((owner, prefix)) = foreign_prefixes.iter().find(|(_, prefix)| tag.starts_with(prefix.as_str())) {
                    return Err(Error::Invalid(FieldError::new(
                        format!("decisions[{i}].tag"),
                        format!("tags starting with `{prefix}` belong to the plugin {owner}"),
                    )));
                }
                // A tag the plugin set already is no new tag: neither the cap nor the chain's
                // limit holds it back.
                let held = tx.tags().held_by(shop_id, customer_id, tag, plugin_id)?;
                // That one decision is refused, the rest of the call commits: a customer
                // holding the most tags is no fault of this call's.
                if !held && tx.tags().count_by(shop_id, customer_id, plugin_id)? >= MAX_TAGS_PER_CUSTOMER as i64 {
                    *refused_tags.entry(customer_id).or_default() += 1;
                    continue;
                }
                let chain = depth(decision);
                if chain > MAX_EVENT_CHAIN && !held {
                    return Err(Error::Invalid(FieldError::new(
                        format!("decisions[{i}].tag"),
                        too_deep(&format!("adding tag `{tag}`"), chain),
                    )));
                }
                let write = TagWrite { shop_id, customer_id, tag, source, reason: Some(reason), at: now, chain };
                tags::add(tx, &write)?;
            }
            Decision::RemoveTag { tag, reason, .. } => {
                let chain = depth(decision);
                if chain > MAX_EVENT_CHAIN && tx.tags().held_by(shop_id, customer_id, tag, plugin_id)? {
                    return Err(Error::Invalid(FieldError::new(
                        format!("decisions[{i}].tag"),
                        too_deep(&format!("removing tag `{tag}`"), chain),
                    )));
                }
                let removal = TagRemoval { shop_id, customer_id, tag, which: Removable::Of(source), reason: Some(reason), at: now, chain };
                tags::remove(tx, &removal)?;
            }
            Decision::SetScore { model, value, label, explanation, .. } => {
                let score = ScoreWrite { shop_id, customer_id, model, value: *value, label: label.as_deref(), explanation, at: now };
                tx.scores_writer().upsert(&score)?;
                tx.segment_marks().customer_changed(shop_id, customer_id)?;
            }
            Decision::AwardPoints { points, source_key, reason, expires_at_ms, .. } => {
                let p = SchemePoints { shop_id, customer_id, points: *points, source: plugin_id, source_key, reason, at: now };
                ledger::award(tx, &p, expires_at_ms.and_then(DateTime::from_timestamp_millis))?;
            }
            Decision::ClawBackPoints { points, source_key, reason, .. } => {
                let p = SchemePoints { shop_id, customer_id, points: *points, source: plugin_id, source_key, reason, at: now };
                ledger::claw_back(tx, &p)?;
            }
            Decision::ChangeTier { tier, reason, .. } => {
                let from = tx.tiers_writer().tier(shop_id, customer_id)?;
                if from.as_deref() != Some(tier.as_str()) {
                    let change = TierChange { shop_id, customer_id, from: from.as_deref(), to: tier, reason, source: plugin_id, at: now };
                    tx.tiers_writer().change(&change)?;
                    tx.segment_marks().customer_changed(shop_id, customer_id)?;
                    // What reads the tier (AIPL's loyalty stage, segments, journeys) learns of the change
                    // now, not at its next daily run.
                    let detail = json!({"from": from, "to": tier, "reason": reason});
                    tx.event_log().append(shop_id, "tier.changed", Some(customer_id), &detail, now, Some(plugin_id))?;
                }
            }
            Decision::EmitEvent { event_type, payload, .. } => {
                let mut payload = serde_json::from_str(payload).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut payload {
                    map.insert("plugin".into(), Value::String(plugin_id.to_owned()));
                }
                tx.event_log().append(shop_id, event_type, customer, &payload, now, Some(plugin_id))?;
            }
        }
    }
    // Segments ranking customers by a model scored here may have moved for customers not scored.
    let scored: BTreeSet<String> = effects
        .decisions
        .iter()
        .filter_map(|d| match d {
            Decision::SetScore { model, .. } => Some(model.clone()),
            _ => None,
        })
        .collect();
    if !scored.is_empty() {
        tx.segment_marks().ranks_moved(shop_id, &scored, now)?;
    }
    if !refused_tags.is_empty() {
        let refused: usize = refused_tags.values().sum();
        let customers: Vec<String> = refused_tags.keys().take(10).map(i64::to_string).collect();
        let more = if refused_tags.len() > customers.len() { ", …" } else { "" };
        let message = format!(
            "{refused} tags refused: customers {}{more} hold {MAX_TAGS_PER_CUSTOMER} tags of this plugin, the most one plugin may put on a customer",
            customers.join(", "),
        );
        tx.plugins_writer().log(shop_id, plugin_id, LogLevel::Warn, &message, now)?;
    }
    for (key, value) in effects.kv_writes {
        tx.plugins_writer().put_kv(shop_id, plugin_id, key, value.as_deref())?;
    }
    Ok(())
}

/// Commit a delivery of the events `from + 1 ..= to`: move the cursor from `from` (refused as
/// stale when it is elsewhere or the subscription is not enabled, applying nothing), apply
/// the effects, keep the attempt's logs; all in one transaction.
pub fn commit_delivery(storage: &dyn Storage, attempt: &Attempt<'_>, from: i64, to: i64, effects: &Effects<'_>) -> Result<()> {
    storage.write(|tx| {
        if !tx.plugins_writer().commit_cursor(attempt.shop_id, attempt.plugin_id, from, to)? {
            return Err(Error::Conflict("the subscription moved on; this delivery is stale".into()));
        }
        apply(tx, attempt.shop_id, attempt.plugin_id, effects, attempt.now)?;
        tx.plugins_writer().record_attempt(attempt, None)
    })
}

/// Move the cursor past events the plugin does not take, with nothing to apply.
pub fn advance_cursor(storage: &dyn Storage, shop_id: i64, plugin_id: &str, from: i64, to: i64) -> Result<()> {
    storage.write(|tx| tx.plugins_writer().skip_cursor(shop_id, plugin_id, from, to))
}

/// Record a failed delivery of the events `from + 1 ..= to`: retry later, dead-letter the
/// batch after `max_attempts` (the cursor moves past it), trip the breaker after
/// `breaker_threshold` consecutive failures (`plugin.tripped` in the log, and the audit).
pub fn record_failure(
    storage: &dyn Storage,
    attempt: &Attempt<'_>,
    from: i64,
    to: i64,
    error: &str,
    policy: &FailurePolicy,
) -> Result<FailureOutcome> {
    let now = attempt.now;
    storage.write(|tx| {
        tx.plugins_writer().record_attempt(attempt, Some(error))?;
        let sub = tx.plugins().subscription(attempt.shop_id, attempt.plugin_id)?;
        if sub.cursor != from || sub.status != SubscriptionStatus::Enabled {
            return Err(Error::Conflict("the subscription moved on; this failure is stale".into()));
        }
        let attempts = sub.attempts + 1;
        let consecutive = sub.consecutive_failures + 1;
        let mut dead_letter = None;
        let (mut cursor, mut batch_attempts) = (from, attempts);
        if attempts >= policy.max_attempts {
            let letter = NewDeadLetter {
                shop_id: attempt.shop_id,
                plugin_id: attempt.plugin_id,
                version: &sub.version,
                first_seq: from + 1,
                last_seq: to,
                attempts,
                error,
                at: now,
            };
            dead_letter = Some(tx.plugins_writer().add_dead_letter(&letter)?);
            cursor = to;
            batch_attempts = 0;
        }
        let tripped = consecutive >= policy.breaker_threshold;
        let retry_at = (dead_letter.is_none() && !tripped).then(|| now + policy.backoff(attempts));
        let state = FailureState {
            cursor,
            attempts: batch_attempts,
            consecutive_failures: consecutive,
            retry_at,
            last_error: error,
            tripped,
            at: now,
        };
        tx.plugins_writer().set_failure_state(attempt.shop_id, attempt.plugin_id, &state)?;
        if tripped {
            let detail = json!({"plugin": attempt.plugin_id, "consecutive_failures": consecutive, "error": error});
            tx.event_log().append(attempt.shop_id, "plugin.tripped", None, &detail, now, None)?;
            tx.audit().record(Some(attempt.shop_id), &Actor::cli("kernel"), "plugin.trip", Some(attempt.plugin_id), detail, now)?;
            return Ok(FailureOutcome::Tripped { dead_letter });
        }
        Ok(match (dead_letter, retry_at) {
            (Some(id), _) => FailureOutcome::DeadLettered { dead_letter: id },
            (None, Some(at)) => FailureOutcome::Retry { at },
            (None, None) => unreachable!("a failure that neither trips nor dead-letters is retried"),
        })
    })
}

/// Keep the logs and the call record of a call that changed nothing else (a receipt parse).
pub fn record_call(storage: &dyn Storage, attempt: &Attempt<'_>, error: Option<&str>) -> Result<()> {
    storage.write(|tx| tx.plugins_writer().record_attempt(attempt, error))
}

/// Apply a successful re-drive of a dead letter and mark it, once (audited).
pub fn commit_redrive(storage: &dyn Storage, attempt: &Attempt<'_>, dead_letter: i64, effects: &Effects<'_>) -> Result<DeadLetter> {
    storage.write(|tx| {
        if !tx.plugins_writer().mark_redriven(attempt.shop_id, attempt.plugin_id, dead_letter, attempt.now)? {
            return Err(Error::Conflict(format!("dead letter {dead_letter} was already re-driven")));
        }
        apply(tx, attempt.shop_id, attempt.plugin_id, effects, attempt.now)?;
        tx.plugins_writer().record_attempt(attempt, None)?;
        let detail = json!({"dead_letter": dead_letter});
        tx.audit().record(Some(attempt.shop_id), &Actor::cli("kernel"), "plugin.redrive", Some(attempt.plugin_id), detail, attempt.now)?;
        tx.plugins().dead_letter(attempt.shop_id, attempt.plugin_id, dead_letter)
    })
}

/// Count a failed re-drive of a dead letter.
pub fn record_redrive_failure(storage: &dyn Storage, attempt: &Attempt<'_>, dead_letter: i64, error: &str) -> Result<()> {
    storage.write(|tx| {
        tx.plugins_writer().record_attempt(attempt, Some(error))?;
        tx.plugins_writer().redrive_failed(attempt.shop_id, dead_letter, error)
    })
}

/// Apply one batch of a run and move its checkpoint (refused as stale when it moved); the
/// last batch closes the run, and then the plugin's scores the run did not write again (nor
/// a delivery since the run began) are removed: a customer who no longer qualifies, or a
/// fit the model refused, leaves no stale score for segments and journeys to read.
pub fn commit_run_batch(storage: &dyn Storage, attempt: &Attempt<'_>, step: &PluginRunStep, effects: &Effects<'_>) -> Result<PluginRun> {
    let PluginRunStep { run_id, from, to, processed, finished } = *step;
    storage.write(|tx| {
        if !tx.plugins_writer().advance_run(attempt.shop_id, run_id, from, to, processed, finished, attempt.now)? {
            // Another shop's run (or another plugin's) is not found; the plugin's, moved on, is stale.
            tx.plugins().run(attempt.shop_id, attempt.plugin_id, run_id)?;
            return Err(Error::Conflict(format!("run {run_id} moved on; this batch is stale")));
        }
        apply(tx, attempt.shop_id, attempt.plugin_id, effects, attempt.now)?;
        tx.plugins_writer().record_attempt(attempt, None)?;
        let run = tx.plugins().run(attempt.shop_id, attempt.plugin_id, run_id)?;
        if finished {
            let deleted = tx.scores_writer().delete_older(attempt.shop_id, attempt.plugin_id, run.created_at)?;
            for customer_id in &deleted.customers {
                tx.segment_marks().customer_changed(attempt.shop_id, *customer_id)?;
            }
            if !deleted.models.is_empty() {
                tx.segment_marks().ranks_moved(attempt.shop_id, &deleted.models, attempt.now)?;
            }
        }
        Ok(run)
    })
}

/// Record a failed batch of a run: retry with backoff, or fail the run after `max_attempts`.
pub fn record_run_failure(
    storage: &dyn Storage,
    attempt: &Attempt<'_>,
    run_id: i64,
    error: &str,
    policy: &FailurePolicy,
) -> Result<PluginRun> {
    let now = attempt.now;
    storage.write(|tx| {
        tx.plugins_writer().record_attempt(attempt, Some(error))?;
        let run = tx.plugins().run(attempt.shop_id, attempt.plugin_id, run_id)?;
        let attempts = run.attempts + 1;
        let failed = attempts >= policy.max_attempts;
        tx.plugins_writer().run_failed(attempt.shop_id, run_id, attempts, error, now + policy.backoff(attempts), failed, now)?;
        tx.plugins().run(attempt.shop_id, attempt.plugin_id, run_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_does_not_write_its_events_chain() {
        let emit = |customer_id, payload: &str| Decision::EmitEvent {
            customer_id: Some(customer_id),
            event_type: "plugin.x".into(),
            payload: payload.into(),
        };
        let payload = |d: &Decision| match d {
            Decision::EmitEvent { payload, .. } => serde_json::from_str::<serde_json::Value>(payload).unwrap(),
            _ => unreachable!(),
        };
        // A first emission: a forged chain is removed, and cannot trip the plugins that answer.
        let mut decisions = vec![emit(1, r#"{"chain": 99, "a": 1}"#)];
        Chain::default().mark(&mut decisions).unwrap();
        assert_eq!(payload(&decisions[0]), serde_json::json!({"a": 1}));
        let event = EventSnapshot {
            seq: 1,
            kind: "plugin.x".into(),
            customer_id: Some(1),
            payload: payload(&decisions[0]).to_string(),
            order_id: None,
            created_at_ms: 0,
        };
        let answered = Chain::of([(1, &event)].into_iter());
        let mut answer = vec![emit(1, r#"{"chain": 1}"#)];
        answered.mark(&mut answer).expect("an answer to a first emission is 2 deep");
        assert_eq!(payload(&answer[0]), serde_json::json!({"chain": 2}), "the bus's depth replaces the plugin's");
    }

    #[test]
    fn tag_events_a_plugin_wrote_continue_its_chain() {
        let event = |kind: &str, payload: serde_json::Value| EventSnapshot {
            seq: 1,
            kind: kind.into(),
            customer_id: Some(1),
            payload: payload.to_string(),
            order_id: None,
            created_at_ms: 0,
        };
        // Tags set by hand or by a journey start no chain; a plugin's tag is 1 deep, or what it says.
        let manual = event("tag.added", serde_json::json!({"tag": "a", "source": "manual"}));
        let journey = event("tag.added", serde_json::json!({"tag": "a", "source": "journey:3"}));
        assert_eq!(Chain::of([(1, &manual), (1, &journey)].into_iter()).depth(Some(1)), 1);
        let first = event("tag.removed", serde_json::json!({"tag": "a", "source": "rule"}));
        assert_eq!(Chain::of([(1, &first)].into_iter()).depth(Some(1)), 2);
        let deep = event("tag.added", serde_json::json!({"tag": "a", "source": "rule", "chain": 4}));
        let order = EventSnapshot { customer_id: Some(2), ..event("order.paid", serde_json::json!({"order_id": "T1"})) };
        let chain = Chain::of([(1, &deep), (2, &order)].into_iter());
        assert_eq!(chain.depth(Some(1)), 5);
        let mut tags = vec![Decision::AddTag { customer_id: 1, tag: "x".into(), reason: String::new() }];
        assert!(chain.mark(&mut tags).is_ok(), "tag decisions are held to the limit when applied, if they change a tag");
        assert_eq!(chain.depth(Some(2)), 1, "another customer of the batch is as deep as its own events");
        assert_eq!(chain.depth(Some(3)), 5, "a customer the batch has no event of is as deep as the deepest");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = FailurePolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_secs(1));
        assert_eq!(policy.backoff(4), Duration::from_secs(8));
        assert_eq!(policy.backoff(40), Duration::from_secs(300));
    }
}
