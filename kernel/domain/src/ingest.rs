//! Ingest events as clients send them, and their validation into
//! [`ValidEvent`]s the store can apply without further checks.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::FieldError;
use crate::identity::{self, IdentityKind};
use crate::money::{MAX_AMOUNT, MAX_QUANTITY, check_range};

/// Most events one `POST /v1/events` may carry.
pub const MAX_BATCH: usize = 1000;
/// Largest serialised size of a customer's custom attributes.
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Most line items one order may carry.
pub const MAX_ITEMS: usize = 500;
const MAX_TEXT: usize = 200;
const MAX_EVENT_ID: usize = 128;

/// An identifier as sent by a client, before normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    /// `phone`, `email`, `unionid`, `nick` or `external:<source>`.
    pub kind: String,
    pub value: String,
}

/// The kinds of event `POST /v1/events` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "customer.upsert")]
    CustomerUpsert,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "behaviour")]
    Behaviour,
}

/// One event of an ingest batch. Which of `profile`, `order`, `refund` and
/// `behaviour` is required depends on `type`; the others must be absent.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// Client-chosen id; resending the same id is acknowledged as a duplicate and applies nothing.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened; defaults to the time of ingestion.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Identifiers naming the customer; they resolve, attach, or merge customers.
    #[serde(default)]
    pub identities: Vec<IdentityInput>,
    /// A Kith customer id, as an alternative or in addition to identities.
    pub customer_id: Option<i64>,
    pub profile: Option<ProfileInput>,
    pub order: Option<OrderInput>,
    pub refund: Option<RefundInput>,
    pub behaviour: Option<BehaviourInput>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
    Unknown,
}

impl Gender {
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Unknown => "unknown",
        }
    }
}

/// Profile fields to set; absent fields are left as they are. In `attributes`,
/// a key set to `null` is removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub name: Option<String>,
    pub gender: Option<Gender>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birthday: Option<NaiveDate>,
    pub province: Option<String>,
    pub city: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

/// A paid order. Money is in minor units (fen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// The shop's order number; an order is recorded once.
    pub id: String,
    /// Defaults to the event's `occurred_at`.
    pub paid_at: Option<DateTime<Utc>>,
    /// Amount paid; defaults to the sum over items of quantity × unit price − discount.
    #[schema(minimum = 0, maximum = 1e12)]
    pub amount: Option<i64>,
    pub coupon_code: Option<String>,
    #[serde(default)]
    pub items: Vec<ItemInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub sku: String,
    pub product_name: Option<String>,
    pub category: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    /// Price of one unit, in minor units; quantity × unit price is at most 1,000,000,000,000.
    #[schema(minimum = 0, maximum = 1e12)]
    pub unit_price: i64,
    /// Discount on the whole line, in minor units: at most quantity × unit price.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1e12)]
    pub discount: i64,
    pub coupon_code: Option<String>,
}

/// A refund of part or all of a recorded order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub order_id: String,
    /// Amount refunded, in minor units; at most what remains paid on the order.
    #[schema(minimum = 1, maximum = 1e12)]
    pub amount: i64,
    /// Defaults to the event's `occurred_at`.
    pub refunded_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BehaviourKind {
    View,
    Favorite,
    Cart,
    Purchase,
}

impl BehaviourKind {
    pub const ALL: [BehaviourKind; 4] = [BehaviourKind::View, BehaviourKind::Favorite, BehaviourKind::Cart, BehaviourKind::Purchase];

    pub fn as_str(self) -> &'static str {
        match self {
            BehaviourKind::View => "view",
            BehaviourKind::Favorite => "favorite",
            BehaviourKind::Cart => "cart",
            BehaviourKind::Purchase => "purchase",
        }
    }
}

/// Something a customer did with a product or category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BehaviourInput {
    pub kind: BehaviourKind,
    pub sku: Option<String>,
    pub product_name: Option<String>,
    pub category: Option<String>,
}

/// A normalised identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier {
    pub kind: IdentityKind,
    pub value: String,
}

