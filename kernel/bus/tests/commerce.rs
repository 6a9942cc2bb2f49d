//! Loyalty and messaging over a real store and the real first-party
//! components: the tiered-points scheme against the ledger, and the
//! connectors against a provider on loopback, with the test clock.

use kith_core::prelude::*;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kith_bus::Clock;
use kith_domain::coupons::CouponTemplateInput;
use kith_domain::loyalty::{LedgerKind, LoyaltySettings, RedeemRequest, RefundPolicy, RewardInput};
use kith_domain::messaging::{
    ChannelPolicy, ConsentInput, ConsentStatus, FrequencyCap, Message, MessageStatus, MessagingSettings, QuietHours, SendRequest,
};
use kith_domain::plugin::InboundRequest;
use kith_provider::{Answer, Provider};
use kith_test_plugins as plugins;
use serde_json::{Value, json};
use support::{World, actor, world};

mod support;

impl World {
    fn order(&self, id: &str, amount: i64) {
        self.ingest(json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
            "order": {"id": id, "amount": amount, "paid_at": self.clock.now()}}));
    }

    fn refund(&self, order: &str, amount: i64) {
        self.ingest(json!({"id": format!("r-{order}-{amount}"), "type": "order.refunded",
            "refund": {"order_id": order, "amount": amount, "refunded_at": self.clock.now()}}));
    }

    fn customer(&self) -> i64 {
        self.store.list_customers(self.shop, &Default::default(), 0, 1).unwrap()[0].id
    }

    fn balance(&self) -> i64 {
        self.store.points_account(self.shop, self.customer()).unwrap().balance
    }
}

fn tiers() -> Value {
    json!({"expiry_days": 30, "tiers": [
        {"name": "silver", "threshold": 0},
        {"name": "gold", "threshold": 100_000, "multiplier": 2},
    ]})
}

