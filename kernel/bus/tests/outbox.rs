//! The outbox is sent a group (a shop's channel) at a time, over a real store,
//! the real SMS connector built from source and providers on loopback: one
//! shop's slow connector holds up its own messages only, a busy group does not
//! starve another, and a claim's lease covers the worst case of its sends, so a
//! message being sent is never claimed (and sent) twice.

use kith_core::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use kith_bus::{Bus, BusConfig, Clock, EnableRequest, Package, TestClock};
use kith_core::outbox::OutboxPolicy;
use kith_domain::messaging::{MessageStatus, SendRequest};
use kith_domain::model::NewShop;
use kith_domain::plugin::{Capability, Grant};
use kith_provider::{Answer, Provider};
use kith_sqlite::Store;
use kith_test_plugins as plugins;
use serde_json::json;
use support::{actor, host};

mod support;

/// The deadline of a connector whose manifest asks for none (the suite's host).
const DEADLINE: Duration = Duration::from_millis(500);

struct Shops {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    bus: Arc<Bus>,
    clock: Arc<TestClock>,
    shops: [i64; 2],
    /// A customer with a phone number in each shop.
    customers: [i64; 2],
}

fn config(workers: usize, margin: Duration) -> BusConfig {
    let outbox = OutboxPolicy { lease: margin, ..OutboxPolicy::default() };
    BusConfig { workers, poll: Duration::from_millis(20), outbox, ..BusConfig::default() }
}

/// Two shops, a bus of `workers` and claims whose lease has `margin` past the worst case of their sends.
fn shops(workers: usize, margin: Duration) -> Shops {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
    let new = |name: &str| NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shops = [store.create_shop(&new("A"), &actor()).unwrap().id, store.create_shop(&new("B"), &actor()).unwrap().id];
    // 16:00 in Shanghai: no quiet hours.
    let clock = Arc::new(TestClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()));
    let bus = Bus::new(store.clone(), host(), clock.clone(), config(workers, margin));
    let customers = shops.map(|shop| {
        let event = json!({"id": "c1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13800000001"}]});
        assert_eq!(store.ingest_at(shop, vec![event], &actor(), clock.now()).unwrap().accepted, 1);
        store.list_customers(shop, &Default::default(), 0, 1).unwrap()[0].id
    });
    Shops { _dir: dir, store, bus, clock, shops, customers }
}

impl Shops {
    /// The SMS connector in shop `i`, installed as `id` with a deadline of `timeout_ms` if given,
    /// sending to `provider`.
    fn connect(&self, i: usize, id: &str, timeout_ms: Option<u64>, provider: &Provider) {
        let mut manifest = plugins::SMS_HTTP.manifest().replace("id = \"sms-http\"", &format!("id = \"{id}\""));
        if let Some(ms) = timeout_ms {
            manifest.push_str(&format!("\n[limits]\ntimeout-ms = {ms}\n"));
        }
        let package = Package::from_tar_gz(&plugins::SMS_HTTP.tar_gz_with(&manifest)).unwrap();
        self.bus.install(&package, &actor()).unwrap();
        let grant =
            Grant { capabilities: [Capability::Config, Capability::Http, Capability::Log].into(), allowed_hosts: vec![provider.host()] };
        let request = EnableRequest {
            config: Some(json!({"endpoint": provider.url("/sms"), "api_key": "k"})),
            grant: Some(grant),
            ..Default::default()
        };
        self.bus.enable(self.shops[i], id, &request, &actor()).unwrap();
    }

    /// Queue an SMS in shop `i`; its message id.
    fn queue(&self, i: usize, key: &str) -> String {
        let request = SendRequest {
            customer_id: self.customers[i],
            channel: "sms".into(),
            template: "SMS_1".into(),
            variables: Default::default(),
            idempotency_key: key.into(),
        };
        self.store.enqueue_message(self.shops[i], &request, "api", self.clock.now()).unwrap().0.id
    }

    fn status(&self, i: usize, id: &str) -> MessageStatus {
        self.store.message(self.shops[i], id).unwrap().status
    }
}

/// How many requests `provider` received for message `id` (its idempotency key).
fn requests_for(provider: &Provider, id: &str) -> usize {
    provider.received().iter().filter(|r| r.header("idempotency-key") == Some(id)).count()
}

