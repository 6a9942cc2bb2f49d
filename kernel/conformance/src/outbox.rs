//! The outbox through the core: consent, addresses, routes, quiet hours in the shop's
//! zone and frequency caps judged when a message is claimed; idempotent enqueueing;
//! what a connector's answer and a provider's receipt do to a message; shops kept apart.
//!
//! Connectors are stood in by the cases themselves: a case claims messages as the bus
//! would and records the answer a connector would give.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_core::outbox::{self, Backoff, Claimed, OutboxPolicy, SendOutcome};
use kith_core::ports::{ClaimRow, MessageKey};
use kith_core::{Actor, Error, Storage, StorageExt};
use kith_domain::identity::IdentityKind;
use kith_domain::messaging::{
    ChannelPolicy, ConsentInput, ConsentStatus, FrequencyCap, Message, MessageStatus, MessagingSettings, QuietHours, SendRequest,
};
use kith_domain::model::OutcomeStatus;
use kith_domain::plugin::{Delivery, Receipt, ReceiptStatus};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

const SMS: &str = "sms-gateway";
/// A connector's call deadline, as the bus passes it to a claim.
const DEADLINE: Duration = Duration::from_secs(10);

/// A fresh backend with one shop in Shanghai's time zone.
fn shop(factory: &dyn Factory) -> (Box<dyn Backend>, i64) {
    let backend = factory.fresh();
    let shop = backend.create_shop("Outbox shop", "Asia/Shanghai");
    (backend, shop)
}

/// A customer of the shop with these identities; their id.
fn customer(backend: &dyn Backend, shop: i64, key: &str, identities: Value) -> i64 {
    let event = json!({"id": format!("upsert-{key}"), "type": "customer.upsert", "identities": identities});
    let report = backend.ingest(shop, vec![event], day(0, 0));
    let outcome = &report.outcomes[0];
    assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
    outcome.customer_id.expect("an accepted event names its customer")
}

/// A customer with a phone (an SMS address).
fn with_phone(backend: &dyn Backend, shop: i64, phone: &str) -> i64 {
    customer(backend, shop, phone, json!([{"kind": "phone", "value": phone}]))
}

fn request(customer: i64, channel: &str, key: &str) -> SendRequest {
    SendRequest {
        customer_id: customer,
        channel: channel.into(),
        template: "SMS_2481".into(),
        variables: [("name".to_string(), "Ann".to_string())].into(),
        idempotency_key: key.into(),
    }
}

/// Queue a message (as a journey or an operator would); it is new.
fn queue(s: &dyn Storage, shop: i64, customer: i64, channel: &str, key: &str, at: DateTime<Utc>) -> Message {
    let (message, new) = outbox::enqueue_message(s, shop, &request(customer, channel, key), "api", at).unwrap();
    assert!(new, "{key} was queued as a new message");
    message
}

/// Claim the shop's due messages of a channel as the bus does, through `connector`.
fn claim_through(s: &dyn Storage, shop: i64, channel: &str, connector: Option<&str>, at: DateTime<Utc>) -> Vec<Claimed> {
    outbox::claim(s, at, &OutboxPolicy::default(), (shop, channel), connector.map(|c| (c, DEADLINE)), 50).unwrap()
}

fn claim_sms(s: &dyn Storage, shop: i64, at: DateTime<Utc>) -> Vec<Claimed> {
    claim_through(s, shop, "sms", Some(SMS), at)
}

fn answer(s: &dyn Storage, claim: &Claimed, outcome: SendOutcome, policy: &OutboxPolicy, at: DateTime<Utc>) {
    s.write(|tx| outbox::record_send(tx, claim, &outcome, policy, at)).unwrap();
}

fn accept(s: &dyn Storage, claim: &Claimed, provider_id: &str, at: DateTime<Utc>) {
    let outcome = SendOutcome::Answered(Delivery::Accepted { provider_id: Some(provider_id.into()) });
    answer(s, claim, outcome, &OutboxPolicy::default(), at);
}

fn message(s: &dyn Storage, shop: i64, id: &str) -> Message {
    s.read(|tx| tx.outbox().message(shop, MessageKey::Public(id))).unwrap().expect("the message is in its shop")
}