#[test]
fn points_earn_redeem_refund_and_expire_as_the_ledger_says() {
    let w = world();
    w.enable(&plugins::TIERED_POINTS, tiers(), None);
    let template = w
        .store
        .create_coupon_template(
            w.shop,
            &serde_json::from_value::<CouponTemplateInput>(json!({"name": "5 off", "face_value": 500, "valid_days": 30})).unwrap(),
            &actor(),
            w.clock.now(),
        )
        .unwrap();
    let reward = RewardInput {
        name: "5 yuan coupon".into(),
        description: None,
        points_cost: 60,
        coupon_template_id: template.id,
        stock: Some(5),
        active: true,
    };
    let reward = w.store.create_reward(w.shop, &reward, &actor(), w.clock.now()).unwrap();

    w.order("o1", 10_000);
    assert_eq!(w.balance(), 100, "100 yuan, one point per yuan");
    let c = w.customer();
    let redeem = RedeemRequest { reward_id: reward.id, idempotency_key: "req-1".into() };
    let (redemption, created) = w.store.redeem(w.shop, c, &redeem, w.clock.now()).unwrap();
    assert!(created);
    assert_eq!((redemption.balance_after, redemption.coupon.face_value), (40, 500));
    w.later(chrono::Duration::days(1));
    w.order("o2", 20_000);
    assert_eq!(w.balance(), 240);
    w.refund("o2", 20_000);
    assert_eq!(w.balance(), 40, "a full refund takes back all 200 points of o2");
    w.refund("o1", 5_000);
    assert_eq!(w.balance(), -10, "half of o1's 100 points; 60 of them were spent, so the customer owes 10");
    let account = w.store.points_account(w.shop, c).unwrap();
    assert_eq!((account.debt, account.available), (10, 0));
    w.later(chrono::Duration::days(1));
    w.order("o3", 10_000);
    assert_eq!(w.balance(), 90, "the new points pay the debt first");
    let open = w.store.points_account(w.shop, c).unwrap().expiring;
    assert_eq!(open.iter().map(|e| e.points).collect::<Vec<_>>(), vec![90], "only o3's batch is open, with 90 left");
    w.later(chrono::Duration::days(31));
    assert_eq!(w.balance(), 0, "o3's batch expired 30 days after payment");

    let kinds: Vec<(LedgerKind, i64)> =
        w.store.points_ledger(w.shop, c, None, 100).unwrap().into_iter().rev().map(|e| (e.kind, e.points)).collect();
    use LedgerKind::*;
    assert_eq!(kinds, vec![(Earn, 100), (Redeem, -60), (Earn, 200), (Clawback, -200), (Clawback, -50), (Earn, 100), (Expire, -90)]);
    assert!(w.store.points_mismatches(w.shop).unwrap().is_empty(), "stored batches are what a replay of the ledger gives");

    // The same events again change nothing: every entry has its source key.
    w.store.ingest(w.shop, vec![json!({"id": "o1", "type": "order.paid", "order": {"id": "o1", "amount": 10_000}})], &actor()).unwrap();
    w.bus.start_run(w.shop, "tiered-points", &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(w.store.points_ledger(w.shop, c, None, 100).unwrap().len(), 7);
}

#[test]
fn a_forgiving_shop_writes_the_debt_off() {
    let w = world();
    w.enable(&plugins::TIERED_POINTS, tiers(), None);
    w.store.put_loyalty_settings(w.shop, &LoyaltySettings { refund_policy: RefundPolicy::Forgive }, &actor(), w.clock.now()).unwrap();
    w.order("o1", 10_000);
    let c = w.customer();
    let adjust = kith_domain::loyalty::PointsAdjustment {
        points: -80,
        reason: "manual correction".into(),
        idempotency_key: "adj-1".into(),
        expires_at: None,
    };
    w.store.adjust_points(w.shop, c, &adjust, &actor(), w.clock.now()).unwrap();
    w.refund("o1", 10_000);
    assert_eq!(w.balance(), 0);
    let last = &w.store.points_ledger(w.shop, c, None, 1).unwrap()[0];
    assert_eq!((last.kind, last.points), (LedgerKind::Adjust, 80), "the 80 owed are forgiven: {last:?}");
    assert!(w.store.points_mismatches(w.shop).unwrap().is_empty());
}

#[test]
fn an_adjustments_key_answers_its_own_adjustment_only() {
    // Review of issue 26: the key's lookup ignored the customer, so reusing it for a second
    // customer answered 200 with the first customer's entry (and its reason), posting nothing.
    let w = world();
    w.order("o1", 10_000);
    w.ingest(json!({"id": "u2", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13800000002"}]}));
    let customers = w.store.list_customers(w.shop, &Default::default(), 0, 2).unwrap();
    let (first, second) = (customers[0].id, customers[1].id);
    let adjust = |points: i64| kith_domain::loyalty::PointsAdjustment {
        points,
        reason: "goodwill".into(),
        idempotency_key: "adj-1".into(),
        expires_at: None,
    };
    let (entry, created) = w.store.adjust_points(w.shop, first, &adjust(50), &actor(), w.clock.now()).unwrap();
    assert!(created);
    let (again, created) = w.store.adjust_points(w.shop, first, &adjust(50), &actor(), w.clock.now()).unwrap();
    assert_eq!((again.id, created), (entry.id, false), "a resend answers the first entry");
    for (customer, points) in [(second, 50), (first, 70)] {
        let err = w.store.adjust_points(w.shop, customer, &adjust(points), &actor(), w.clock.now()).unwrap_err();
        assert!(matches!(&err, kith_core::Error::Conflict(m) if m.contains("already used for another adjustment")), "{err}");
    }
    assert_eq!(w.store.points_account(w.shop, second).unwrap().balance, 0);
}

#[test]
fn tiers_rise_with_spend_and_fall_only_at_a_review() {
    let w = world();
    w.enable(&plugins::TIERED_POINTS, tiers(), None);
    w.order("o1", 10_000);
    let c = w.customer();
    assert_eq!(w.store.points_account(w.shop, c).unwrap().tier.as_deref(), Some("silver"));
    w.order("o2", 95_000);
    let account = w.store.points_account(w.shop, c).unwrap();
    assert_eq!(account.tier.as_deref(), Some("gold"), "1050 yuan in 12 months reaches gold at once");
    assert!(account.tier_history[0].reason.contains("reached gold"), "{:?}", account.tier_history);
    w.order("o3", 10_000);
    assert_eq!(w.balance(), 100 + 950 + 200, "gold doubles the points of o3");

    // The spend leaves the window in November 2027, but tiers only fall at a review (1 January).
    w.clock.set(Utc.with_ymd_and_hms(2027, 12, 15, 0, 0, 0).unwrap());
    w.bus.start_run(w.shop, "tiered-points", &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(w.store.points_account(w.shop, c).unwrap().tier.as_deref(), Some("gold"), "no review since the upgrade");
    w.clock.set(Utc.with_ymd_and_hms(2028, 1, 2, 0, 0, 0).unwrap());
    w.bus.start_run(w.shop, "tiered-points", &actor()).unwrap();
    w.bus.drain().unwrap();
    let account = w.store.points_account(w.shop, c).unwrap();
    assert_eq!(account.tier.as_deref(), Some("silver"));
    assert_eq!(account.tier_history.iter().map(|t| t.to.as_str()).collect::<Vec<_>>(), vec!["silver", "gold", "silver"]);
    assert!(account.tier_history[0].reason.starts_with("review"), "{:?}", account.tier_history[0]);
}

#[test]
fn a_tier_reached_in_a_batch_multiplies_the_batchs_later_orders() {
    let w = world();
    w.enable(&plugins::TIERED_POINTS, tiers(), None);
    let order = |id: &str, amount: i64| {
        json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": "13800000001"}],
            "order": {"id": id, "amount": amount, "paid_at": w.clock.now()}})
    };
    // Both orders reach the scheme in one delivery: the second earns as it would have in a delivery of its own.
    let report = w.store.ingest(w.shop, vec![order("o1", 120_000), order("o2", 10_000)], &actor()).unwrap();
    assert_eq!(report.accepted, 2, "{report:?}");
    w.bus.drain().unwrap();
    let account = w.store.points_account(w.shop, w.customer()).unwrap();
    assert_eq!(account.balance, 1200 + 200, "o1 reaches gold, which doubles o2's 100 points");
    assert_eq!(account.tier_history.iter().map(|t| t.to.as_str()).collect::<Vec<_>>(), vec!["gold"]);
    assert_eq!(account.tier_history[0].reason, "qualifying spend CNY 1200.00 in 12 months reached gold (CNY 1000.00)");
}

/// A shop with the three connectors enabled against one provider, and a customer with a phone and an e-mail.
struct Messaging {
    w: World,
    provider: Provider,
    customer: i64,
}

fn messaging() -> Messaging {
    let w = world();
    let provider = Provider::start().unwrap();
    w.connect(&provider);
    w.ingest(json!({"id": "c1", "type": "customer.upsert", "identities": [
        {"kind": "phone", "value": "13800000001"}, {"kind": "email", "value": "Ann@Example.com"}]}));
    let customer = w.customer();
    Messaging { w, provider, customer }
}

impl Messaging {
    fn send(&self, channel: &str, key: &str) -> Message {
        let request = SendRequest {
            customer_id: self.customer,
            channel: channel.into(),
            template: "SMS_1".into(),
            variables: [("name".to_string(), "Ann".to_string())].into(),
            idempotency_key: key.into(),
        };
        let (message, _) = self.w.store.enqueue_message(self.w.shop, &request, "api", self.w.clock.now()).unwrap();
        self.w.bus.drain().unwrap();
        self.message(&message.id)
    }

    fn message(&self, id: &str) -> Message {
        self.w.store.message(self.w.shop, id).unwrap()
    }

    fn token(&self, channel: &str) -> String {
        self.w.store.connector_routes(self.w.shop).unwrap().into_iter().find(|r| r.channel == channel).unwrap().receipt_token
    }

    fn receipt(
        &self,
        channel: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<kith_core::outbox::ReceiptReport, kith_bus::BusError> {
        let request = InboundRequest { method: "POST".into(), path: "/v1/receipts/x".into(), headers, body };
        self.w.bus.receive_receipts(&self.token(channel), request)
    }
}

#[test]
fn connectors_send_to_the_provider_and_receipts_come_back() {
    let m = messaging();
    let sms = m.send("sms", "k-sms");
    assert_eq!(sms.status, MessageStatus::Sent, "{sms:?}");
    assert_eq!((sms.status, sms.provider_id.as_deref(), sms.plugin_id.as_deref()), (MessageStatus::Sent, Some("biz-1"), Some("sms-http")));
    let got = &m.provider.received()[0];
    assert_eq!(got.path, "/sms");
    assert_eq!(got.header("idempotency-key"), Some(sms.id.as_str()));
    assert_eq!(got.header("authorization"), Some("Bearer k"));
    assert_eq!(got.json()["phone"], "+8613800000001");
    assert_eq!((got.json()["template_code"].as_str(), got.json()["params"]["name"].as_str()), (Some("SMS_1"), Some("Ann")));
    let report = br#"[{"out_id": "nobody"}, {"biz_id": "biz-1", "status": "DELIVERED", "report_time": 1793606400000}]"#;
    let matched = m.receipt("sms", vec![], report.to_vec()).unwrap();
    assert_eq!((matched.matched, matched.unknown), (1, 1));
    let sms = m.message(&sms.id);
    assert_eq!(sms.status, MessageStatus::Delivered);
    assert_eq!(sms.delivered_at, Some(DateTime::from_timestamp_millis(1_793_606_400_000).unwrap()));

    let email = m.send("email", "k-email");
    assert_eq!((email.status, email.provider_id.as_deref()), (MessageStatus::Sent, Some("email-2")));
    assert_eq!(m.provider.received()[1].json()["to"], "ann@example.com");
    m.receipt("email", vec![], br#"{"type": "email.bounced", "data": {"email_id": "email-2"}}"#.to_vec()).unwrap();
    let email = m.message(&email.id);
    assert_eq!((email.status, email.reason.as_deref()), (MessageStatus::Failed, Some("receipt: failed email.bounced")));

    // The webhook is signed; a receipt is accepted only with a valid signature over its body.
    let hook = m.send("webhook", "k-hook");
    assert_eq!(hook.status, MessageStatus::Sent);
    let posted = m.provider.received()[2].clone();
    assert!(posted.header("webhook-signature").is_some_and(|s| s.starts_with("v1,")));
    assert_eq!(posted.json()["recipient"], m.customer.to_string());
    let signed: Vec<(String, String)> = posted.headers.iter().filter(|(k, _)| k.starts_with("webhook-")).cloned().collect();
    let mut forged = posted.body.clone();
    forged.extend_from_slice(b" ");
    let refused = m.receipt("webhook", signed.clone(), forged).unwrap_err();
    assert!(refused.to_string().contains("signature does not match"), "{refused}");
    assert_eq!(m.receipt("webhook", signed, posted.body.clone()).unwrap().matched, 1);
    assert!(matches!(
        m.w.bus
            .receive_receipts("no-such-token", InboundRequest { method: "POST".into(), path: "/".into(), headers: vec![], body: vec![] }),
        Err(kith_bus::BusError::Store(kith_core::Error::NotFound(_)))
    ));
}

#[test]
fn busy_slow_and_refusing_providers_are_retried_or_failed() {
    let m = messaging();
    let w = &m.w;
    m.provider.script([Answer::Status { status: 429, body: "busy".into(), retry_after: Some(120) }]);
    let busy = m.send("sms", "k1");
    assert_eq!(busy.status, MessageStatus::Queued);
    assert_eq!(busy.next_attempt_at, Some(w.clock.now() + chrono::Duration::seconds(120)));
    w.later(chrono::Duration::seconds(119));
    assert_eq!(m.message(&busy.id).status, MessageStatus::Queued, "not before the provider said");
    w.later(chrono::Duration::seconds(2));
    let busy = m.message(&busy.id);
    assert_eq!((busy.status, busy.attempts), (MessageStatus::Sent, 2));
    assert_eq!(m.provider.received().len(), 2);

    // Slower than the call's deadline: the call fails and is retried with the same message id.
    m.provider.script([Answer::Slow(Duration::from_millis(1500))]);
    let slow = m.send("sms", "k2");
    assert_eq!(slow.status, MessageStatus::Queued);
    assert!(slow.reason.as_deref().is_some_and(|r| r.contains("deadline")), "{slow:?}");
    w.later(chrono::Duration::seconds(2));
    assert_eq!(m.message(&slow.id).status, MessageStatus::Sent);
    let ids: Vec<_> = m.provider.received().iter().skip(2).map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    assert_eq!(ids, vec![Some(slow.id.clone()), Some(slow.id.clone())]);

    m.provider.script([Answer::Status { status: 400, body: "{\"code\": \"BAD\"}".into(), retry_after: None }]);
    let refused = m.send("sms", "k3");
    assert_eq!(refused.status, MessageStatus::Failed);
    assert!(refused.reason.as_deref().is_some_and(|r| r.starts_with("rejected by the provider: provider answered 400")), "{refused:?}");
    m.provider.script([
        Answer::Ok,
        Answer::Status { status: 200, body: "{\"code\": \"INVALID_PHONE\", \"message\": \"no such number\"}".into(), retry_after: None },
    ]);
    m.send("email", "k4");
    let invalid = m.send("sms", "k5");
    assert_eq!(invalid.reason.as_deref(), Some("rejected by the provider: INVALID_PHONE: no such number"));

    // A provider that keeps failing: the message fails after the outbox's attempts, with the history of each.
    m.provider.script(std::iter::repeat_n(Answer::Status { status: 503, body: String::new(), retry_after: Some(1) }, 8));
    let down = m.send("sms", "k6");
    for _ in 0..10 {
        w.later(chrono::Duration::seconds(2));
    }
    let down = m.message(&down.id);
    assert_eq!((down.status, down.attempts), (MessageStatus::Failed, 8));
    assert!(down.reason.as_deref().is_some_and(|r| r.starts_with("gave up after 8 attempts")), "{down:?}");
    assert_eq!(down.history.iter().filter(|e| e.status == MessageStatus::Sending).count(), 8);
}

#[test]
fn consent_caps_and_quiet_hours_decide_what_goes_out() {
    let m = messaging();
    let w = &m.w;
    let settings = MessagingSettings {
        channels: [(
            "sms".to_string(),
            ChannelPolicy {
                frequency_cap: Some(FrequencyCap { max: 2, window_hours: 24 }),
                quiet_hours: Some(QuietHours { start: "21:00".into(), end: "08:00".into() }),
                cost_per_message: 5,
            },
        )]
        .into(),
    };
    w.store.put_messaging_settings(w.shop, &settings, &actor(), w.clock.now()).unwrap();
    assert_eq!(m.send("sms", "a").status, MessageStatus::Sent);
    assert_eq!(m.send("sms", "b").status, MessageStatus::Sent);
    let capped = m.send("sms", "c");
    assert_eq!(capped.status, MessageStatus::Suppressed);
    assert_eq!(capped.reason.as_deref(), Some("frequency cap: at most 2 sms message(s) per customer in 24 hours"));
    assert_eq!(m.send("email", "d").status, MessageStatus::Sent, "the cap is per channel");

    // 25 hours later it is 17:00 in Shanghai: the window has passed and it is not quiet.
    w.later(chrono::Duration::hours(25));
    assert_eq!(m.send("sms", "e").status, MessageStatus::Sent);
    // At 22:30 in Shanghai the message waits for 08:00.
    w.clock.set(Utc.with_ymd_and_hms(2026, 11, 4, 14, 30, 0).unwrap());
    let held = m.send("sms", "f");
    assert_eq!((held.status, held.next_attempt_at), (MessageStatus::Queued, Some(Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap())));
    assert!(held.reason.as_deref().is_some_and(|r| r.starts_with("held for quiet hours 21:00-08:00 (Asia/Shanghai)")), "{held:?}");
    w.clock.set(Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap());
    w.bus.drain().unwrap();
    assert_eq!(m.message(&held.id).status, MessageStatus::Sent);

    let opt_out = ConsentInput { status: ConsentStatus::OptedOut, source: "sms-reply".into() };
    w.store.put_consent(w.shop, m.customer, "email", &opt_out, &actor(), w.clock.now()).unwrap();
    let suppressed = m.send("email", "g");
    assert_eq!(
        (suppressed.status, suppressed.reason.as_deref()),
        (MessageStatus::Suppressed, Some("the customer opted out of email (sms-reply)"))
    );
    let sent_before = m.provider.received().len();
    // A channel without a connector is retried, then failed; a customer without an address is suppressed.
    let nowhere = m.send("wechat", "h");
    assert_eq!(nowhere.status, MessageStatus::Queued);
    assert!(nowhere.reason.as_deref().is_some_and(|r| r.contains("no connector is enabled for channel `wechat`")));
    w.ingest(json!({"id": "c2", "type": "customer.upsert", "identities": [{"kind": "unionid", "value": "u-2"}]}));
    let other = w.store.list_customers(w.shop, &Default::default(), 0, 10).unwrap().last().unwrap().id;
    let request = SendRequest {
        customer_id: other,
        channel: "sms".into(),
        template: "SMS_1".into(),
        variables: Default::default(),
        idempotency_key: "i".into(),
    };
    let (no_phone, _) = w.store.enqueue_message(w.shop, &request, "api", w.clock.now()).unwrap();
    w.bus.drain().unwrap();
    let no_phone = m.message(&no_phone.id);
    assert_eq!(
        (no_phone.status, no_phone.reason.as_deref()),
        (MessageStatus::Suppressed, Some("the customer has no phone to send sms to"))
    );
    assert_eq!(m.provider.received().len(), sent_before, "nothing suppressed or unroutable reached the provider");
}

#[test]
fn a_connectors_lag_is_zero_and_its_outbox_counts_what_waits() {
    let m = messaging();
    let w = &m.w;
    w.order("o1", 10_000);
    w.order("o2", 10_000);
    assert!(w.store.event_head(w.shop).unwrap() > 0);
    let status = w.bus.status(w.shop, "sms-http").unwrap();
    assert_eq!((status.lag, status.outbox), (0, Some(0)), "a connector takes no events: the log's head is no lag of its");
    // At 22:30 in Shanghai an sms waits for the end of quiet hours: the sms connector has one message to send.
    let quiet = QuietHours { start: "21:00".into(), end: "08:00".into() };
    let settings = MessagingSettings {
        channels: [("sms".to_string(), ChannelPolicy { frequency_cap: None, quiet_hours: Some(quiet), cost_per_message: 0 })].into(),
    };
    w.store.put_messaging_settings(w.shop, &settings, &actor(), w.clock.now()).unwrap();
    w.clock.set(Utc.with_ymd_and_hms(2026, 11, 4, 14, 30, 0).unwrap());
    let held = m.send("sms", "held");
    assert_eq!(held.status, MessageStatus::Queued);
    let outbox = |plugin: &str| w.bus.status(w.shop, plugin).unwrap().outbox;
    assert_eq!((outbox("sms-http"), outbox("email-http")), (Some(1), Some(0)));
    w.clock.set(Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap());
    w.bus.drain().unwrap();
    assert_eq!(m.message(&held.id).status, MessageStatus::Sent);
    assert_eq!(outbox("sms-http"), Some(0));
}

#[test]
fn segment_entries_follow_plugin_decisions_and_exits_follow_the_clock() {
    let w = world();
    w.enable(&plugins::TIERED_POINTS, tiers(), None);
    let input = |name: &str, definition: Value| kith_domain::segments::SegmentInput { name: name.into(), description: None, definition };
    let gold = w
        .store
        .create_segment(w.shop, &input("gold", json!({"profile": "tier", "op": "eq", "value": "gold"})), &actor(), w.clock.now())
        .unwrap();
    let recent = w
        .store
        .create_segment(w.shop, &input("bought this week", json!({"purchase": {}, "window": {"last_days": 7}})), &actor(), w.clock.now())
        .unwrap();
    let segment_events = |kind: &str| -> Vec<(i64, String)> {
        w.store
            .events_after(w.shop, 0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| (e.payload.value()["segment_id"].as_i64().unwrap(), e.payload.value()["reason"].as_str().unwrap().to_owned()))
            .collect()
    };

    // The order is ingested, the scheme's tier decision lands, and the workers re-evaluate the customer.
    w.order("o1", 120_000);
    let customer = w.customer();
    assert_eq!(w.store.points_account(w.shop, customer).unwrap().tier.as_deref(), Some("gold"));
    assert_eq!(segment_events("segment.entered"), vec![(recent.id, "change".into()), (gold.id, "change".into())]);

    // Eight days later the sweep finds the order out of the window; the tier stays.
    w.later(chrono::Duration::days(8));
    assert_eq!(segment_events("segment.exited"), vec![(recent.id, "time".into())]);
    assert_eq!(w.store.get_segment(w.shop, gold.id, None).unwrap().members, 1);
    assert_eq!(w.store.get_segment(w.shop, recent.id, None).unwrap().members, 0);
}

#[test]
fn a_tier_that_a_merge_brings_is_named_by_the_order_that_earned_it() {
    // The living shop's customer 24: a browser (the older customer, so the survivor) merged
    // with a buyer whose one counted order reached silver at once; three later orders refunded.
    let w = world();
    w.enable(
        &plugins::TIERED_POINTS,
        json!({"tiers": [
            {"name": "silver", "threshold": 50_000},
            {"name": "gold", "threshold": 200_000, "multiplier": 1.5},
        ]}),
        None,
    );
    let now = w.clock.now();
    let days = chrono::Duration::days;
    let phone = json!([{"kind": "phone", "value": "13800000005"}]);
    w.ingest(json!({"id": "browser", "type": "customer.upsert", "occurred_at": now - days(100),
        "identities": [{"kind": "nick", "value": "tb_browser"}], "profile": {"name": "browser"}}));
    let paid = |id: &str, amount: i64, at: DateTime<Utc>| json!({"id": id, "type": "order.paid", "identities": phone, "order": {"id": id, "amount": amount, "paid_at": at}});
    let mut events = vec![paid("o6", 87_600, now - days(90))];
    for (id, amount, ago) in [("o7", 6_900, 80), ("o8", 29_700, 50), ("o9", 8_900, 20)] {
        events.push(paid(id, amount, now - days(ago)));
        events.push(json!({"id": format!("r-{id}"), "type": "order.refunded",
            "refund": {"order_id": id, "amount": amount, "refunded_at": now - days(ago - 2)}}));
    }
    let report = w.store.ingest(w.shop, events, &actor()).unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
    w.bus.drain().unwrap();
    let customers = w.store.list_customers(w.shop, &Default::default(), 0, 10).unwrap();
    let buyer = customers.iter().find(|c| c.tier.is_some()).expect("the buyer is silver at once");
    let account = w.store.points_account(w.shop, buyer.id).unwrap();
    assert_eq!(account.tier_history[0].reason, "qualifying spend CNY 876.00 in 12 months reached silver (CNY 500.00)");

    // An event naming both merges the buyer into the browser.
    w.ingest(json!({"id": "both", "type": "customer.upsert",
        "identities": [{"kind": "nick", "value": "tb_browser"}, {"kind": "phone", "value": "13800000005"}]}));
    let survivor = w.customer();
    assert_ne!(survivor, buyer.id, "the older customer survives");
    // The scheme hears of the merge and the survivor is silver at once, not at the next review.
    let account = w.store.points_account(w.shop, survivor).unwrap();
    assert_eq!(account.tier.as_deref(), Some("silver"), "{:?}", account.tier_history);
    // Not "CNY 0.00 in the 12 months before 2026-01-01": the spend at the order that earned it.
    let reason = &account.tier_history[0].reason;
    assert!(reason.starts_with("qualifying spend") && reason.contains("CNY 876.00 in the 12 months to 2026-08-04 (order o6)"), "{reason}");
    w.bus.start_run(w.shop, "tiered-points", &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(w.store.points_account(w.shop, survivor).unwrap().tier_history.len(), 1, "the review agrees");
}
