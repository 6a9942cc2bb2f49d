//! The one definition of personal data, and how it is masked for keys without `pii:read`.
//!
//! Personal data is what identifies a person or reaches them:
//!
//! - the profile's **name** and **birthday**;
//! - the **values of identifiers** of the kinds phone, e-mail, union id and
//!   nick ([`is_personal_kind`]); external ids are the shop's own record keys
//!   (`external:erp`) and are not personal by themselves;
//! - **custom attributes** whose name says they hold one of the above or an
//!   address ([`is_personal_attribute`]: `address`, `phone`, `mobile`, `email`,
//!   `id_card`, `real_name`…);
//! - wherever these are copied: event payloads (identifiers, profiles), message
//!   recipients and the variables a journey filled from personal placeholders,
//!   merge records, audit details, and phone numbers or e-mail addresses written
//!   into free text (plugin logs, errors, payload strings: [`mask_free_text`]).
//!
//! Gender, province, city, tier, tags, scores and statistics are not personal by
//! this definition: they are what segments and dashboards are made of.
//!
//! Every type the API serialises that holds one of them implements [`Personal`];
//! the API masks through it and nowhere else.

use serde_json::{Map, Value};

use crate::identity::{self, IdentityKind};

/// The kinds of personal field, for documentation and exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalField {
    Name,
    Birthday,
    Phone,
    Email,
    /// A union id or a nick.
    Identifier,
    /// A custom attribute named as personal (an address, an id card…).
    Attribute,
}

/// Export columns that are personal data.
pub const EXPORT_COLUMNS: [&str; 4] = ["name", "phone", "email", "birthday"];

/// Keys of payloads and placeholder paths that carry personal data.
pub const PERSONAL_KEYS: [&str; 13] = [
    "name",
    "birthday",
    "phone",
    "email",
    "identities",
    "value",
    "nick",
    "unionid",
    "address",
    "profile",
    "recipient",
    "mobile",
    "attributes",
];

/// Whether identifiers of `kind` are personal data.
pub fn is_personal_kind(kind: &IdentityKind) -> bool {
    matches!(kind, IdentityKind::Phone | IdentityKind::Email | IdentityKind::UnionId | IdentityKind::Nick)
}

/// Whether a custom attribute's name says it holds personal data.
pub fn is_personal_attribute(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const PARTS: [&str; 11] =
        ["address", "phone", "mobile", "email", "mail", "id_card", "idcard", "passport", "real_name", "realname", "birthday"];
    key == "name" || PARTS.iter().any(|p| key.contains(p))
}

/// Whether a journey placeholder (`customer.name`, `trigger.value`) reads personal data: anything
/// of the customer but their id (the bare `customer` too), and any path of the trigger through a
/// personal key, a `customer` object or a key named as a personal attribute (`trigger.order.phone_no`).
///
/// A placeholder names a scalar: one resolving to an object or an array renders nothing (see
/// [`crate::journeys::render`]) and one naming a root or a known object (`{{trigger}}`,
/// `{{trigger.order}}`, `{{trigger.identities}}`) is refused when a journey is saved, so a
/// prefix of a personal path never copies the personal fields below it into a message.
pub fn is_personal_placeholder(path: &str) -> bool {
    let mut parts = path.split('.').map(str::trim);
    match parts.next() {
        Some("customer") => !matches!((parts.next(), parts.next()), (Some("id"), None)),
        Some("trigger") => parts.any(|p| PERSONAL_KEYS.contains(&p) || p == "customer" || is_personal_attribute(p)),
        _ => false,
    }
}

/// A personal text shown masked: its first character and `***`.
pub fn mask_text(value: &str) -> String {
    match value.chars().next() {
        None => String::new(),
        Some(first) => format!("{first}***"),
    }
}

/// An identifier's value as a key without `pii:read` sees it.
pub fn mask_identity(kind: &IdentityKind, value: &str) -> String {
    match kind {
        IdentityKind::Phone | IdentityKind::Email => identity::mask(kind, value),
        IdentityKind::UnionId | IdentityKind::Nick => mask_text(value),
        IdentityKind::External(_) => value.to_owned(),
    }
}

