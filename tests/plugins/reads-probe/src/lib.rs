//! Logs, for each subject of a batch, its event and order, what the batch
//! carried of the customer and what `customers.read` returns for the same
//! customer: the manifest reads only `stats`.

use kith_sdk::{Customer, Decision, Error, LogLevel, ShopContext, Subject, TagRule};

fn describe(c: &Customer) -> String {
    format!(
        "name={:?} city={:?} attributes={} spent={} orders={} tags={} points={} tier={:?}",
        c.profile.name,
        c.profile.city,
        c.profile.attributes,
        c.stats.total_spent,
        c.stats.order_count,
        c.tags.len(),
        c.points,
        c.tier
    )
}

struct Probe;

impl TagRule for Probe {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        for subject in &batch {
            if let Some(event) = &subject.event {
                let order = subject.order.as_ref().map(|o| (o.id.as_str(), o.amount, o.items.len()));
                kith_sdk::log(LogLevel::Info, &format!("event: {} {} order={order:?}", event.event_type, event.payload));
            }
            kith_sdk::log(LogLevel::Info, &format!("batch: {}", describe(&subject.customer)));
            kith_sdk::log(LogLevel::Info, &format!("read: {}", describe(&kith_sdk::read_customer(subject.customer.id)?)));
        }
        Ok(Vec::new())
    }
}

kith_sdk::export_tag_rule!(Probe);