fn consent(s: &dyn Storage, shop: i64, customer: i64, channel: &str, status: ConsentStatus, source: &str) {
    let input = ConsentInput { status, source: source.into() };
    outbox::put_consent(s, shop, customer, channel, &input, &Actor::cli("conformance"), day(0, 0)).unwrap();
}

fn ids(claims: &[Claimed]) -> Vec<&str> {
    claims.iter().map(|c| c.message.id.as_str()).collect()
}

fn sms_policy(policy: ChannelPolicy) -> MessagingSettings {
    MessagingSettings { channels: [("sms".to_string(), policy)].into() }
}

/// An opt-out suppresses the channel's messages, saying so and where the customer said
/// it; an opt-in again lets the next one go, to the customer's phone.
pub fn outbox_opt_out_suppresses_and_opting_in_again_sends(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    consent(s, shop, ann, "sms", ConsentStatus::OptedOut, "sms-reply");
    let first = queue(s, shop, ann, "sms", "first", day(1, 0));
    assert!(claim_sms(s, shop, day(1, 0)).is_empty());
    let first = message(s, shop, &first.id);
    assert_eq!(first.status, MessageStatus::Suppressed);
    assert_eq!(first.reason.as_deref(), Some("the customer opted out of sms (sms-reply)"));
    assert_eq!(first.history.last().map(|e| e.status), Some(MessageStatus::Suppressed));

    consent(s, shop, ann, "sms", ConsentStatus::OptedIn, "member-centre");
    let second = queue(s, shop, ann, "sms", "second", day(1, 1));
    let claimed = claim_sms(s, shop, day(1, 1));
    assert_eq!(ids(&claimed), [second.id.as_str()]);
    assert_eq!(claimed[0].message.recipient, "+8613800000001");
    assert_eq!(claimed[0].attempt, 1);
    accept(s, &claimed[0], "p-2", day(1, 1));
    // The first stays suppressed: an opt-in does not bring back what was not sent.
    assert_eq!(message(s, shop, &first.id).status, MessageStatus::Suppressed);
    // An opt-out of another channel does not touch SMS.
    consent(s, shop, ann, "email", ConsentStatus::OptedOut, "unsubscribe-link");
    let third = queue(s, shop, ann, "sms", "third", day(1, 2));
    assert_eq!(ids(&claim_sms(s, shop, day(1, 2))), [third.id.as_str()]);
}

/// A channel's message to a customer without the address it needs is suppressed; a
/// channel addressed by customer id (a webhook) always has one.
pub fn outbox_without_an_address_a_message_is_suppressed(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    backend.enable_connector(shop, "hooks", "webhook");
    let s = backend.storage();
    let bo = customer(&*backend, shop, "bo", json!([{"kind": "email", "value": "bo@example.com"}]));
    let sms = queue(s, shop, bo, "sms", "sms", day(1, 0));
    assert!(claim_sms(s, shop, day(1, 0)).is_empty());
    let sms = message(s, shop, &sms.id);
    assert_eq!((sms.status, sms.reason.as_deref()), (MessageStatus::Suppressed, Some("the customer has no phone to send sms to")));
    assert_eq!(sms.recipient, None);

    queue(s, shop, bo, "webhook", "hook", day(1, 0));
    let claimed = claim_through(s, shop, "webhook", Some("hooks"), day(1, 0));
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].message.recipient, bo.to_string());
    assert_eq!(claimed[0].plugin_id, "hooks");
}