/// Mask phone numbers (E.164, `+` and at least 7 digits, or a Chinese mobile
/// number of 11 digits) and e-mail addresses written anywhere in `text`.
pub fn mask_free_text(text: &str) -> String {
    if !text.bytes().any(|b| b == b'@' || b == b'+' || b.is_ascii_digit()) {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = email_at(&chars, i) {
            let found: String = chars[i..end].iter().collect();
            out.push_str(&identity::mask(&IdentityKind::Email, &found));
            i = end;
            continue;
        }
        if let Some(end) = phone_at(&chars, i) {
            let found: String = chars[i..end].iter().collect();
            out.push_str(&identity::mask(&IdentityKind::Phone, &found));
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

/// An e-mail address starting at `i` (a local part not preceded by one), its end.
fn email_at(chars: &[char], i: usize) -> Option<usize> {
    if !email_local(chars[i]) || (i > 0 && email_local(chars[i - 1])) {
        return None;
    }
    let mut at = i;
    while at < chars.len() && email_local(chars[at]) {
        at += 1;
    }
    if at == i || at >= chars.len() || chars[at] != '@' {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '-')) {
        end += 1;
    }
    while end > at + 1 && chars[end - 1] == '.' {
        end -= 1;
    }
    let domain: String = chars[at + 1..end].iter().collect();
    (domain.contains('.') && !domain.starts_with('.')).then_some(end)
}

/// A phone number starting at `i`, its end.
fn phone_at(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && (word(chars[i - 1]) || chars[i - 1] == '+') {
        return None;
    }
    if chars[i] == '+' {
        let mut end = i + 1;
        let mut digits = 0;
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits += 1;
            } else if !(matches!(chars[end], ' ' | '-') && chars.get(end + 1).is_some_and(char::is_ascii_digit) && digits > 0) {
                break;
            }
            end += 1;
        }
        return (digits >= 7).then_some(end);
    }
    // A Chinese mobile number: 1, then 3-9, then nine digits, alone.
    if chars[i] == '1' && i + 11 <= chars.len() && chars[i..i + 11].iter().all(char::is_ascii_digit) {
        let second = chars[i + 1];
        let alone = chars.get(i + 11).is_none_or(|c| !word(*c));
        if ('3'..='9').contains(&second) && alone {
            return Some(i + 11);
        }
    }
    None
}

/// Mask a profile object (as payloads and snapshots carry it): name, birthday, personal attributes.
fn mask_profile_object(map: &mut Map<String, Value>) {
    for (key, value) in map.iter_mut() {
        match (key.as_str(), &mut *value) {
            ("name", Value::String(s)) => *s = mask_text(s),
            ("birthday", v) => *v = Value::Null,
            ("attributes", Value::Object(attrs)) => mask_attributes(attrs),
            _ => {}
        }
    }
}

fn mask_attributes(attrs: &mut Map<String, Value>) {
    for (key, value) in attrs.iter_mut() {
        if is_personal_attribute(key) {
            *value = match value {
                Value::String(s) => Value::String(mask_text(s)),
                Value::Null => Value::Null,
                _ => Value::String("***".into()),
            };
        } else {
            mask_payload(value);
        }
    }
}

/// Mask personal data anywhere in a JSON document (an event payload, an audit detail):
/// identifiers (`{"kind", "value"}`), profiles, personal keys, and phones and
/// e-mail addresses in any string.
pub fn mask_payload(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).and_then(|k| k.parse::<IdentityKind>().ok());
            if let Some(kind) = kind
                && let Some(Value::String(value)) = map.get_mut("value")
            {
                *value = mask_identity(&kind, value);
            }
            for (key, value) in map.iter_mut() {
                match (key.as_str(), &mut *value) {
                    ("profile" | "customer", Value::Object(inner)) => {
                        mask_profile_object(inner);
                        inner.values_mut().for_each(mask_payload);
                    }
                    ("birthday", v) => *v = Value::Null,
                    ("phone" | "mobile", Value::String(s)) => *s = identity::mask(&IdentityKind::Phone, s),
                    ("email", Value::String(s)) => *s = identity::mask(&IdentityKind::Email, s),
                    ("nick" | "unionid" | "address" | "recipient", Value::String(s)) => *s = mask_text(s),
                    ("attributes", Value::Object(attrs)) => mask_attributes(attrs),
                    (_, value) => mask_payload(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_payload),
        Value::String(s) => *s = mask_free_text(s),
        _ => {}
    }
}