/// Who an event is about, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub customer_id: Option<i64>,
    pub identities: Vec<Identifier>,
}

/// A validated order with its amount settled.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrder {
    pub external_id: String,
    pub paid_at: DateTime<Utc>,
    pub amount: i64,
    pub coupon_code: Option<String>,
    pub items: Vec<ItemInput>,
}

/// A validated refund.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRefund {
    pub order_external_id: String,
    pub amount: i64,
    pub refunded_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// What a valid event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Upsert { subject: Subject, profile: ProfileInput },
    OrderPaid { subject: Subject, order: ValidOrder },
    OrderRefunded { refund: ValidRefund },
    Behaviour { subject: Subject, behaviour: BehaviourInput, occurred_at: DateTime<Utc> },
}

/// An event that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidEvent {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub action: Action,
}

/// Parse one raw event; errors name the field at fault.
pub fn parse_event(raw: Value) -> Result<EventInput, FieldError> {
    serde_path_to_error::deserialize::<_, EventInput>(raw).map_err(|err| {
        let path = err.path().to_string();
        FieldError::from_serde(&path, err.into_inner().to_string())
    })
}

/// The `id` of a raw event, if it has a usable one, so that even a rejected
/// event can be reported by its id.
pub fn raw_event_id(raw: &Value) -> Option<String> {
    raw.get("id").and_then(Value::as_str).map(str::to_owned)
}

/// An event as it arrived: a JSON value, or the text of one (as the HTTP API
/// takes a batch's events).
pub trait RawEvent {
    /// Its id, if it has a usable one (so that even a rejected event is reported
    /// by it), and the event parsed, or the field at fault.
    fn parse(self) -> (Option<String>, Result<EventInput, FieldError>);
}

impl RawEvent for Value {
    fn parse(self) -> (Option<String>, Result<EventInput, FieldError>) {
        (raw_event_id(&self), parse_event(self))
    }
}

impl RawEvent for Box<serde_json::value::RawValue> {
    fn parse(self) -> (Option<String>, Result<EventInput, FieldError>) {
        // Straight from the text. Only an event that does not parse so is read again as a
        // value, for its id and the path of its fault, and parsed as before (where a key
        // given twice counts once, its last value, which the text's parser refuses).
        match serde_json::from_str::<EventInput>(self.get()) {
            Ok(event) => (Some(event.id.clone()), Ok(event)),
            Err(_) => match serde_json::from_str::<Value>(self.get()) {
                Ok(value) => value.parse(),
                Err(err) => (None, Err(FieldError::new("", format!("is not valid JSON: {err}")))),
            },
        }
    }
}

fn text(field: &str, value: &Option<String>) -> Result<Option<String>, FieldError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > MAX_TEXT => Err(FieldError::new(field, format!("is longer than {MAX_TEXT} characters"))),
        Some(v) => {
            crate::text::check(field, v)?;
            Ok(Some(v.to_owned()))
        }
    }
}

fn required_text(field: &str, value: &str) -> Result<String, FieldError> {
    text(field, &Some(value.to_owned()))?.ok_or_else(|| FieldError::new(field, "is empty"))
}

/// Normalise a client's identifiers against the shop's region.
pub fn normalise_identities(inputs: &[IdentityInput], region: &str) -> Result<Vec<Identifier>, FieldError> {
    let mut out: Vec<Identifier> = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let at = |f: &str| format!("identities[{i}].{f}");
        let kind: IdentityKind = input.kind.parse().map_err(|e: identity::IdentityError| FieldError::new(at("kind"), e.to_string()))?;
        let value = identity::normalise(&kind, &input.value, region).map_err(|e| FieldError::new(at("value"), e.to_string()))?;
        let id = Identifier { kind, value };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.len() > 20 {
        return Err(FieldError::new("identities", "names more than 20 identifiers"));
    }
    Ok(out)
}