/// A message of a channel no connector sends is retried with backoff, each try an
/// attempt, and goes once a connector is enabled; out of attempts, it fails.
pub fn outbox_without_a_connector_a_message_is_retried_then_sent(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    let queued = queue(s, shop, ann, "sms", "one", day(1, 0));
    assert!(claim_through(s, shop, "sms", None, day(1, 0)).is_empty());
    let m = message(s, shop, &queued.id);
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(m.attempts, 1);
    assert_eq!(m.reason.as_deref(), Some("no connector is enabled for channel `sms` in this shop"));
    // The default backoff: a second after the first failed attempt, then two.
    assert_eq!(m.next_attempt_at, Some(day(1, 0) + chrono::Duration::seconds(1)));
    assert!(claim_through(s, shop, "sms", None, day(1, 0)).is_empty(), "not due before its backoff ends");
    assert_eq!(message(s, shop, &queued.id).attempts, 1);
    let retried = day(1, 0) + chrono::Duration::seconds(1);
    assert!(claim_through(s, shop, "sms", None, retried).is_empty());
    assert_eq!(message(s, shop, &queued.id).next_attempt_at, Some(retried + chrono::Duration::seconds(2)));

    backend.enable_connector(shop, SMS, "sms");
    let claimed = claim_sms(s, shop, day(1, 1));
    assert_eq!(ids(&claimed), [queued.id.as_str()]);
    assert_eq!(claimed[0].attempt, 3, "the tries without a connector counted");

    // Another shop's message without a connector gives up after the policy's attempts.
    let other = backend.create_shop("Second shop", "UTC");
    let bo = with_phone(&*backend, other, "13800000002");
    let lost = queue(s, other, bo, "sms", "lost", day(1, 0));
    let policy = OutboxPolicy { max_attempts: 2, ..OutboxPolicy::default() };
    for at in [day(1, 0), day(1, 1)] {
        assert!(outbox::claim(s, at, &policy, (other, "sms"), None, 10).unwrap().is_empty());
    }
    let lost = message(s, other, &lost.id);
    assert_eq!(lost.status, MessageStatus::Failed);
    assert_eq!(lost.reason.as_deref(), Some("gave up after 2 attempts: no connector is enabled for channel `sms` in this shop"));
}

/// Quiet hours across midnight, kept in the shop's zone (Shanghai, UTC+8): a message due
/// at 22:30 there is held until 08:00 there, and goes then.
pub fn outbox_quiet_hours_across_midnight_hold_until_their_end(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let quiet = QuietHours { start: "21:00".into(), end: "08:00".into() };
    backend.put_messaging_settings(shop, &sms_policy(ChannelPolicy { quiet_hours: Some(quiet), ..ChannelPolicy::default() }));
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    // 14:30 UTC is 22:30 in Shanghai; 08:00 there the next day is 00:00 UTC.
    let late = day(1, 14) + chrono::Duration::minutes(30);
    let held = queue(s, shop, ann, "sms", "late", late);
    assert!(claim_sms(s, shop, late).is_empty());
    let m = message(s, shop, &held.id);
    assert_eq!(m.status, MessageStatus::Queued);
    assert_eq!(m.next_attempt_at, Some(day(2, 0)));
    assert_eq!(m.attempts, 0, "a hold is not an attempt");
    assert_eq!(m.reason.as_deref(), Some("held for quiet hours 21:00-08:00 (Asia/Shanghai) until 2026-03-03T00:00:00+00:00"));
    assert!(claim_sms(s, shop, day(2, 0) - chrono::Duration::minutes(1)).is_empty(), "07:59 in Shanghai: still held");
    assert_eq!(message(s, shop, &held.id).status, MessageStatus::Queued);
    let claimed = claim_sms(s, shop, day(2, 0));
    assert_eq!(ids(&claimed), [held.id.as_str()]);
    accept(s, &claimed[0], "p-1", day(2, 0));
    // Outside the quiet hours (12:00 in Shanghai) a message goes at once.
    let noon = queue(s, shop, ann, "sms", "noon", day(2, 4));
    assert_eq!(ids(&claim_sms(s, shop, day(2, 4))), [noon.id.as_str()]);
}

/// A frequency cap of two a day: a third message within 24 hours of two sent is
/// suppressed, naming the cap; one after the window has passed goes. A message being sent
/// counts, so two claimed together under a cap of one send only the first.
pub fn outbox_frequency_cap_suppresses_over_the_cap_until_the_window_passes(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let cap = FrequencyCap { max: 2, window_hours: 24 };
    backend.put_messaging_settings(shop, &sms_policy(ChannelPolicy { frequency_cap: Some(cap), ..ChannelPolicy::default() }));
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    for (key, hour) in [("one", 2), ("two", 3)] {
        queue(s, shop, ann, "sms", key, day(1, hour));
        let claimed = claim_sms(s, shop, day(1, hour));
        assert_eq!(claimed.len(), 1, "{key} goes");
        accept(s, &claimed[0], key, day(1, hour));
    }
    let third = queue(s, shop, ann, "sms", "three", day(1, 4));
    assert!(claim_sms(s, shop, day(1, 4)).is_empty());
    let third = message(s, shop, &third.id);
    assert_eq!(third.status, MessageStatus::Suppressed);
    assert_eq!(third.reason.as_deref(), Some("frequency cap: at most 2 sms message(s) per customer in 24 hours"));
    // 24 hours after the first was sent, only the second is in the window.
    let fourth = queue(s, shop, ann, "sms", "four", day(2, 2));
    assert_eq!(ids(&claim_sms(s, shop, day(2, 2))), [fourth.id.as_str()]);

    let (backend, shop) = self::shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let cap = FrequencyCap { max: 1, window_hours: 24 };
    backend.put_messaging_settings(shop, &sms_policy(ChannelPolicy { frequency_cap: Some(cap), ..ChannelPolicy::default() }));
    let s = backend.storage();
    let bo = with_phone(&*backend, shop, "13800000002");
    let first = queue(s, shop, bo, "sms", "a", day(1, 0));
    let second = queue(s, shop, bo, "sms", "b", day(1, 0));
    assert_eq!(ids(&claim_sms(s, shop, day(1, 0))), [first.id.as_str()]);
    assert_eq!(message(s, shop, &second.id).status, MessageStatus::Suppressed);
}