/// A value the API serialises that may hold personal data, masked for a key without `pii:read`.
pub trait Personal {
    fn mask_personal(&mut self);
}

impl Personal for crate::model::IdentityView {
    fn mask_personal(&mut self) {
        if let Ok(kind) = self.kind.parse::<IdentityKind>() {
            self.value = mask_identity(&kind, &self.value);
        }
    }
}

impl Personal for crate::model::Profile {
    fn mask_personal(&mut self) {
        if let Some(name) = self.name.as_mut() {
            *name = mask_text(name);
        }
        self.birthday = None;
        mask_attributes(&mut self.attributes);
    }
}

impl Personal for crate::model::Customer {
    fn mask_personal(&mut self) {
        self.profile.mask_personal();
        self.identities.iter_mut().for_each(Personal::mask_personal);
    }
}

impl Personal for crate::model::CustomerDetail {
    fn mask_personal(&mut self) {
        self.customer.mask_personal();
        self.timeline.iter_mut().for_each(Personal::mask_personal);
    }
}

impl Personal for crate::model::Merge {
    fn mask_personal(&mut self) {
        self.identities.iter_mut().for_each(Personal::mask_personal);
    }
}

/// Payload text that may hold personal data; anything else is passed on without being parsed.
fn may_hold_personal(text: &str) -> bool {
    text.contains("\"kind\"")
        || text.contains("\"profile\"")
        || text.contains("\"customer\"")
        || text.contains("\"birthday\"")
        || text.contains("\"attributes\"")
        || text.contains('@')
        || text.contains('+')
        || text.as_bytes().windows(11).any(|w| w.iter().all(u8::is_ascii_digit))
        || PERSONAL_KEYS.iter().any(|k| text.contains(&format!("\"{k}\"")))
}

impl Personal for crate::model::Event {
    fn mask_personal(&mut self) {
        if !may_hold_personal(self.payload.as_str()) {
            return;
        }
        let mut value = self.payload.value();
        mask_payload(&mut value);
        self.payload = value.into();
    }
}

impl Personal for crate::model::AuditEntry {
    fn mask_personal(&mut self) {
        mask_payload(&mut self.detail);
        if let Some(target) = self.target.as_mut() {
            *target = mask_free_text(target);
        }
    }
}

impl Personal for crate::messaging::Message {
    fn mask_personal(&mut self) {
        if let Some(recipient) = self.recipient.as_mut() {
            *recipient = match crate::messaging::recipient_kind(&self.channel) {
                Some(kind) => mask_identity(&kind, recipient),
                None => mask_free_text(recipient),
            };
        }
        for (name, value) in self.variables.iter_mut() {
            *value = if self.personal_variables.contains(name) { mask_text(value) } else { mask_free_text(value) };
        }
        for event in &mut self.history {
            event.detail = mask_free_text(&event.detail);
        }
        if let Some(reason) = self.reason.as_mut() {
            *reason = mask_free_text(reason);
        }
    }
}

impl Personal for crate::journeys::TestSend {
    fn mask_personal(&mut self) {
        self.messages.iter_mut().for_each(Personal::mask_personal);
    }
}

impl Personal for crate::journeys::Run {
    fn mask_personal(&mut self) {
        for step in &mut self.history {
            step.detail = mask_free_text(&step.detail);
        }
        if let Some(reason) = self.end_reason.as_mut() {
            *reason = mask_free_text(reason);
        }
    }
}

impl Personal for crate::plugin::PluginLog {
    fn mask_personal(&mut self) {
        self.message = mask_free_text(&self.message);
    }
}

impl Personal for crate::plugin::DeadLetter {
    fn mask_personal(&mut self) {
        self.error = mask_free_text(&self.error);
    }
}

impl Personal for crate::plugin::Subscription {
    fn mask_personal(&mut self) {
        if let Some(error) = self.last_error.as_mut() {
            *error = mask_free_text(error);
        }
    }
}

impl Personal for crate::plugin::Run {
    fn mask_personal(&mut self) {
        if let Some(error) = self.error.as_mut() {
            *error = mask_free_text(error);
        }
    }
}