impl EventInput {
    /// Check the event against its type and normalise it. `now` fills absent times.
    pub fn validate(self, region: &str, now: DateTime<Utc>) -> Result<ValidEvent, FieldError> {
        let id = self.id.trim().to_owned();
        if id.is_empty() {
            return Err(FieldError::new("id", "is empty"));
        }
        if id.len() > MAX_EVENT_ID {
            return Err(FieldError::new("id", format!("is longer than {MAX_EVENT_ID} bytes")));
        }
        crate::text::check("id", &id)?;
        let occurred_at = self.occurred_at.unwrap_or(now);
        let allowed: &[&str] = match self.kind {
            EventType::CustomerUpsert => &["profile"],
            EventType::OrderPaid => &["order"],
            EventType::OrderRefunded => &["refund"],
            EventType::Behaviour => &["behaviour"],
        };
        for (name, present) in [
            ("profile", self.profile.is_some()),
            ("order", self.order.is_some()),
            ("refund", self.refund.is_some()),
            ("behaviour", self.behaviour.is_some()),
        ] {
            if present && !allowed.contains(&name) {
                return Err(FieldError::new(name, format!("is not allowed in a `{}` event", type_name(self.kind))));
            }
        }
        let subject = || -> Result<Subject, FieldError> {
            let identities = normalise_identities(&self.identities, region)?;
            if identities.is_empty() && self.customer_id.is_none() {
                return Err(FieldError::new("identities", "name the customer with at least one identifier or a customer_id"));
            }
            Ok(Subject { customer_id: self.customer_id, identities })
        };
        let action = match self.kind {
            EventType::CustomerUpsert => {
                let profile = validate_profile(self.profile.clone().unwrap_or_default()).map_err(|e| e.within("profile"))?;
                Action::Upsert { subject: subject()?, profile }
            }
            EventType::OrderPaid => {
                let order = self.order.clone().ok_or_else(|| FieldError::new("order", "is required in an `order.paid` event"))?;
                let order = validate_order(order, occurred_at).map_err(|e| e.within("order"))?;
                Action::OrderPaid { subject: subject()?, order }
            }
            EventType::OrderRefunded => {
                if !self.identities.is_empty() || self.customer_id.is_some() {
                    return Err(FieldError::new("identities", "a refund names its order, not a customer"));
                }
                let refund = self.refund.clone().ok_or_else(|| FieldError::new("refund", "is required in an `order.refunded` event"))?;
                if !(1..=MAX_AMOUNT).contains(&refund.amount) {
                    return Err(FieldError::new("refund.amount", format!("must be between 1 and {MAX_AMOUNT}")));
                }
                Action::OrderRefunded {
                    refund: ValidRefund {
                        order_external_id: required_text("refund.order_id", &refund.order_id)?,
                        amount: refund.amount,
                        refunded_at: refund.refunded_at.unwrap_or(occurred_at),
                        reason: text("refund.reason", &refund.reason)?,
                    },
                }
            }
            EventType::Behaviour => {
                let b = self.behaviour.clone().ok_or_else(|| FieldError::new("behaviour", "is required in a `behaviour` event"))?;
                let behaviour = BehaviourInput {
                    kind: b.kind,
                    sku: text("behaviour.sku", &b.sku)?,
                    product_name: text("behaviour.product_name", &b.product_name)?,
                    category: text("behaviour.category", &b.category)?,
                };
                if behaviour.sku.is_none() && behaviour.category.is_none() {
                    return Err(FieldError::new("behaviour", "name a sku or a category"));
                }
                Action::Behaviour { subject: subject()?, behaviour, occurred_at }
            }
        };
        Ok(ValidEvent { id, occurred_at, action })
    }
}

fn type_name(kind: EventType) -> &'static str {
    match kind {
        EventType::CustomerUpsert => "customer.upsert",
        EventType::OrderPaid => "order.paid",
        EventType::OrderRefunded => "order.refunded",
        EventType::Behaviour => "behaviour",
    }
}

