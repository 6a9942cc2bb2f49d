//! The outbox's rules: a message is stored before it is sent (once per idempotency
//! key), and judged when it is claimed for sending: suppressed when the customer
//! opted out of its channel or has no address for it, retried when no connector
//! sends the channel in the shop, held until the end of the channel's quiet hours in
//! the shop's time zone, suppressed over the channel's frequency cap. A connector's
//! answer sends, fails or retries it with backoff; a provider's receipt delivers or
//! fails a message that is out.
//!
//! The vocabulary (statuses, channel policies, quiet hours) is
//! `kith_domain::messaging`'s. Which groups of messages are due, and the outbox's
//! views for the API, are the backend's queries.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use kith_domain::FieldError;
pub use kith_domain::messaging::ReceiptReport;
use kith_domain::messaging::{
    ConnectorRoute, Consent, ConsentInput, ConsentStatus, Message, MessageStatus, MessagingSettings, SendRequest, recipient_kind,
};
use kith_domain::plugin::{Delivery, OutboundMessage, Receipt, ReceiptStatus};
use serde_json::json;

use crate::ports::{Attempt, ClaimRow, ConsentAnswer, DueMessage, MessageKey, NewMessage, ReadTx, SentKey, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, customers, settings};

/// The section of the shop's settings that holds its channels' policies.
const SETTINGS: &str = settings::MESSAGING;

/// How the outbox retries and how long a claim holds a message.
#[derive(Debug, Clone, Copy)]
pub struct OutboxPolicy {
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// Backoff after a failed call (the provider's retry-after wins when it gives one).
    pub backoff: Backoff,
    /// The margin of a claim's lease: a claimed message not answered for this long past the
    /// worst case of the sends before it and its own (each its connector's call deadline) is
    /// claimed again (the sender died).
    pub lease: Duration,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy { max_attempts: 8, backoff: Backoff::default(), lease: Duration::from_secs(120) }
    }
}

/// Exponential backoff: `base` after the first failure, doubling, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// The wait after the `attempt`-th failure (1-based).
    pub fn after(&self, attempt: i64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.clamp(1, 31) as u32 - 1);
        self.base.saturating_mul(factor).min(self.max)
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptTally {
    pub matched: usize,
    pub unknown: usize,
}

/// What may happen to a due message now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it through `plugin_id` to `recipient`.
    Send { plugin_id: String, recipient: String },
    /// Never send it, for this reason.
    Suppress(String),
    /// Not before this time (the end of quiet hours), for this reason.
    Hold(DateTime<Utc>, String),
    /// Count a failed attempt and try again with backoff, for this reason.
    Retry(String),
}

/// What the rules of one shop need, read once per claim.
#[derive(Debug, Clone)]
pub struct ShopRules {
    pub settings: MessagingSettings,
    /// The shop's IANA time zone as stored (named in hold reasons).
    pub zone_name: String,
}

impl ShopRules {
    pub fn load(tx: &dyn ReadTx, shop_id: i64) -> Result<ShopRules> {
        Ok(ShopRules { settings: tx.settings().messaging(shop_id)?, zone_name: tx.settings().time_zone(shop_id)? })
    }
}

/// Where a message goes on its channel: the shop's customer's phone or e-mail, or their id.
pub fn recipient(tx: &dyn ReadTx, shop_id: i64, customer_id: i64, channel: &str) -> Result<Option<String>> {
    match recipient_kind(channel) {
        None => Ok(Some(customer_id.to_string())),
        Some(kind) => tx.outbox().identifier(shop_id, customer_id, kind),
    }
}