impl<T: Personal> Personal for Vec<T> {
    fn mask_personal(&mut self) {
        self.iter_mut().for_each(Personal::mask_personal);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{NaiveDate, Utc};
    use serde_json::json;

    use super::*;
    use crate::model::{AuditEntry, Customer, CustomerDetail, Event, IdentityView, Merge, Profile, Stats};

    /// Every personal value the samples hold, none of which may survive masking.
    const SECRETS: [&str; 9] = [
        "+8613812345678",
        "13812345678",
        "ming@example.com",
        "Ming Li",
        "1990-04-01",
        "oUnion0123456789",
        "mingming_nick",
        "No. 8 West Lake Road",
        "440101199004011234",
    ];

    fn identities() -> Vec<IdentityView> {
        [("phone", "+8613812345678"), ("email", "ming@example.com"), ("unionid", "oUnion0123456789"), ("nick", "mingming_nick")]
            .into_iter()
            .map(|(kind, value)| IdentityView { kind: kind.into(), value: value.into(), created_at: Utc::now() })
            .collect()
    }

    fn customer() -> Customer {
        let attributes = json!({"address": "No. 8 West Lake Road", "id_card": "440101199004011234", "vip_level": 3});
        Customer {
            id: 1,
            profile: Profile {
                name: Some("Ming Li".into()),
                gender: Some("f".into()),
                birthday: NaiveDate::from_ymd_opt(1990, 4, 1),
                province: Some("浙江".into()),
                city: Some("杭州".into()),
                attributes: attributes.as_object().unwrap().clone(),
            },
            identities: identities(),
            stats: Stats::default(),
            tags: vec![],
            scores: vec![],
            points: 0,
            tier: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn event(payload: Value) -> Event {
        Event { seq: 1, kind: "x".into(), customer_id: Some(1), payload: payload.into(), created_at: Utc::now() }
    }

    fn payloads() -> Vec<Value> {
        vec![
            json!({"identities": [{"kind": "phone", "value": "+8613812345678"}, {"kind": "nick", "value": "mingming_nick"}]}),
            json!({"kind": "email", "value": "ming@example.com"}),
            json!({"profile": {"name": "Ming Li", "birthday": "1990-04-01", "attributes": {"address": "No. 8 West Lake Road"}}}),
            json!({"note": "call 13812345678 or write to ming@example.com", "id_card": "x"}),
            json!({"customer": {"name": "Ming Li", "phone": "+8613812345678"}, "unionid": "oUnion0123456789"}),
            json!({"attributes": {"real_name": "Ming Li", "idcard": "440101199004011234"}}),
        ]
    }

    fn assert_masked<T: Personal + serde::Serialize>(what: &str, mut value: T) {
        let before = serde_json::to_string(&value).unwrap();
        assert!(SECRETS.iter().any(|s| before.contains(s)), "{what}: the sample holds no personal data: {before}");
        value.mask_personal();
        let after = serde_json::to_string(&value).unwrap();
        for secret in SECRETS {
            assert!(!after.contains(secret), "{what}: `{secret}` survived masking: {after}");
        }
    }

    /// Every type the API serialises that holds personal data goes through [`Personal`];
    /// the API's own test lists the OpenAPI schemas that hold any and checks each is one of these.
    #[test]
    fn every_type_holding_personal_data_masks_all_of_it() {
        assert_masked("Customer", customer());
        assert_masked("CustomerDetail", CustomerDetail { customer: customer(), timeline: payloads().into_iter().map(event).collect() });
        assert_masked(
            "Merge",
            Merge {
                id: 1,
                survivor_id: 1,
                merged_id: 2,
                reason: "r".into(),
                actor: "a".into(),
                created_at: Utc::now(),
                identities: identities(),
                unmerged_at: None,
                unmerged_by: None,
            },
        );
        for payload in payloads() {
            assert_masked("Event", event(payload.clone()));
            assert_masked(
                "AuditEntry",
                AuditEntry {
                    id: 1,
                    shop_id: Some(1),
                    key_id: None,
                    action: "a".into(),
                    target: None,
                    detail: payload,
                    created_at: Utc::now(),
                },
            );
        }
        let message = crate::messaging::Message {
            id: "m".into(),
            customer_id: 1,
            channel: "sms".into(),
            template: "T".into(),
            variables: BTreeMap::from([("who".into(), "Ming Li".into()), ("p".into(), "+8613812345678".into())]),
            personal_variables: vec!["who".into()],
            status: crate::messaging::MessageStatus::Sent,
            reason: None,
            recipient: Some("+8613812345678".into()),
            plugin_id: None,
            provider_id: None,
            attempts: 1,
            next_attempt_at: None,
            source: "api".into(),
            idempotency_key: "k".into(),
            created_at: Utc::now(),
            sent_at: None,
            delivered_at: None,
            history: vec![crate::messaging::MessageEvent {
                at: Utc::now(),
                status: crate::messaging::MessageStatus::Sent,
                detail: "sent to +8613812345678".into(),
            }],
        };
        assert_masked("TestSend", crate::journeys::TestSend { customer_id: 1, messages: vec![message.clone()] });
        assert_masked("Message", message);
        assert_masked(
            "PluginLog",
            crate::plugin::PluginLog {
                id: 1,
                level: crate::plugin::LogLevel::Info,
                message: "posting to +8613812345678 (ming@example.com)".into(),
                created_at: Utc::now(),
            },
        );
    }

    #[test]
    fn free_text_keeps_what_is_not_a_phone_or_an_address() {
        for text in ["order T20260501000123 paid 9900", "2026-05-01T08:00:00Z", "sku 1234567", "3456789012345678901", "a@b"] {
            assert_eq!(mask_free_text(text), text);
        }
        assert_eq!(mask_free_text("to +86 138 1234 5678."), "to +86 138 **** 5678.");
        assert_eq!(mask_free_text("13812345678"), "138****5678");
        assert_eq!(mask_free_text("Ming <ming@example.com>"), "Ming <m***@example.com>");
    }

    #[test]
    fn placeholders_of_personal_data() {
        for p in
            ["customer.name", "customer.phone", "trigger.value", "trigger.identities", "trigger.profile.name", "trigger.identities.0.value"]
        {
            assert!(is_personal_placeholder(p), "{p}");
        }
        for p in ["customer", "customer.id.x", "trigger.customer.nick", "trigger.order.buyer_phone", "trigger.buyer.real_name"] {
            assert!(is_personal_placeholder(p), "{p}");
        }
        for p in ["customer.id", "trigger.amount", "trigger.order.id", "trigger.order.items.sku", "coupon.code", "journey.name"] {
            assert!(!is_personal_placeholder(p), "{p}");
        }
    }

    /// A placeholder stopping at an object (`{{trigger}}`, `{{trigger.order}}`) is no way around
    /// the path rule: it is refused when saved, for every author, and renders nothing if a payload
    /// holds an object where its author expected a scalar.
    #[test]
    fn placeholders_naming_objects_copy_nothing() {
        use crate::journeys::{JourneyInput, check_input, render};
        let parse = |definition: &Value| {
            check_input(&serde_json::from_value::<JourneyInput>(json!({"name": "j", "definition": definition})).unwrap())
        };
        let def = |text: &str| {
            json!({"trigger": {"event": "order.paid"}, "start": "s",
                   "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {"p": text}}}}})
        };
        // A version stored before this rule still loads; its object placeholders render nothing.
        assert!(crate::journeys::parse(&def("{{trigger.order}}")).is_ok());
        for text in [
            "{{trigger}}",
            "{{customer}}",
            "{{trigger.order}}",
            "{{ trigger.identities }}",
            "{{trigger.profile}}",
            "x {{trigger.order.items}}",
        ] {
            let e = parse(&def(text)).unwrap_err();
            assert_eq!(e.field, "definition.steps.s.send.variables.p", "{text}: {e:?}");
        }
        let d = parse(&def("{{trigger.order.id}} {{trigger.order.items.sku}} {{trigger.amount}}")).unwrap();
        assert!(d.personal_references().is_empty());
        let ctx = json!({
            "trigger": {"amount": 5, "paid": true, "buyer": {"name": "Ming", "nick": "nick_secret_77", "unionid": "oUnion42"},
                        "order": {"id": "T1", "items": [{"sku": "A"}]}, "tags": ["Ming"]},
            "customer": {"id": 7, "name": "Ming"}
        });
        assert_eq!(render("[{{trigger.buyer}}][{{trigger.tags}}][{{trigger.order}}][{{customer}}][{{trigger}}]", &ctx), "[][][][][]");
        assert_eq!(render("{{trigger.order.id}} {{trigger.order.items.sku}} {{trigger.amount}} {{trigger.paid}}", &ctx), "T1 A 5 true");
    }
}
