//! Between the kernel's domain types and the WIT types of the newest version (0.2).

use kith_domain::plugin::{
    BuyerSummary, Decision, Delivery, Distribution, EventSnapshot, GuestError, History, InboundRequest, OrderSnapshot, OutboundMessage,
    Receipt, ReceiptStatus, ShopContext, Snapshot, Subject,
};

use crate::bindings::v0_2::types as wit;
use crate::{CallError, HostConfig, Output};

fn count(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

/// Conversions take their input by value: a batch's snapshots are moved into
/// the WIT types, not copied (copies and the drops of both were a good share of a
/// call's cost).
pub(crate) fn customer(c: Snapshot) -> wit::Customer {
    wit::Customer {
        id: c.id,
        profile: wit::Profile {
            name: c.profile.name,
            gender: c.profile.gender,
            birthday: c.profile.birthday.map(|d| d.format("%Y-%m-%d").to_string()),
            province: c.profile.province,
            city: c.profile.city,
            attributes: serde_json::Value::Object(c.profile.attributes).to_string(),
        },
        stats: wit::Stats {
            total_spent: c.stats.total_spent,
            order_count: count(c.stats.order_count),
            average_order_value: c.stats.average_order_value,
            first_order_at: c.stats.first_order_at.map(|t| t.timestamp_millis()),
            last_order_at: c.stats.last_order_at.map(|t| t.timestamp_millis()),
            refund_count: count(c.stats.refund_count),
            refund_amount: c.stats.refund_amount,
        },
        tags: c.tags.into_iter().map(|t| wit::Tag { name: t.tag, source: t.source }).collect(),
        scores: c.scores.into_iter().map(|s| wit::Score { model: s.model, value: s.value, label: s.label }).collect(),
        points: c.points,
        tier: c.tier,
        created_at: c.created_at.timestamp_millis(),
    }
}

fn event(e: EventSnapshot) -> wit::Event {
    wit::Event { seq: e.seq, event_type: e.kind, customer_id: e.customer_id, payload: e.payload, created_at: e.created_at_ms }
}

fn order(o: OrderSnapshot) -> wit::Order {
    wit::Order {
        id: o.external_id,
        customer_id: o.customer_id,
        amount: o.amount,
        refunded_amount: o.refunded_amount,
        status: o.status,
        coupon_code: o.coupon_code,
        paid_at: o.paid_at_ms,
        items: o
            .items
            .into_iter()
            .map(|i| wit::OrderItem {
                sku: i.sku,
                name: i.name,
                category: i.category,
                quantity: i.quantity,
                unit_price: i.unit_price,
                discount: i.discount,
            })
            .collect(),
    }
}

pub(crate) fn history(h: History) -> wit::History {
    wit::History {
        customer_id: h.customer_id,
        orders: h.orders.into_iter().map(order).collect(),
        behaviours: h
            .behaviours
            .into_iter()
            .map(|b| wit::Behaviour {
                kind: match b.kind.as_str() {
                    "favorite" => wit::BehaviourKind::Favorite,
                    "cart" => wit::BehaviourKind::Cart,
                    "purchase" => wit::BehaviourKind::Purchase,
                    _ => wit::BehaviourKind::View,
                },
                sku: b.sku,
                category: b.category,
                occurred_at: b.occurred_at_ms,
            })
            .collect(),
        truncated: h.truncated,
    }
}

pub(crate) fn buyer_summary(s: BuyerSummary) -> wit::BuyerSummary {
    wit::BuyerSummary {
        customer_id: s.customer_id,
        first_order_at: s.first_order_at_ms,
        last_order_at: s.last_order_at_ms,
        purchase_days: s.purchase_days,
        order_count: s.order_count,
        total_spent: s.total_spent,
        repeat_spent: s.repeat_spent,
        span_days: s.span_days,
        age_days: s.age_days,
    }
}

pub(crate) fn subject(s: Subject) -> wit::Subject {
    wit::Subject { customer: customer(s.customer), event: s.event.map(event), order: s.order.map(order) }
}

fn distribution(d: &Distribution) -> wit::Distribution {
    wit::Distribution { average: d.average, quintiles: d.quintiles.clone() }
}

pub(crate) fn context(c: &ShopContext) -> wit::ShopContext {
    wit::ShopContext {
        shop_id: c.shop_id,
        now: c.now_ms,
        window_days: c.window_days,
        time_zone: c.time_zone.clone(),
        currency: c.currency.clone(),
        customer_count: c.customer_count,
        buyer_count: c.buyer_count,
        recency_days: distribution(&c.recency_days),
        frequency: distribution(&c.frequency),
        monetary: distribution(&c.monetary),
        average_order_value: c.average_order_value,
    }
}

pub(crate) fn message(m: &OutboundMessage) -> wit::Message {
    wit::Message {
        id: m.id.clone(),
        customer_id: m.customer_id,
        channel: m.channel.clone(),
        recipient: m.recipient.clone(),
        template: m.template.clone(),
        variables: m.variables.clone(),
    }
}

pub(crate) fn inbound(r: &InboundRequest) -> wit::InboundRequest {
    wit::InboundRequest { method: r.method.clone(), path: r.path.clone(), headers: r.headers.clone(), body: r.body.clone() }
}

pub(crate) fn decision(d: wit::Decision) -> Decision {
    match d {
        wit::Decision::AddTag(t) => Decision::AddTag { customer_id: t.customer_id, tag: t.tag, reason: t.reason },
        wit::Decision::RemoveTag(t) => Decision::RemoveTag { customer_id: t.customer_id, tag: t.tag, reason: t.reason },
        wit::Decision::SetScore(s) => {
            Decision::SetScore { customer_id: s.customer_id, model: s.model, value: s.value, label: s.label, explanation: s.explanation }
        }
        wit::Decision::AwardPoints(p) => Decision::AwardPoints {
            customer_id: p.customer_id,
            points: p.points,
            source_key: p.source_key,
            reason: p.reason,
            expires_at_ms: p.expires_at,
        },
        wit::Decision::ClawBackPoints(p) => {
            Decision::ClawBackPoints { customer_id: p.customer_id, points: p.points, source_key: p.source_key, reason: p.reason }
        }
        wit::Decision::ChangeTier(t) => Decision::ChangeTier { customer_id: t.customer_id, tier: t.tier, reason: t.reason },
        wit::Decision::EmitEvent(e) => Decision::EmitEvent { customer_id: e.customer_id, event_type: e.event_type, payload: e.payload },
    }
}

pub(crate) fn delivery(d: wit::Delivery) -> Delivery {
    match d {
        wit::Delivery::Accepted(provider_id) => Delivery::Accepted { provider_id },
        wit::Delivery::Rejected(reason) => Delivery::Rejected { reason },
        wit::Delivery::RetryAfter(seconds) => Delivery::RetryAfter { seconds },
    }
}

pub(crate) fn receipt(r: wit::Receipt) -> Receipt {
    Receipt {
        message_id: r.message_id,
        provider_id: r.provider_id,
        status: match r.status {
            wit::ReceiptStatus::Delivered => ReceiptStatus::Delivered,
            wit::ReceiptStatus::Failed => ReceiptStatus::Failed,
            wit::ReceiptStatus::Pending => ReceiptStatus::Pending,
        },
        detail: r.detail,
        at_ms: r.at,
    }
}

pub(crate) fn guest_error(e: wit::Error) -> GuestError {
    match e {
        wit::Error::AccessDenied(m) => GuestError::AccessDenied(m),
        wit::Error::NotFound(m) => GuestError::NotFound(m),
        wit::Error::QuotaExceeded(m) => GuestError::QuotaExceeded(m),
        wit::Error::Invalid(m) => GuestError::Invalid(m),
        wit::Error::Failed(m) => GuestError::Failed(m),
    }
}

fn text_bytes(d: &Decision) -> usize {
    match d {
        Decision::AddTag { tag, reason, .. } | Decision::RemoveTag { tag, reason, .. } => tag.len() + reason.len(),
        Decision::SetScore { model, label, explanation, .. } => model.len() + label.as_ref().map_or(0, String::len) + explanation.len(),
        Decision::AwardPoints { source_key, reason, .. } | Decision::ClawBackPoints { source_key, reason, .. } => {
            source_key.len() + reason.len()
        }
        Decision::ChangeTier { tier, reason, .. } => tier.len() + reason.len(),
        Decision::EmitEvent { event_type, payload, .. } => event_type.len() + payload.len(),
    }
}

/// Refuse output over the host's caps on decisions and bytes of text; otherwise the output and its bytes of text.
pub(crate) fn check_output(config: &HostConfig, output: Output) -> Result<(Output, usize), CallError> {
    let bytes = match &output {
        Output::Decisions(decisions) => {
            if decisions.len() > config.max_decisions {
                return Err(CallError::Output(format!("{} decisions; at most {} per call", decisions.len(), config.max_decisions)));
            }
            decisions.iter().map(text_bytes).sum()
        }
        Output::Delivery(d) => match d {
            Delivery::Accepted { provider_id } => provider_id.as_ref().map_or(0, String::len),
            Delivery::Rejected { reason } => reason.len(),
            Delivery::RetryAfter { .. } => 0,
        },
        Output::Receipts(receipts) => {
            if receipts.len() > config.max_decisions {
                return Err(CallError::Output(format!("{} receipts; at most {} per call", receipts.len(), config.max_decisions)));
            }
            receipts
                .iter()
                .map(|r| {
                    r.message_id.as_ref().map_or(0, String::len)
                        + r.provider_id.as_ref().map_or(0, String::len)
                        + r.detail.as_ref().map_or(0, String::len)
                })
                .sum()
        }
    };
    if bytes > config.max_output_bytes {
        return Err(CallError::Output(format!("{bytes} bytes of text; at most {} per call", config.max_output_bytes)));
    }
    Ok((output, bytes))
}