/// What a due message (row `row_id`, to the shop's customer `customer_id`) may do at
/// `now`, in this order: an opt-out suppresses, a missing address suppresses, a channel
/// no enabled connector sends is retried, quiet hours hold until their end, and a
/// customer who had the cap's number of messages on the channel in its window (those
/// being sent counted) is not sent another.
pub fn judge(
    tx: &dyn ReadTx,
    rules: &ShopRules,
    shop_id: i64,
    customer_id: i64,
    row_id: i64,
    channel: &str,
    now: DateTime<Utc>,
) -> Result<Verdict> {
    if let Some(answer) = tx.outbox().consent(shop_id, customer_id, channel)?
        && answer.status == ConsentStatus::OptedOut
    {
        return Ok(Verdict::Suppress(format!("the customer opted out of {channel} ({})", answer.source)));
    }
    let Some(to) = recipient(tx, shop_id, customer_id, channel)? else {
        let kind = recipient_kind(channel).map(|k| k.to_string()).unwrap_or_default();
        return Ok(Verdict::Suppress(format!("the customer has no {kind} to send {channel} to")));
    };
    let Some(plugin_id) = tx.outbox().route(shop_id, channel)? else {
        return Ok(Verdict::Retry(format!("no connector is enabled for channel `{channel}` in this shop")));
    };
    let policy = rules.settings.policy(channel);
    if let Some(quiet) = &policy.quiet_hours {
        let zone_name = &rules.zone_name;
        let zone: Tz = zone_name.parse().unwrap_or(Tz::UTC);
        if let Some(until) = quiet.held_until(zone, now) {
            return Ok(Verdict::Hold(
                until,
                format!("held for quiet hours {}-{} ({zone_name}) until {}", quiet.start, quiet.end, until.to_rfc3339()),
            ));
        }
    }
    if let Some(cap) = policy.frequency_cap {
        let since = now - TimeDelta::hours(i64::from(cap.window_hours));
        let recent = tx.outbox().sent_since(shop_id, customer_id, channel, row_id, since)?;
        if recent >= i64::from(cap.max) {
            return Ok(Verdict::Suppress(format!(
                "frequency cap: at most {} {channel} message(s) per customer in {} hours",
                cap.max, cap.window_hours
            )));
        }
    }
    Ok(Verdict::Send { plugin_id, recipient: to })
}

/// Store a message for sending in the caller's transaction (`req` validated), naming the
/// variables filled from personal data (a journey's `{{customer.name}}`). A resend with
/// the same idempotency key answers the first message (`false`: not new), unless it asks
/// for another message or another customer (a conflict).
pub fn enqueue(
    tx: &dyn WriteTx,
    shop_id: i64,
    req: &SendRequest,
    personal: &[String],
    source: &str,
    now: DateTime<Utc>,
) -> Result<(Message, bool)> {
    if let Some(existing) = tx.outbox().message(shop_id, MessageKey::Idempotency(&req.idempotency_key))? {
        let same = existing.channel == req.channel && existing.template == req.template && existing.variables == req.variables;
        if !same || tx.customers().active(shop_id, existing.customer_id)? != tx.customers().active(shop_id, req.customer_id)? {
            return Err(Error::Conflict(format!("idempotency_key `{}` was already used for a different message", req.idempotency_key)));
        }
        return Ok((existing, false));
    }
    let customer_id = tx
        .customers()
        .active(shop_id, req.customer_id)?
        .ok_or_else(|| Error::Invalid(FieldError::new("customer_id", "no such customer in this shop")))?;
    let row_id = tx.outbox_writer().insert(&NewMessage {
        shop_id,
        customer_id,
        channel: &req.channel,
        template: &req.template,
        variables: &req.variables,
        personal_variables: personal,
        source,
        idempotency_key: &req.idempotency_key,
        at: now,
    })?;
    tx.outbox_writer().log(shop_id, row_id, MessageStatus::Queued, "stored", now)?;
    let message = tx.outbox().message(shop_id, MessageKey::Row(row_id))?.ok_or_else(|| anyhow::anyhow!("message {row_id} vanished"))?;
    Ok((message, true))
}