/// A resend with the same idempotency key answers the first message, in its shop only; the
/// key reused for another message is a conflict, and an unknown customer is refused.
pub fn outbox_enqueue_is_idempotent_by_key(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    let first = queue(s, shop, ann, "sms", "welcome", day(1, 0));
    assert_eq!(first.status, MessageStatus::Queued);
    assert_eq!(first.history.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), ["stored"]);
    let (again, new) = outbox::enqueue_message(s, shop, &request(ann, "sms", "welcome"), "api", day(1, 1)).unwrap();
    assert!(!new);
    assert_eq!(again, first);

    let mut other = request(ann, "sms", "welcome");
    other.template = "SMS_9999".into();
    let err = outbox::enqueue_message(s, shop, &other, "api", day(1, 1)).unwrap_err();
    assert!(matches!(&err, Error::Conflict(why) if why.contains("welcome")), "{err:?}");

    let err = outbox::enqueue_message(s, shop, &request(ann + 1000, "sms", "nobody"), "api", day(1, 1)).unwrap_err();
    assert!(matches!(&err, Error::Invalid(f) if f.field == "customer_id"), "{err:?}");
    let mut bad = request(ann, "sms", "bad");
    bad.channel = "SMS!".into();
    let err = outbox::enqueue_message(s, shop, &bad, "api", day(1, 1)).unwrap_err();
    assert!(matches!(&err, Error::Invalid(f) if f.field == "channel"), "{err:?}");

    // The same key in another shop is another message.
    let second = backend.create_shop("Second shop", "UTC");
    let bo = with_phone(&*backend, second, "13800000001");
    let theirs = queue(s, second, bo, "sms", "welcome", day(1, 0));
    assert_ne!(theirs.id, first.id);
    assert!(s.read(|tx| tx.outbox().message(second, MessageKey::Public(&first.id))).unwrap().is_none());
}

/// A client's send is refused, naming the field, for a channel no connector sends in the
/// shop; a resend of an accepted key answers its message even after the connector went.
pub fn outbox_a_clients_send_needs_a_connector_for_the_channel(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    let err = outbox::send_message(s, shop, &request(ann, "sms", "k1"), "api", day(1, 0)).unwrap_err();
    match &err {
        Error::Invalid(f) => {
            assert_eq!(f.field, "channel");
            assert!(f.reason.ends_with("(channels sent: none)"), "{}", f.reason);
        }
        other => panic!("expected a refusal naming the channel, got {other:?}"),
    }
    backend.enable_connector(shop, SMS, "sms");
    let err = outbox::send_message(s, shop, &request(ann, "email", "k2"), "api", day(1, 0)).unwrap_err();
    assert!(matches!(&err, Error::Invalid(f) if f.reason.ends_with("(channels sent: sms)")), "{err:?}");
    let (sent, new) = outbox::send_message(s, shop, &request(ann, "sms", "k1"), "api", day(1, 0)).unwrap();
    assert!(new);
    assert_eq!(sent.source, "api");
}

