//! Sending the outbox through channel connectors, and handing providers'
//! receipts to the connector that parses them.
//!
//! The outbox is sent a group at a time: the due messages of one shop's
//! channel, which one connector sends. A pass of a worker takes the group
//! served least recently (the one whose oldest message has waited longest
//! among those never served), unless another worker is sending it, so that one
//! shop's slow connector holds up its own messages only and a busy group does
//! not starve the others. A group whose connector may run long (a deadline
//! above the host's default, as for deliveries) shares long calls' budget of
//! all workers but one; a group of a fast connector never waits for it.
//!
//! The store claims a group's due messages in a transaction that applies the
//! shop's rules (consent, frequency cap, quiet hours); the bus calls the
//! connector for each claimed message and records its answer. A pass starts no
//! send after its connector's deadline has gone by since it began, and hands
//! the rest of its claim back: it holds a worker about as long as one call. A
//! claim's lease covers the worst case of its sends, so a live sender's message
//! is never claimed twice; a sender that dies mid-call leaves a claim that
//! expires, and the message is sent again with the same id, which providers use
//! as the idempotency key.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kith_core::delivery::Attempt;
use kith_core::outbox::{Claimed, ReceiptReport, SendOutcome};
use kith_core::prelude::*;
use kith_domain::FieldError;
use kith_domain::plugin::{InboundRequest, SubscriptionStatus};
use kith_host::{CallError, Input, Output};

use crate::{Bus, BusError, Long, Result, Slot};

/// A shop's channel: what the outbox is claimed and sent by.
type Group = (i64, String);

/// Groups forgotten once this many were served, but for those due now.
const TURNS_KEPT: usize = 4096;

/// Which groups workers are sending now, and when each was last served.
#[derive(Debug, Default)]
pub(crate) struct Senders {
    sending: Mutex<HashSet<Group>>,
    turns: Mutex<Turns>,
}

#[derive(Debug, Default)]
struct Turns {
    last: u64,
    /// The turn each group was last served in; a group never served has none (it goes first).
    served: HashMap<Group, u64>,
}

impl Senders {
    /// Due groups in the order a pass tries them: least recently served first, and among
    /// groups never served (or served in the same turn), as given (oldest due first).
    fn in_turn(&self, mut due: Vec<(i64, String, Option<String>)>) -> Vec<(i64, String, Option<String>)> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        if turns.served.len() > TURNS_KEPT {
            let due: HashSet<(i64, &str)> = due.iter().map(|(shop, channel, _)| (*shop, channel.as_str())).collect();
            turns.served.retain(|(shop, channel), _| due.contains(&(*shop, channel.as_str())));
        }
        due.sort_by_key(|(shop, channel, _)| turns.served.get(&(*shop, channel.clone())).copied().unwrap_or(0));
        due
    }

    fn served(&self, group: &Group) {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.last += 1;
        let turn = turns.last;
        turns.served.insert(group.clone(), turn);
    }

    /// The group for this worker alone, unless another worker is sending it.
    fn hold(&self, group: &Group) -> Option<Sending<'_>> {
        let fresh = self.sending.lock().unwrap_or_else(|p| p.into_inner()).insert(group.clone());
        fresh.then(|| Sending { senders: self, group: group.clone() })
    }
}

/// A group held by one worker; released when dropped, also on a panic.
struct Sending<'a> {
    senders: &'a Senders,
    group: Group,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.senders.sending.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.group);
    }
}

impl Bus {
    /// Claim and send the due messages of one group (see the module's comment); returns how
    /// many were claimed. Groups whose claim holds nothing to send (every message held,
    /// suppressed or without a connector) are passed over for the next.
    pub(crate) fn send_due(&self) -> Result<usize> {
        let groups = self.store.due_outbox_groups(self.clock.now())?;
        let fast = self.host.config().default_timeout;
        let mut failed = None;
        for (shop_id, channel, connector) in self.outbox.in_turn(groups) {
            let group = (shop_id, channel);
            let Some(_sending) = self.outbox.hold(&group) else { continue };
            let deadline = match connector.as_deref().map(|plugin_id| self.connector_deadline(shop_id, plugin_id)) {
                None => fast,
                Some(Ok(deadline)) => deadline,
                Some(Err(err)) => {
                    tracing::error!(shop = shop_id, channel = %group.1, error = %err, "reading a connector failed; its messages wait");
                    continue;
                }
            };
            let _slot = if deadline > fast {
                let Some(slot) = Slot::take(&self.long_work, self.config.workers, Long::Pass) else { continue };
                slot
            } else {
                Slot { held: None }
            };
            self.outbox.served(&group);
            // One group's storage error does not hold back the groups after it in this pass;
            // it is returned once they had their turn, so the caller backs off as before.
            match self.send_group(&group, connector.as_deref().map(|plugin_id| (plugin_id, deadline)), deadline) {
                Ok(0) => {}
                Ok(sent) => return Ok(sent),
                Err(err) => {
                    tracing::error!(shop = shop_id, channel = %group.1, error = %err, "sending a group failed; the next groups go on");
                    failed.get_or_insert(err);
                }
            }
        }
        failed.map_or(Ok(0), Err)
    }

    /// The call deadline of a shop's connector.
    fn connector_deadline(&self, shop_id: i64, plugin_id: &str) -> Result<Duration> {
        let sub = self.store.subscription(shop_id, plugin_id)?;
        let installed = self.store.plugin_version(plugin_id, &sub.version)?;
        Ok(self.host.limits_for(&installed.manifest).timeout)
    }