fn validate_profile(p: ProfileInput) -> Result<ProfileInput, FieldError> {
    if let Some(birthday) = p.birthday {
        let today = Utc::now().date_naive();
        if birthday > today || birthday < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(birthday) {
            return Err(FieldError::new("birthday", "is not a plausible date of birth"));
        }
    }
    if let Some(attrs) = &p.attributes {
        let size = serde_json::to_vec(attrs).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(FieldError::new("attributes", format!("is larger than {MAX_ATTRIBUTES_BYTES} bytes")));
        }
        for (key, value) in attrs {
            crate::text::check_json(&format!("attributes.{key}"), value)?;
            if key.contains('\0') {
                return Err(FieldError::new(format!("attributes.{key}"), "must not contain the NUL character (U+0000)"));
            }
        }
    }
    Ok(ProfileInput {
        name: text("name", &p.name)?,
        gender: p.gender,
        birthday: p.birthday,
        province: text("province", &p.province)?,
        city: text("city", &p.city)?,
        attributes: p.attributes,
    })
}

fn validate_order(o: OrderInput, occurred_at: DateTime<Utc>) -> Result<ValidOrder, FieldError> {
    let external_id = required_text("id", &o.id)?;
    if o.items.len() > MAX_ITEMS {
        return Err(FieldError::new("items", format!("has more than {MAX_ITEMS} items")));
    }
    let mut items = Vec::with_capacity(o.items.len());
    let mut sum: i64 = 0;
    for (i, item) in o.items.into_iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        check_range(&at("quantity"), item.quantity, 1, MAX_QUANTITY)?;
        check_range(&at("unit_price"), item.unit_price, 0, MAX_AMOUNT)?;
        let gross =
            item.quantity.checked_mul(item.unit_price).filter(|g| *g <= MAX_AMOUNT).ok_or_else(|| {
                FieldError::new(at("unit_price"), format!("quantity × unit_price must be at most {MAX_AMOUNT} minor units"))
            })?;
        if item.discount < 0 || item.discount > gross {
            return Err(FieldError::new(at("discount"), "must be between 0 and quantity × unit_price"));
        }
        // Each line is at most MAX_AMOUNT and an order at most MAX_ITEMS lines: no overflow.
        sum += gross - item.discount;
        items.push(ItemInput {
            sku: required_text(&at("sku"), &item.sku)?,
            product_name: text(&at("product_name"), &item.product_name)?,
            category: text(&at("category"), &item.category)?,
            coupon_code: text(&at("coupon_code"), &item.coupon_code)?,
            ..item
        });
    }
    let amount = match o.amount {
        Some(a) => check_range("amount", a, 0, MAX_AMOUNT)?,
        None if items.is_empty() => return Err(FieldError::new("amount", "is required when an order has no items")),
        None if sum > MAX_AMOUNT => {
            return Err(FieldError::new("amount", format!("the items add up to more than {MAX_AMOUNT} minor units")));
        }
        None => sum,
    };
    Ok(ValidOrder {
        external_id,
        paid_at: o.paid_at.unwrap_or(occurred_at),
        amount,
        coupon_code: text("coupon_code", &o.coupon_code)?,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(raw: Value) -> Result<ValidEvent, FieldError> {
        parse_event(raw)?.validate("CN", Utc::now())
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (
                json!({"id": "e", "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}], "order": {"id": "T1", "items": [{"sku": "A", "quantity": 0, "unit_price": 100}]}}),
                "order.items[0].quantity",
            ),
            (
                json!({"id": "e", "type": "order.paid", "identities": [{"kind": "phone", "value": "null"}], "order": {"id": "T1", "amount": 5}}),
                "identities[0].value",
            ),
            (json!({"id": "e", "type": "order.paid", "order": {"id": "T1", "amount": 5}}), "identities"),
            (json!({"id": "e", "type": "order.paid", "customer_id": 1, "order": {"id": "T1"}}), "order.amount"),
            (json!({"id": "e", "type": "customer.upsert", "customer_id": 1, "order": {"id": "T1"}}), "order"),
            (json!({"id": "e", "type": "behaviour", "customer_id": 1, "behaviour": {"kind": "view"}}), "behaviour"),
            (json!({"id": "e", "type": "behaviour", "customer_id": 1, "behaviour": {"kind": "like", "sku": "A"}}), "behaviour.kind"),
            (json!({"id": "e", "type": "customer.upsert", "customer_id": 1, "colour": "red"}), "colour"),
            (json!({"id": "e", "type": "order.refunded", "refund": {"order_id": "T1", "amount": 0}}), "refund.amount"),
            (json!({"id": "", "type": "customer.upsert", "customer_id": 1}), "id"),
            (json!({"id": "e", "type": "customer.upsert", "customer_id": 1, "profile": {"birthday": "2999-01-01"}}), "profile.birthday"),
        ];
        for (raw, field) in cases {
            let err = check(raw.clone()).expect_err(&raw.to_string());
            assert_eq!(err.field, field, "{raw}: {err}");
        }
    }

    #[test]
    fn an_event_parses_from_its_text_as_from_its_value() {
        let texts = [
            r#"{"id": "e", "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}], "order": {"id": "T1", "amount": 5}}"#,
            r#"{"id": "e", "type": "behaviour", "customer_id": 1, "behaviour": {"kind": "like", "sku": "A"}}"#,
            r#"{"id": "e", "type": "customer.upsert", "customer_id": 1, "colour": "red"}"#,
            r#"{"id": 7, "type": "customer.upsert", "customer_id": 1}"#,
            r#"{"type": "behaviour"}"#,
            r#""not an object""#,
            // A key given twice counts once, its last value, as it did from a value.
            r#"{"id": "e", "type": "customer.upsert", "customer_id": 1, "customer_id": 2}"#,
            r#"{"id": "e", "type": "order.paid", "customer_id": 1, "order": {"id": "T1", "amount": -1}, "order": {"id": "T1", "amount": 5}}"#,
        ];
        for text in texts {
            let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            let (from_text, from_value) = (raw.parse(), value.parse());
            assert_eq!(from_text.0, from_value.0, "{text}");
            match (from_text.1, from_value.1) {
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text}"),
                (Err(a), Err(b)) => assert_eq!((a.field, a.reason), (b.field, b.reason), "{text}"),
                (a, b) => panic!("{text}: {a:?} against {b:?}"),
            }
        }
    }

    #[test]
    fn order_amount_defaults_to_items() {
        let ev = check(json!({"id": "e", "type": "order.paid", "customer_id": 1, "order": {"id": "T1", "items": [
            {"sku": "A", "quantity": 2, "unit_price": 1000, "discount": 150},
            {"sku": "B", "quantity": 1, "unit_price": 500}
        ]}}))
        .unwrap();
        match ev.action {
            Action::OrderPaid { order, .. } => assert_eq!(order.amount, 2350),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn invisible_characters_and_junk_phones_are_refused() {
        let upsert = |id: &str, kind: &str, value: &str, name: &str| json!({"id": id, "type": "customer.upsert", "identities": [{"kind": kind, "value": value}], "profile": {"name": name}});
        let cases = [
            (upsert("e\u{0}1", "nick", "alice", "A"), "id"),
            (upsert("e\u{200b}", "nick", "alice", "A"), "id"),
            (upsert("e1", "nick", "alice\u{200b}", "A"), "identities[0].value"),
            (upsert("e1", "phone", "++8613800001234", "A"), "identities[0].value"),
            (upsert("e1", "phone", "+86-138-0000-1234-", "A"), "identities[0].value"),
            (upsert("e1", "nick", "alice", "Ali\u{202e}ce"), "profile.name"),
            (
                json!({"id": "e1", "type": "customer.upsert", "identities": [{"kind": "nick", "value": "alice"}], "profile": {"attributes": {"note": "a\u{0}"}}}),
                "profile.attributes.note",
            ),
        ];
        for (raw, field) in cases {
            let err = check(raw.clone()).expect_err(&raw.to_string());
            assert_eq!(err.field, field, "{raw}: {err}");
        }
        assert!(check(upsert("e1", "nick", "alice", "Alice 小明")).is_ok());
    }
}