/// A connector's answer: accepted sends (with the provider's id), rejected fails, a
/// retry-after queues the message again after the provider's wait, a failed call after
/// the backoff, and out of attempts it fails. An answer to a claim taken again since is
/// ignored; a claim handed back unsent does not count its attempt.
pub fn outbox_send_outcomes_send_fail_or_retry(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    let policy = OutboxPolicy {
        max_attempts: 3,
        backoff: Backoff { base: Duration::from_secs(60), max: Duration::from_secs(90) },
        ..OutboxPolicy::default()
    };
    let t = day(1, 0);
    let ok = queue(s, shop, ann, "sms", "ok", t);
    let rejected = queue(s, shop, ann, "sms", "rejected", t);
    let later = queue(s, shop, ann, "sms", "later", t);
    let broken = queue(s, shop, ann, "sms", "broken", t);
    let claimed = claim_sms(s, shop, t);
    assert_eq!(ids(&claimed), [ok.id.as_str(), rejected.id.as_str(), later.id.as_str(), broken.id.as_str()]);
    // Each lease covers the sends before it and its own, plus the margin.
    for (n, claim) in claimed.iter().enumerate() {
        let lease = OutboxPolicy::default().lease + DEADLINE * (n as u32 + 1);
        assert_eq!(claim.lease_until, t + chrono::Duration::from_std(lease).unwrap());
    }
    answer(s, &claimed[0], SendOutcome::Answered(Delivery::Accepted { provider_id: Some("p-1".into()) }), &policy, t);
    answer(s, &claimed[1], SendOutcome::Answered(Delivery::Rejected { reason: "bad number".into() }), &policy, t);
    answer(s, &claimed[2], SendOutcome::Answered(Delivery::RetryAfter { seconds: 30 }), &policy, t);
    answer(s, &claimed[3], SendOutcome::CallFailed("trap".into()), &policy, t);

    let ok = message(s, shop, &ok.id);
    assert_eq!((ok.status, ok.provider_id.as_deref(), ok.sent_at), (MessageStatus::Sent, Some("p-1"), Some(t)));
    assert_eq!(ok.recipient.as_deref(), Some("+8613800000001"));
    assert_eq!(ok.plugin_id.as_deref(), Some(SMS));
    assert_eq!(ok.history.last().unwrap().detail, "accepted by the provider as p-1");
    let rejected = message(s, shop, &rejected.id);
    assert_eq!((rejected.status, rejected.reason.as_deref()), (MessageStatus::Failed, Some("rejected by the provider: bad number")));
    let later_m = message(s, shop, &later.id);
    assert_eq!(later_m.status, MessageStatus::Queued);
    assert_eq!(later_m.next_attempt_at, Some(t + chrono::Duration::seconds(30)));
    assert_eq!(later_m.reason.as_deref(), Some("the provider asked to retry after 30s"));
    let broken_m = message(s, shop, &broken.id);
    assert_eq!((broken_m.status, broken_m.attempts), (MessageStatus::Queued, 1));
    assert_eq!(broken_m.next_attempt_at, Some(t + chrono::Duration::seconds(60)));

    // The broken connector fails twice more: the backoff doubles up to its most, then the
    // policy's three attempts are spent.
    let t2 = t + chrono::Duration::seconds(60);
    let again = claim_sms(s, shop, t2);
    assert_eq!(ids(&again), [later.id.as_str(), broken.id.as_str()]);
    accept(s, &again[0], "p-2", t2);
    answer(s, &again[1], SendOutcome::CallFailed("trap".into()), &policy, t2);
    assert_eq!(message(s, shop, &broken.id).next_attempt_at, Some(t2 + chrono::Duration::seconds(90)));
    let t3 = t2 + chrono::Duration::seconds(90);
    let last = claim_sms(s, shop, t3);
    assert_eq!(last[0].attempt, 3);
    answer(s, &last[0], SendOutcome::CallFailed("trap".into()), &policy, t3);
    let broken_m = message(s, shop, &broken.id);
    assert_eq!((broken_m.status, broken_m.reason.as_deref()), (MessageStatus::Failed, Some("gave up after 3 attempts: trap")));

    // A sender that died: its lease runs out, the message is claimed again, and the dead
    // claim's late answer changes nothing.
    let lapsed = queue(s, shop, ann, "sms", "lapsed", t3);
    let first = claim_sms(s, shop, t3);
    let expiry = first[0].lease_until;
    assert!(claim_sms(s, shop, expiry - chrono::Duration::seconds(1)).is_empty(), "a live lease is not claimed twice");
    let second = claim_sms(s, shop, expiry);
    assert_eq!((ids(&second), second[0].attempt), (vec![lapsed.id.as_str()], 2));
    accept(s, &first[0], "stale", expiry);
    assert_eq!(message(s, shop, &lapsed.id).status, MessageStatus::Sending);
    // Handed back unsent: queued, due now, the attempt not counted.
    outbox::hand_back(s, &second, "not sent in this pass", expiry).unwrap();
    let back = message(s, shop, &lapsed.id);
    assert_eq!((back.status, back.attempts, back.next_attempt_at), (MessageStatus::Queued, 1, Some(expiry)));
    assert_eq!(back.history.last().unwrap().detail, "not sent in this pass");
    // A second hand-back of the same claim finds it gone and writes nothing.
    outbox::hand_back(s, &second, "again", expiry).unwrap();
    assert_eq!(message(s, shop, &lapsed.id).history.len(), back.history.len());
}