    fn send_group(&self, (shop_id, channel): &Group, connector: Option<(&str, Duration)>, deadline: Duration) -> Result<usize> {
        let policy = &self.config.outbox;
        let claimed = self.store.claim_messages(self.clock.now(), policy, (*shop_id, channel), connector, self.config.outbox_batch)?;
        let started = Instant::now();
        for (i, claim) in claimed.iter().enumerate() {
            // A pass starts no send once its connector's deadline has gone by: it holds its
            // worker about as long as one call. Nor is a send started that could outlast its
            // claim's lease (a pass slowed down past the lease's margin): another process could
            // claim the message while it is sent.
            let outlasts = chrono::Duration::from_std(deadline)
                .ok()
                .and_then(|d| self.clock.now().checked_add_signed(d))
                .is_none_or(|end| end > claim.lease_until);
            let late = i > 0 && started.elapsed() >= deadline;
            if late || outlasts {
                let reason = "not sent in this pass (its time ran out); queued again";
                if let Err(err) = self.store.hand_back(&claimed[i..], reason, self.clock.now()) {
                    tracing::error!(shop = shop_id, channel = %channel, error = %err, "handing messages back failed; their leases will run out");
                }
                break;
            }
            // One message's failure is that message's: the rest of the claim goes out. When the
            // storage itself is unavailable nothing can be recorded, and the claim's lease brings
            // the message back once it has run out.
            if let Err(err) = self.send(claim) {
                tracing::error!(shop = claim.shop_id, message = %claim.message.id, error = %err, "sending a message failed");
                let unavailable = matches!(&err, BusError::Store(e) if e.unavailable().is_some());
                if !unavailable && let Err(err) = self.call_failed(claim, format!("storage failure: {err}")) {
                    tracing::error!(message = %claim.message.id, error = %err, "recording a failed send failed; the claim's lease will run out");
                }
            }
        }
        Ok(claimed.len())
    }

    /// Record that the connector could not be called for a claimed message (retried with backoff).
    fn call_failed(&self, claim: &Claimed, error: String) -> kith_core::Result<()> {
        let attempt =
            Attempt { shop_id: claim.shop_id, plugin_id: &claim.plugin_id, logs: &[], duration: Default::default(), now: self.clock.now() };
        self.store.record_send(claim, &SendOutcome::CallFailed(error), &attempt, &self.config.outbox)
    }

    fn send(&self, claim: &Claimed) -> Result<()> {
        let sub = self.store.subscription(claim.shop_id, &claim.plugin_id)?;
        let policy = &self.config.outbox;
        let failed = |error: String| self.call_failed(claim, error);
        if sub.status != SubscriptionStatus::Enabled {
            failed(format!("connector {} is {}", claim.plugin_id, sub.status.as_str()))?;
            return Ok(());
        }
        let installed = self.store.plugin_version(&claim.plugin_id, &sub.version)?;
        let plugin = match self.plugin(&installed) {
            Ok(plugin) => plugin,
            Err(err) => return Ok(failed(err.to_string())?),
        };
        let ctx = self.context(claim.shop_id)?;
        let report = self.host.call(&plugin, self.env(&sub), Input::Send(ctx, claim.message.clone()));
        let outcome = match &report.output {
            Ok(Output::Delivery(delivery)) => SendOutcome::Answered(delivery.clone()),
            Ok(other) => SendOutcome::CallFailed(format!("unexpected output {other:?}")),
            Err(err) => SendOutcome::CallFailed(err.to_string()),
        };
        if let SendOutcome::CallFailed(error) = &outcome {
            tracing::warn!(shop = claim.shop_id, plugin = %claim.plugin_id, message = %claim.message.id, "send failed: {error}");
        }
        let attempt = Attempt {
            shop_id: claim.shop_id,
            plugin_id: &claim.plugin_id,
            logs: &report.logs,
            duration: report.duration,
            now: self.clock.now(),
        };
        self.store.record_send(claim, &outcome, &attempt, policy)?;
        Ok(())
    }

    /// A provider posted to a shop's receipt URL: the connector parses the
    /// request into receipts, which update their messages.
    pub fn receive_receipts(&self, token: &str, request: InboundRequest) -> Result<ReceiptReport> {
        let (shop_id, plugin_id) =
            self.store.connector_by_token(token)?.ok_or_else(|| kith_core::Error::NotFound("receipt endpoint".to_owned()))?;
        let sub = self.store.subscription(shop_id, &plugin_id)?;
        if sub.status != SubscriptionStatus::Enabled {
            return Err(kith_core::Error::NotFound("receipt endpoint".to_owned()).into());
        }
        let installed = self.store.plugin_version(&plugin_id, &sub.version)?;
        let plugin = self.plugin(&installed)?;
        let ctx = self.context(shop_id)?;
        let report = self.host.call(&plugin, self.env(&sub), Input::ParseReceipt(ctx, request));
        let attempt = Attempt { shop_id, plugin_id: &plugin_id, logs: &report.logs, duration: report.duration, now: self.clock.now() };
        match report.output {
            Ok(Output::Receipts(receipts)) => {
                self.store.record_call(&attempt, None)?;
                Ok(self.store.apply_receipts(shop_id, &plugin_id, &receipts, self.clock.now())?)
            }
            Ok(other) => Err(BusError::Invalid(FieldError::new("plugin", format!("unexpected output {other:?}")))),
            Err(err) => {
                self.store.record_call(&attempt, Some(&err.to_string()))?;
                match err {
                    CallError::Guest(kith_domain::plugin::GuestError::Invalid(reason)) => Err(FieldError::new("body", reason).into()),
                    other => Err(BusError::Call(other)),
                }
            }
        }
    }
}
