//! Sending the outbox through channel connectors, and handing providers'
//! receipts to the connector that parses them.
//!
//! The store claims due messages in a transaction that applies the shop's
//! rules (consent, frequency cap, quiet hours); the bus calls the connector
//! for each claimed message and records its answer. A sender that dies
//! mid-call leaves a claim that expires, and the message is sent again with
//! the same id, which providers use as the idempotency key.

use kith_domain::FieldError;
use kith_domain::plugin::{InboundRequest, SubscriptionStatus};
use kith_host::{CallError, Input, Output};
use kith_store::{Attempt, Claimed, ReceiptReport, SendOutcome, StoreError};

use crate::{Bus, BusError, Result};

impl Bus {
    /// Claim and send the messages due now; returns how many were attempted.
    pub(crate) fn send_due(&self) -> Result<usize> {
        let claimed = self.store.claim_messages(self.clock.now(), &self.config.outbox, self.config.outbox_batch)?;
        for claim in &claimed {
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
    fn call_failed(&self, claim: &Claimed, error: String) -> kith_store::Result<()> {
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
            self.store.connector_by_token(token)?.ok_or_else(|| StoreError::NotFound("receipt endpoint".to_owned()))?;
        let sub = self.store.subscription(shop_id, &plugin_id)?;
        if sub.status != SubscriptionStatus::Enabled {
            return Err(StoreError::NotFound("receipt endpoint".to_owned()).into());
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
