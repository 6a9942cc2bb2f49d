//! Masking of personal data for keys without `pii:read`.

use kith_domain::identity::{self, IdentityKind};
use kith_domain::model::{Customer, Event, IdentityView, Merge};
use serde_json::Value;

fn view(v: &mut IdentityView) {
    if let Ok(kind) = v.kind.parse::<IdentityKind>() {
        v.value = identity::mask(&kind, &v.value);
    }
}

pub fn customer(c: &mut Customer) {
    c.identities.iter_mut().for_each(view);
}

pub fn merge(m: &mut Merge) {
    m.identities.iter_mut().for_each(view);
}

/// Mask every `{"kind": …, "value": …}` identifier found anywhere in an event payload.
pub fn payload(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let kind = map.get("kind").and_then(Value::as_str).and_then(|k| k.parse::<IdentityKind>().ok());
            if let Some(kind) = kind
                && let Some(Value::String(value)) = map.get_mut("value")
            {
                *value = identity::mask(&kind, value);
            }
            map.values_mut().for_each(payload);
        }
        Value::Array(items) => items.iter_mut().for_each(payload),
        _ => {}
    }
}

pub fn event(e: &mut Event) {
    // Only an object with a `kind` can hold an identifier; the log's text is
    // serde_json's, which writes that key as `"kind"`.
    if !e.payload.as_str().contains("\"kind\"") {
        return;
    }
    let mut value = e.payload.value();
    payload(&mut value);
    e.payload = value.into();
}