/// Wait for `what`, failing the test after a minute (a fail-safe: the assertions are about order).
fn wait_for(what: impl Fn() -> bool) {
    let started = Instant::now();
    while !what() {
        assert!(started.elapsed() < Duration::from_secs(60), "gave up waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Issue 27 (5), for messages: shop A's connector is allowed 10 s and its provider answers in
/// 3 s. Five of A's messages are queued before one of B's; with every message of the outbox
/// claimed together, B's waited for A's five (15 s). Sent by shop and channel, B's goes out
/// while A's are still being sent.
#[test]
fn a_slow_connector_in_one_shop_does_not_hold_up_another_shops_messages() {
    let w = shops(2, OutboxPolicy::default().lease);
    let (slow, fast) = (Provider::start().unwrap(), Provider::start().unwrap());
    w.connect(0, "sms-slow", Some(10_000), &slow);
    w.connect(1, "sms-http", None, &fast);
    // One message each first, so that both components are compiled before anything is timed.
    let warm = [w.queue(0, "warm"), w.queue(1, "warm")];
    w.bus.drain().unwrap();
    assert_eq!([w.status(0, &warm[0]), w.status(1, &warm[1])], [MessageStatus::Sent, MessageStatus::Sent]);

    slow.script(std::iter::repeat_n(Answer::Slow(Duration::from_secs(3)), 5));
    let a: Vec<String> = (0..5).map(|n| w.queue(0, &format!("a{n}"))).collect();
    let b = w.queue(1, "b");
    let started = Instant::now();
    let workers = w.bus.start();
    wait_for(|| w.status(1, &b) == MessageStatus::Sent);
    let latency = started.elapsed();
    let pending = a.iter().filter(|id| w.status(0, id) != MessageStatus::Sent).count();
    println!("shop B's message sent after {latency:?}, with {pending} of shop A's 5 slow messages still pending");
    // Two slow answers at most (one before the workers were both looking, one margin): far below
    // the 15 s of A's five.
    assert!(latency < Duration::from_secs(6), "shop B's message waited {latency:?}");
    assert!(pending >= 3, "{pending} of A's messages pending when B's was sent");

    wait_for(|| a.iter().all(|id| w.status(0, id) == MessageStatus::Sent));
    println!("shop A's 5 slow messages sent after {:?}", started.elapsed());
    w.bus.stop();
    for worker in workers {
        worker.join().unwrap();
    }
    for id in &a {
        assert_eq!(requests_for(&slow, id), 1, "message {id} was sent once");
    }
    assert_eq!(requests_for(&fast, &b), 1);
}

/// A group with a backlog takes its batch per pass; a group never served goes first in the
/// next, however much older the backlog is.
#[test]
fn a_busy_group_does_not_starve_another() {
    let w = shops(1, OutboxPolicy::default().lease);
    let provider = Provider::start().unwrap();
    w.connect(0, "sms-http", None, &provider);
    w.connect(1, "sms-http", None, &provider);
    let a: Vec<String> = (0..60).map(|n| w.queue(0, &format!("a{n}"))).collect();
    w.clock.advance(chrono::Duration::seconds(1));
    let b = w.queue(1, "b");
    w.bus.run_pending().unwrap();
    assert_eq!(w.status(1, &b), MessageStatus::Queued, "the oldest group goes first");
    w.bus.run_pending().unwrap();
    assert_eq!(w.status(1, &b), MessageStatus::Sent, "the other group goes next");
    let sent = a.iter().filter(|id| w.status(0, id) == MessageStatus::Sent).count();
    assert!((1..=20).contains(&sent), "one batch of shop A's at most before B's: {sent}");
    w.bus.drain().unwrap();
    assert!(a.iter().all(|id| w.status(0, id) == MessageStatus::Sent));
}

/// A claim's lease covers the worst case of its sends (one connector deadline each, one
/// after another, plus the margin): with two processes' buses on one database (which share
/// no memory: only the lease keeps one from claiming what the other is sending) and a
/// provider slower than the margin, no message is claimed again while it is being sent, and
/// none reaches the provider twice. A sender that dies leaves claims that run out in turn,
/// and the messages go out again under the same id.
#[test]
fn a_message_being_sent_is_not_claimed_again() {
    let margin = Duration::from_secs(1);
    let deadline = Duration::from_secs(5);
    let w = shops(2, margin);
    let provider = Provider::start().unwrap();
    w.connect(0, "sms-slow", Some(deadline.as_millis() as u64), &provider);
    let warm = w.queue(0, "warm");
    w.bus.drain().unwrap();
    assert_eq!(w.status(0, &warm), MessageStatus::Sent);

    provider.script(std::iter::repeat_n(Answer::Slow(Duration::from_secs(2)), 3));
    let ids: Vec<String> = (0..3).map(|n| w.queue(0, &format!("m{n}"))).collect();
    let other = Bus::new(w.store.clone(), host(), w.clock.clone(), config(2, margin));
    let workers: Vec<_> = w.bus.start().into_iter().chain(other.start()).collect();
    wait_for(|| requests_for(&provider, &ids[0]) >= 1);
    // The first send is in flight. Past the margin, a lease of the margin alone has run out for
    // all three, and the two idle workers would claim and send them again.
    w.clock.advance(chrono::Duration::seconds(3));
    wait_for(|| ids.iter().all(|id| w.status(0, id) == MessageStatus::Sent));
    w.bus.stop();
    other.stop();
    for worker in workers {
        worker.join().unwrap();
    }
    for id in &ids {
        assert_eq!(requests_for(&provider, id), 1, "message {id} reached the provider once");
        // A claim taken again would have counted a second attempt (one handed back unsent does not).
        assert_eq!(w.store.message(w.shops[0], id).unwrap().attempts, 1, "message {id} was attempted once");
    }

    // A sender that dies after claiming two messages.
    let (first, second) = (w.queue(0, "d1"), w.queue(0, "d2"));
    let now = w.clock.now();
    let groups = w.store.due_outbox_groups(now).unwrap();
    assert_eq!(groups, vec![(w.shops[0], "sms".to_owned(), Some("sms-slow".to_owned()))]);
    let policy = OutboxPolicy { lease: margin, ..OutboxPolicy::default() };
    let claimed = w.store.claim_messages(now, &policy, (w.shops[0], "sms"), Some(("sms-slow", deadline)), 20).unwrap();
    let leases: Vec<_> = claimed.iter().map(|c| (c.message.id.clone(), c.lease_until)).collect();
    let after = |sends: u32| now + chrono::Duration::from_std(margin + deadline * sends).unwrap();
    assert_eq!(leases, vec![(first.clone(), after(1)), (second.clone(), after(2))]);
    w.bus.drain().unwrap();
    assert_eq!((requests_for(&provider, &first), requests_for(&provider, &second)), (0, 0), "held by their claim");
    w.clock.set(after(1));
    w.bus.drain().unwrap();
    assert_eq!((w.status(0, &first), w.status(0, &second)), (MessageStatus::Sent, MessageStatus::Sending));
    w.clock.set(after(2));
    w.bus.drain().unwrap();
    assert_eq!(w.status(0, &second), MessageStatus::Sent);
    for id in [&first, &second] {
        assert_eq!(requests_for(&provider, id), 1, "sent again under its own id");
        assert_eq!(w.store.message(w.shops[0], id).unwrap().attempts, 2);
    }
}

/// A claim is handed back when the group's pass runs out of time: queued again, due now, the
/// attempt not counted.
#[test]
fn a_claim_handed_back_is_queued_again_uncounted() {
    let w = shops(1, OutboxPolicy::default().lease);
    let provider = Provider::start().unwrap();
    w.connect(0, "sms-http", None, &provider);
    let id = w.queue(0, "m");
    let now = w.clock.now();
    let policy = OutboxPolicy::default();
    let claimed = w.store.claim_messages(now, &policy, (w.shops[0], "sms"), Some(("sms-http", DEADLINE)), 20).unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(w.store.due_outbox_groups(now).unwrap().is_empty(), "a claimed message is not due");
    w.store.hand_back(&claimed, "not sent in this pass", now).unwrap();
    let message = w.store.message(w.shops[0], &id).unwrap();
    assert_eq!((message.status, message.attempts), (MessageStatus::Queued, 0));
    assert_eq!(message.history.last().map(|e| e.detail.as_str()), Some("not sent in this pass"));
    // A second hand-back of the same claim changes nothing.
    w.store.hand_back(&claimed, "again", now).unwrap();
    assert_eq!(w.store.message(w.shops[0], &id).unwrap().history.len(), message.history.len());
    w.bus.drain().unwrap();
    let message = w.store.message(w.shops[0], &id).unwrap();
    assert_eq!((message.status, message.attempts), (MessageStatus::Sent, 1));
}