/// Receipts, matched by the kernel's id or the provider's among the connector's messages
/// of the shop: delivered and failed move a message that is out (even one whose send is
/// still being recorded), other receipts only add to its history, unknown ones are counted.
pub fn outbox_receipts_deliver_or_fail_what_is_out(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    let t = day(1, 0);
    let by_provider = queue(s, shop, ann, "sms", "a", t);
    let by_id = queue(s, shop, ann, "sms", "b", t);
    let overtaken = queue(s, shop, ann, "sms", "c", t);
    let claimed = claim_sms(s, shop, t);
    accept(s, &claimed[0], "p-a", t);
    accept(s, &claimed[1], "p-b", t);
    let receipt = |message_id: Option<&str>, provider_id: Option<&str>, status, at: Option<DateTime<Utc>>| Receipt {
        message_id: message_id.map(str::to_owned),
        provider_id: provider_id.map(str::to_owned),
        status,
        detail: Some("DELIVRD".into()),
        at_ms: at.map(|at| at.timestamp_millis()),
    };
    let at = t + chrono::Duration::minutes(5);
    let receipts = [
        receipt(None, Some("p-a"), ReceiptStatus::Delivered, Some(at)),
        receipt(Some(&by_id.id), None, ReceiptStatus::Failed, None),
        receipt(Some(&overtaken.id), None, ReceiptStatus::Delivered, Some(at)),
        receipt(None, Some("p-a"), ReceiptStatus::Pending, Some(at)),
        receipt(Some("no-such-message"), Some("p-unknown"), ReceiptStatus::Delivered, None),
    ];
    let now = t + chrono::Duration::minutes(10);
    let tally = outbox::apply_receipts(s, shop, SMS, &receipts, now).unwrap();
    assert_eq!((tally.matched, tally.unknown), (4, 1));

    let a = message(s, shop, &by_provider.id);
    assert_eq!((a.status, a.delivered_at, a.sent_at), (MessageStatus::Delivered, Some(at), Some(t)));
    let details: Vec<_> = a.history.iter().rev().take(2).map(|e| (e.status, e.detail.as_str())).collect();
    assert_eq!(details, [(MessageStatus::Delivered, "receipt: pending delivrd"), (MessageStatus::Delivered, "receipt: delivered DELIVRD")]);
    let b = message(s, shop, &by_id.id);
    assert_eq!((b.status, b.reason.as_deref()), (MessageStatus::Failed, Some("receipt: failed DELIVRD")));
    assert_eq!(b.history.last().unwrap().at, now, "a receipt without a time is taken at its arrival");
    let c = message(s, shop, &overtaken.id);
    assert_eq!((c.status, c.sent_at, c.delivered_at), (MessageStatus::Delivered, Some(at), Some(at)));

    // A message no longer out keeps its outcome: a second delivery report is only history.
    let again = receipt(None, Some("p-a"), ReceiptStatus::Delivered, Some(now));
    assert_eq!(outbox::apply_receipts(s, shop, SMS, &[again], now).unwrap().matched, 1);
    let a = message(s, shop, &by_provider.id);
    assert_eq!((a.status, a.delivered_at), (MessageStatus::Delivered, Some(at)));
    assert_eq!(a.history.last().unwrap().detail, "receipt: delivered delivrd");

    // Another connector, or another shop, does not match these messages.
    let other = outbox::apply_receipts(s, shop, "other-gateway", &receipts[..1], now).unwrap();
    assert_eq!((other.matched, other.unknown), (0, 1));
    let second = backend.create_shop("Second shop", "UTC");
    let elsewhere = outbox::apply_receipts(s, second, SMS, &receipts[..1], now).unwrap();
    assert_eq!((elsewhere.matched, elsewhere.unknown), (0, 1));
}