/// Store a message for sending; see [`enqueue`]. The channel is not checked against the
/// shop's connectors: a message without one is retried and then fails, as one whose
/// connector is disabled after it was queued.
pub fn enqueue_message(
    storage: &dyn Storage,
    shop_id: i64,
    req: &SendRequest,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(Message, bool)> {
    req.validate()?;
    storage.write(|tx| enqueue(tx, shop_id, req, &[], source, now))
}

/// Store a message a client asked to send: like [`enqueue_message`], but a channel that no
/// enabled connector of the shop sends is refused, naming the field, since such a message
/// could only wait and fail. A resend of an accepted key still answers its message, even if
/// the connector has been disabled since.
pub fn send_message(storage: &dyn Storage, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
    req.validate()?;
    storage.write(|tx| {
        let known = tx.outbox().message(shop_id, MessageKey::Idempotency(&req.idempotency_key))?.is_some();
        if !known && tx.outbox().route(shop_id, &req.channel)?.is_none() {
            let served = tx.outbox().served_channels(shop_id)?;
            let served = if served.is_empty() { "none".to_owned() } else { served.join(", ") };
            return Err(FieldError::new(
                "channel",
                format!("no connector is enabled for channel `{}` in this shop (channels sent: {served})", req.channel),
            )
            .into());
        }
        enqueue(tx, shop_id, req, &[], source, now)
    })
}

/// `now` plus a duration, saturating at the end of time.
fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(by).ok().and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Claim up to `limit` due messages of one shop's channel for sending, through `connector`
/// (its id and call deadline: the connector the caller found for the channel, `None` if
/// none). The shop's rules are applied in the transaction that claims: a message that may
/// not go is suppressed, held or retried instead of claimed; one that the shop's route now
/// sends through another connector is left for the next pass. A message whose customer no
/// longer exists fails.
///
/// The messages of a claim are sent one after another, each up to the connector's deadline:
/// the lease of the claim's n-th message is n deadlines past now, plus the policy's margin,
/// so that a live sender's message is never claimed again.
pub fn claim(
    storage: &dyn Storage,
    now: DateTime<Utc>,
    policy: &OutboxPolicy,
    (shop_id, channel): (i64, &str),
    connector: Option<(&str, Duration)>,
    limit: usize,
) -> Result<Vec<Claimed>> {
    // Most polls find nothing: look in a read before writing.
    if storage.read(|tx| tx.outbox().due(shop_id, channel, now, limit))?.is_empty() {
        return Ok(Vec::new());
    }
    storage.write(|tx| {
        let mut claimed = Vec::new();
        let rules = ShopRules::load(tx, shop_id)?;
        for due in tx.outbox().due(shop_id, channel, now, limit)? {
            let DueMessage { row_id, shop_id, customer_id: stored, channel, public_id, template, variables, attempts } = due;
            let Some(customer_id) = tx.customers().active(shop_id, stored)? else {
                set_status(tx, shop_id, row_id, MessageStatus::Failed, Some("the customer no longer exists"), None, now)?;
                continue;
            };
            match judge(tx, &rules, shop_id, customer_id, row_id, &channel, now)? {
                Verdict::Suppress(reason) => set_status(tx, shop_id, row_id, MessageStatus::Suppressed, Some(&reason), None, now)?,
                Verdict::Hold(until, reason) => set_status(tx, shop_id, row_id, MessageStatus::Queued, Some(&reason), Some(until), now)?,
                Verdict::Retry(reason) => retry(tx, shop_id, row_id, attempts + 1, &reason, None, policy, now)?,
                Verdict::Send { plugin_id, recipient } => {
                    let Some((_, deadline)) = connector.filter(|(expected, _)| *expected == plugin_id) else { continue };
                    let attempt = attempts + 1;
                    let sends = u32::try_from(claimed.len() + 1).unwrap_or(u32::MAX);
                    let lease_until = later(now, policy.lease.saturating_add(deadline.saturating_mul(sends)));
                    let row = ClaimRow { attempt, plugin_id: &plugin_id, recipient: &recipient, lease_until, customer_id, at: now };
                    tx.outbox_writer().claim(shop_id, row_id, &row)?;
                    let line = format!("attempt {attempt} through {plugin_id}");
                    tx.outbox_writer().log(shop_id, row_id, MessageStatus::Sending, &line, now)?;
                    claimed.push(Claimed {
                        row_id,
                        shop_id,
                        plugin_id,
                        attempt,
                        lease_until,
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
pub fn hand_back(storage: &dyn Storage, claims: &[Claimed], reason: &str, now: DateTime<Utc>) -> Result<()> {
    storage.write(|tx| {
        for claim in claims {
            if tx.outbox_writer().unclaim(claim.shop_id, claim.row_id, claim.attempt, now)? {
                tx.outbox_writer().log(claim.shop_id, claim.row_id, MessageStatus::Queued, reason, now)?;
            }
        }
        Ok(())
    })
}

/// Record the connector's answer to a claimed message, in the caller's transaction. An
/// answer for a claim that has since expired and been taken again is ignored (the later
/// attempt decides). Accepted: sent. Rejected: failed. Retry-after: queued again after the
/// provider's wait; a failed call: after the policy's backoff; either fails for good once
/// the policy's attempts are spent.
pub fn record_send(tx: &dyn WriteTx, claim: &Claimed, outcome: &SendOutcome, policy: &OutboxPolicy, now: DateTime<Utc>) -> Result<()> {
    if tx.outbox().attempt_state(claim.shop_id, claim.row_id)? != Some((MessageStatus::Sending, claim.attempt)) {
        return Ok(());
    }
    match outcome {
        SendOutcome::Answered(Delivery::Accepted { provider_id }) => {
            tx.outbox_writer().sent(claim.shop_id, claim.row_id, provider_id.as_deref(), now)?;
            let detail = match provider_id {
                Some(id) => format!("accepted by the provider as {id}"),
                None => "accepted by the provider".to_owned(),
            };
            tx.outbox_writer().log(claim.shop_id, claim.row_id, MessageStatus::Sent, &detail, now)
        }
        SendOutcome::Answered(Delivery::Rejected { reason }) => {
            let reason = format!("rejected by the provider: {reason}");
            set_status(tx, claim.shop_id, claim.row_id, MessageStatus::Failed, Some(&reason), None, now)
        }
        SendOutcome::Answered(Delivery::RetryAfter { seconds }) => {
            let reason = format!("the provider asked to retry after {seconds}s");
            let at_least = later(now, Duration::from_secs(u64::from(*seconds)));
            retry(tx, claim.shop_id, claim.row_id, claim.attempt, &reason, Some(at_least), policy, now)
        }
        SendOutcome::CallFailed(error) => retry(tx, claim.shop_id, claim.row_id, claim.attempt, error, None, policy, now),
    }
}

/// Apply receipts a connector parsed from its provider's request. A receipt names its
/// message by the kernel's id or else the provider's, among the messages that connector
/// sent in the shop. Delivered or failed moves a message that is out (sent, or still being
/// sent: a receipt may overtake the commit of the send it reports on); any other receipt is
/// only written in the message's history.
pub fn apply_receipts(
    storage: &dyn Storage,
    shop_id: i64,
    plugin_id: &str,
    receipts: &[Receipt],
    now: DateTime<Utc>,
) -> Result<ReceiptTally> {
    storage.write(|tx| {
        let mut tally = ReceiptTally::default();
        for receipt in receipts {
            let by_id = match &receipt.message_id {
                Some(id) => tx.outbox().sent_through(shop_id, plugin_id, SentKey::Public(id))?,
                None => None,
            };
            let found = match (by_id, &receipt.provider_id) {
                (Some(found), _) => Some(found),
                (None, Some(provider)) => tx.outbox().sent_through(shop_id, plugin_id, SentKey::Provider(provider))?,
                (None, None) => None,
            };
            let Some((row_id, status)) = found else {
                tally.unknown += 1;
                continue;
            };
            tally.matched += 1;
            // A time outside the calendar is taken as the receipt's arrival.
            let at = receipt.at_ms.and_then(DateTime::from_timestamp_millis).unwrap_or(now);
            let detail = receipt.detail.clone().unwrap_or_default();
            let open = matches!(status, MessageStatus::Sent | MessageStatus::Sending);
            match receipt.status {
                ReceiptStatus::Delivered if open => {
                    tx.outbox_writer().delivered(shop_id, row_id, at, now)?;
                    let line = format!("receipt: delivered {detail}");
                    tx.outbox_writer().log(shop_id, row_id, MessageStatus::Delivered, line.trim_end(), at)?;
                }
                ReceiptStatus::Failed if open => {
                    let reason = format!("receipt: failed {detail}").trim_end().to_owned();
                    set_status(tx, shop_id, row_id, MessageStatus::Failed, Some(&reason), None, at)?;
                }
                _ => {
                    let line = format!("receipt: {:?} {detail}", receipt.status).trim_end().to_lowercase();
                    tx.outbox_writer().log(shop_id, row_id, status, &line, at)?;
                }
            }
        }
        Ok(tally)
    })
}

/// Set a customer's answer for a channel, in the audit log as `consent.update`.
pub fn put_consent(
    storage: &dyn Storage,
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
    storage.write(|tx| {
        let id = customers::in_shop(tx, shop_id, customer_id)?;
        let answer = ConsentAnswer { status: input.status, source: input.source.clone() };
        tx.outbox_writer().put_consent(shop_id, id, channel, &answer, now)?;
        let detail = json!({"channel": channel, "status": input.status.as_str(), "source": input.source});
        tx.audit().record(Some(shop_id), actor, "consent.update", Some(&id.to_string()), detail, now)?;
        Ok(Consent { channel: channel.to_owned(), status: input.status, source: input.source.clone(), updated_at: now })
    })
}

/// Record that a connector plugin sends `channel` in a shop, in the caller's transaction;
/// refused while another enabled connector holds the channel.
pub fn register_connector(tx: &dyn WriteTx, shop_id: i64, plugin_id: &str, channel: &str, now: DateTime<Utc>) -> Result<()> {
    if let Some(other) = tx.outbox().route(shop_id, channel)?.filter(|p| p != plugin_id) {
        return Err(Error::Conflict(format!("channel `{channel}` is sent by {other} in this shop; disable it first")));
    }
    tx.outbox_writer().put_connector(shop_id, plugin_id, channel, now)
}

/// Move the shop's message to `status` and say why in its history.
fn set_status(
    tx: &dyn WriteTx,
    shop_id: i64,
    row_id: i64,
    status: MessageStatus,
    reason: Option<&str>,
    next: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<()> {
    tx.outbox_writer().set_status(shop_id, row_id, status, reason, next, at)?;
    tx.outbox_writer().log(shop_id, row_id, status, reason.unwrap_or(""), at)
}

/// Queue the shop's message again after its `attempts`-th attempt failed (not before
/// `at_least` when given, else after the policy's backoff), or fail it when out of attempts.
#[allow(clippy::too_many_arguments, reason = "the shop's message and its attempt's outcome")]
fn retry(
    tx: &dyn WriteTx,
    shop_id: i64,
    row_id: i64,
    attempts: i64,
    reason: &str,
    at_least: Option<DateTime<Utc>>,
    policy: &OutboxPolicy,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.outbox_writer().set_attempts(shop_id, row_id, attempts)?;
    if attempts >= policy.max_attempts {
        let reason = format!("gave up after {attempts} attempts: {reason}");
        return set_status(tx, shop_id, row_id, MessageStatus::Failed, Some(&reason), None, now);
    }
    let next = at_least.unwrap_or_else(|| later(now, policy.backoff.after(attempts)));
    set_status(tx, shop_id, row_id, MessageStatus::Queued, Some(reason), Some(next), now)
}

/// The outbox as the API and the bus reach it: messages stored and claimed for sending,
/// connectors' answers and receipts, consents, and the views that only list.
pub trait OutboxService: Storage {
    /// Store a message for sending; a resend with the same idempotency key
    /// answers the first message (`false`: not new). The channel is not
    /// checked against the shop's connectors: a message without one is
    /// retried and then fails, as one whose connector is disabled after it
    /// was queued. Clients' sends go through `send_message`.
    fn enqueue_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        enqueue_message(self.storage(), shop_id, req, source, now)
    }

    /// Store a message a client asked to send: like `enqueue_message`, but a
    /// channel that no enabled connector of the shop sends is refused, naming
    /// the field, since such a message could only wait and fail. A resend of
    /// an accepted key still answers its message, even if the connector has
    /// been disabled since.
    fn send_message(&self, shop_id: i64, req: &SendRequest, source: &str, now: DateTime<Utc>) -> Result<(Message, bool)> {
        send_message(self.storage(), shop_id, req, source, now)
    }

    fn message(&self, shop_id: i64, id: &str) -> Result<Message> {
        self.read(|tx| tx.outbox().message(shop_id, MessageKey::Public(id))?.ok_or_else(|| Error::NotFound(format!("message {id}"))))
    }

    /// A shop's messages, newest first, optionally of one customer or status.
    fn messages(
        &self,
        shop_id: i64,
        customer_id: Option<i64>,
        status: Option<MessageStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>> {
        self.read(|tx| {
            let ids = tx.outbox().list(shop_id, customer_id, status, before, limit)?;
            let mut out = Vec::with_capacity(ids.len());
            for (row, public) in ids {
                if let Some(m) = tx.outbox().message(shop_id, MessageKey::Public(&public))? {
                    out.push((row, m));
                }
            }
            Ok(out)
        })
    }

    /// The shops and channels with messages due now, the one whose oldest message has waited
    /// longest first, each with the connector enabled for it (if any). The outbox is claimed and
    /// sent a group at a time, so that one shop's slow connector holds up only its own messages.
    fn due_outbox_groups(&self, now: DateTime<Utc>) -> Result<Vec<(i64, String, Option<String>)>> {
        self.read(|tx| {
            let groups = tx.outbox().due_groups(now)?;
            groups
                .into_iter()
                .map(|(shop_id, channel)| {
                    let connector = tx.outbox().route(shop_id, &channel)?;
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
    fn claim_messages(
        &self,
        now: DateTime<Utc>,
        policy: &OutboxPolicy,
        (shop_id, channel): (i64, &str),
        connector: Option<(&str, Duration)>,
        limit: usize,
    ) -> Result<Vec<Claimed>> {
        claim(self.storage(), now, policy, (shop_id, channel), connector, limit)
    }

    /// Hand claimed messages back unsent: queued again, due now, their attempt not counted.
    /// A claim taken again since (its lease ran out) is left as it is.
    fn hand_back(&self, claims: &[Claimed], reason: &str, now: DateTime<Utc>) -> Result<()> {
        hand_back(self.storage(), claims, reason, now)
    }

    /// Record the connector's answer to a claimed message, with the call's
    /// logs. An answer for a claim that has since expired and been taken
    /// again is ignored (the later attempt decides).
    fn record_send(&self, claim: &Claimed, outcome: &SendOutcome, call: &Attempt<'_>, policy: &OutboxPolicy) -> Result<()> {
        self.write(|tx| {
            let error = match outcome {
                SendOutcome::CallFailed(e) => Some(e.as_str()),
                SendOutcome::Answered(_) => None,
            };
            tx.plugins_writer().record_attempt(call, error)?;
            record_send(tx, claim, outcome, policy, call.now)
        })
    }

    /// Apply receipts a connector parsed from its provider's request.
    fn apply_receipts(&self, shop_id: i64, plugin_id: &str, receipts: &[Receipt], now: DateTime<Utc>) -> Result<ReceiptReport> {
        let tally = apply_receipts(self.storage(), shop_id, plugin_id, receipts, now)?;
        Ok(ReceiptReport { matched: tally.matched, unknown: tally.unknown })
    }

    /// The shop and connector a receipt URL's token belongs to.
    fn connector_by_token(&self, token: &str) -> Result<Option<(i64, String)>> {
        self.read(|tx| tx.outbox().connector_by_token(token))
    }

    /// Messages of a shop waiting to go out on the channel a connector
    /// sends: queued (held for quiet hours or a retry included) or being
    /// sent. 0 for a plugin that sends no channel.
    fn outbox_backlog(&self, shop_id: i64, plugin_id: &str) -> Result<i64> {
        self.read(|tx| tx.outbox().backlog(shop_id, plugin_id))
    }

    /// A shop's connectors by channel, enabled or not.
    fn connector_routes(&self, shop_id: i64) -> Result<Vec<ConnectorRoute>> {
        self.read(|tx| tx.outbox().connectors(shop_id))
    }

    fn messaging_settings(&self, shop_id: i64) -> Result<MessagingSettings> {
        self.read(|tx| tx.settings().messaging(shop_id))
    }

    fn put_messaging_settings(&self, shop_id: i64, value: &MessagingSettings, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        value.validate()?;
        self.write(|tx| settings::put(tx, shop_id, SETTINGS, value, actor, now))
    }

    fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Consent>> {
        self.read(|tx| {
            let id = customers::in_shop(tx, shop_id, customer_id)?;
            tx.outbox().consents(shop_id, id)
        })
    }

    fn put_consent(
        &self,
        shop_id: i64,
        customer_id: i64,
        channel: &str,
        input: &ConsentInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Consent> {
        put_consent(self.storage(), shop_id, customer_id, channel, input, actor, now)
    }
}

impl<S: Storage + ?Sized> OutboxService for S {}