/// The outbox's ports answer within the shop they are given: another shop's id with this
/// shop's customer or message row reads nothing and writes nothing, and the message, its
/// history and the customer's consent read back with their own shop unchanged.
pub fn outbox_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    let (backend, shop) = shop(factory);
    backend.enable_connector(shop, SMS, "sms");
    let other = backend.create_shop("Second shop", "UTC");
    backend.enable_connector(other, SMS, "sms");
    let s = backend.storage();
    let ann = with_phone(&*backend, shop, "13800000001");
    with_phone(&*backend, other, "13800000001");
    consent(s, shop, ann, "sms", ConsentStatus::OptedIn, "checkout");
    let queued = queue(s, shop, ann, "sms", "mine", day(1, 0));
    let claimed = claim_sms(s, shop, day(1, 0));
    assert_eq!(ids(&claimed), [queued.id.as_str()]);
    let row = claimed[0].row_id;
    let since = day(0, 0);

    // In its own shop, each read finds what the case wrote.
    s.read(|tx| {
        let out = tx.outbox();
        assert_eq!(out.consent(shop, ann, "sms")?.map(|a| a.source), Some("checkout".to_owned()));
        assert_eq!(out.consents(shop, ann)?.len(), 1);
        assert_eq!(out.identifier(shop, ann, IdentityKind::Phone)?.as_deref(), Some("+8613800000001"));
        assert_eq!(out.sent_since(shop, ann, "sms", 0, since)?, 1, "the message being sent counts");
        assert_eq!(out.attempt_state(shop, row)?, Some((MessageStatus::Sending, 1)));
        Ok(())
    })
    .unwrap();
    // Another shop's id with this shop's customer and message reads nothing.
    s.read(|tx| {
        let out = tx.outbox();
        assert_eq!(out.consent(other, ann, "sms")?, None);
        assert!(out.consents(other, ann)?.is_empty());
        assert_eq!(out.identifier(other, ann, IdentityKind::Phone)?, None);
        assert_eq!(out.sent_since(other, ann, "sms", 0, since)?, 0);
        assert_eq!(out.attempt_state(other, row)?, None);
        Ok(())
    })
    .unwrap();

    // Nor does it write: every write of the message by its row id, with the other shop's id.
    let before = s.read(|tx| tx.outbox().message(shop, MessageKey::Row(row))).unwrap().expect("the shop's message");
    let later = day(1, 1);
    let unclaimed = s
        .write(|tx| {
            let w = tx.outbox_writer();
            w.set_status(other, row, MessageStatus::Failed, Some("not mine"), None, later)?;
            w.set_attempts(other, row, 99)?;
            let claim = ClaimRow { attempt: 7, plugin_id: "thief", recipient: "+86139", lease_until: later, customer_id: ann, at: later };
            w.claim(other, row, &claim)?;
            w.sent(other, row, Some("p-thief"), later)?;
            w.delivered(other, row, later, later)?;
            w.log(other, row, MessageStatus::Failed, "not mine", later)?;
            w.unclaim(other, row, 1, later)
        })
        .unwrap();
    assert!(!unclaimed, "another shop's id hands nothing back");
    let after = s.read(|tx| tx.outbox().message(shop, MessageKey::Row(row))).unwrap().expect("the shop's message");
    assert_eq!(after, before, "the message and its history are unchanged");
    assert_eq!(s.read(|tx| tx.outbox().attempt_state(shop, row)).unwrap(), Some((MessageStatus::Sending, 1)));

    // The same writes with the message's own shop do change it.
    s.write(|tx| {
        tx.outbox_writer().sent(shop, row, Some("p-1"), later)?;
        tx.outbox_writer().log(shop, row, MessageStatus::Sent, "accepted", later)
    })
    .unwrap();
    let sent = message(s, shop, &queued.id);
    assert_eq!((sent.status, sent.provider_id.as_deref()), (MessageStatus::Sent, Some("p-1")));
    assert_eq!(sent.history.len(), before.history.len() + 1);
}
