//! What the kernel shows: shops, keys, customers and their records, events,
//! merges and audit entries, as the store returns them and the API serialises them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::FieldError;
use crate::auth::{Role, Scope};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Shop {
    pub id: i64,
    pub name: String,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub time_zone: String,
    /// ISO 4217 code; every amount of the shop is in this currency's minor unit.
    pub currency: String,
    /// ISO 3166 country whose numbering plan applies to phone numbers written without a country code.
    pub region: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A shop to create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShop {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_time_zone() -> String {
    "Asia/Shanghai".into()
}
fn default_currency() -> String {
    "CNY".into()
}
fn default_region() -> String {
    "CN".into()
}

impl NewShop {
    pub fn validate(&self) -> Result<(), FieldError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(FieldError::new("name", "must be 1-100 characters"));
        }
        crate::text::check("name", name)?;
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(FieldError::new("time_zone", format!("`{}` is not an IANA time zone", self.time_zone)));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::new("currency", "must be an ISO 4217 code such as CNY"));
        }
        if !crate::identity::is_known_region(&self.region) {
            return Err(FieldError::new("region", "must be an ISO 3166 country code such as CN"));
        }
        Ok(())
    }
}

/// An API key as listed; the secret is shown once, at creation, and stored only hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// The shop the key is bound to; absent for admin keys.
    pub shop_id: Option<i64>,
    pub name: String,
    pub role: Role,
    pub scopes: Vec<Scope>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::option")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who created the key: `user:<id>` (a console user's session), another key's id, or
    /// `cli:<label>` (the command line); absent for keys made before it was recorded. A
    /// console user's keys, and the keys made with those, are revoked when the user is removed.
    pub created_by: Option<String>,
}

/// A key to create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The shop to bind the key to; admin keys may name any shop, shop owners only their own.
    pub shop_id: Option<i64>,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    pub role: Role,
    /// Explicit scopes; the role's defaults when absent.
    pub scopes: Option<Vec<Scope>>,
}

/// A freshly created key with its secret token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: ApiKey,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
}

/// Who is calling, as established from a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub key_id: String,
    pub shop_id: Option<i64>,
    pub role: Role,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub name: Option<String>,
    pub gender: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birthday: Option<NaiveDate>,
    pub province: Option<String>,
    pub city: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
}

/// Purchase statistics, maintained on every order and refund. Money in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// Paid amounts less refunds.
    pub total_spent: i64,
    /// Paid orders not fully refunded.
    pub order_count: i64,
    /// When the first of those orders was paid (fully refunded orders do not count).
    #[serde(serialize_with = "rfc3339::option")]
    pub first_order_at: Option<DateTime<Utc>>,
    /// When the last of those orders was paid (fully refunded orders do not count).
    #[serde(serialize_with = "rfc3339::option")]
    pub last_order_at: Option<DateTime<Utc>>,
    /// `total_spent / order_count`, rounded down; absent without orders.
    pub average_order_value: Option<i64>,
    pub refund_count: i64,
    pub refund_amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdentityView {
    pub kind: String,
    /// Normalised value; phone numbers and e-mail addresses are masked without `pii:read`.
    pub value: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tag {
    pub tag: String,
    /// `manual`, or the id of the plugin that set it.
    pub source: String,
    pub reason: Option<String>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Score {
    pub model: String,
    pub value: f64,
    pub label: Option<String>,
    pub explanation: Option<String>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub scored_at: DateTime<Utc>,
}

/// An entry of the append-only event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub customer_id: Option<i64>,
    #[schema(value_type = Object)]
    pub payload: Payload,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

/// An event's payload as the log holds it: JSON text, which a response carries as
/// it is. Readers of events mostly pass payloads on; parsing each into a
/// [`Value`] to serialise it again was a tenth of a profile read (twenty events
/// on its timeline). [`Payload::value`] parses it for those that look inside.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct Payload(Box<serde_json::value::RawValue>);

impl Payload {
    /// A payload from JSON text as stored; text that is not JSON (the log never
    /// holds any) reads as `null` rather than failing the read.
    pub fn from_text(text: String) -> Payload {
        serde_json::value::RawValue::from_string(text).map(Payload).unwrap_or_else(|_| Payload::from(Value::Null))
    }

    /// The payload parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload(serde_json::value::to_raw_value(&value).expect("a Value serialises"))
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.as_str() == other.as_str()
    }
}

/// From any JSON (a response read back as text, or a [`Value`] already parsed).
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        Value::deserialize(d).map(Payload::from)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub id: i64,
    pub profile: Profile,
    pub identities: Vec<IdentityView>,
    pub stats: Stats,
    pub tags: Vec<Tag>,
    pub scores: Vec<Score>,
    /// Points balance: the sum of the customer's points ledger.
    pub points: i64,
    /// Membership tier, as the shop's loyalty scheme last set it.
    pub tier: Option<String>,
    /// When the customer was first seen: the earliest time of their events (an order's payment,
    /// a behaviour, an upsert's `occurred_at`), whenever those events arrived.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// A customer with their most recent events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    pub timeline: Vec<Event>,
}

/// A recorded merge of one customer into another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Merge {
    pub id: i64,
    /// The older customer, who absorbed the other.
    pub survivor_id: i64,
    pub merged_id: i64,
    pub reason: String,
    /// Key id or ingest event that caused it.
    pub actor: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Identifiers that moved from the merged customer (masked without `pii:read`).
    pub identities: Vec<IdentityView>,
    #[serde(serialize_with = "rfc3339::option")]
    pub unmerged_at: Option<DateTime<Utc>>,
    pub unmerged_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub shop_id: Option<i64>,
    pub key_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

/// What a shop's segment exports may hold; only the shop's owner changes it, and every change is audited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportPolicy {
    /// Whether exports may hold the personal columns (`name`, `phone`, `email`, `birthday`), and then
    /// only for keys with `pii:read`. Default `false`: no export holds personal data.
    pub personal_columns: bool,
}

/// What an ingest batch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestReport {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// One outcome per event, in the order sent.
    pub outcomes: Vec<EventOutcome>,
}

/// What happened to one event of an ingest batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventOutcome {
    /// Position in the batch.
    pub index: usize,
    /// The client's id, when the event had one.
    pub id: Option<String>,
    pub status: OutcomeStatus,
    /// The customer the event applied to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    Accepted,
    Duplicate,
    Rejected,
}

impl OutcomeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Accepted => "accepted",
            OutcomeStatus::Duplicate => "duplicate",
            OutcomeStatus::Rejected => "rejected",
        }
    }
}

/// The state of a console user: `invited` until the invitation is accepted (no password
/// yet), `locked` for 15 minutes after 5 failed sign-ins in a row, `active` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleUserStatus {
    Invited,
    Active,
    Locked,
}

/// A person who signs in to the merchant console: one shop, one role (`owner`, `operator`
/// or `analyst`, with the scopes a key of that role has by default). The name is the shop's
/// own staff member's, shown only to the shop's owners: no customer's personal data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleUser {
    pub id: i64,
    /// Unique across the kernel, lower-cased.
    pub login: String,
    pub name: Option<String>,
    pub role: Role,
    pub status: ConsoleUserStatus,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::option")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Who the console is signed in as. A session cookie gives the user and the CSRF token its
/// writes send as `X-Kith-CSRF`; a shop's API key (the console's development mode) gives no
/// user and no CSRF token.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleSession {
    pub user: Option<ConsoleUser>,
    pub role: Role,
    pub scopes: Vec<Scope>,
    pub shop: Shop,
    pub csrf_token: Option<String>,
    /// When the session ends: 12 hours after sign-in, however active (absolute expiry).
    #[serde(serialize_with = "rfc3339::option")]
    pub expires_at: Option<DateTime<Utc>>,
}

// The CSRF token is never in a `Debug` output, which logs may carry.
impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("user", &self.user)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("shop", &self.shop)
            .field("csrf_token", &self.csrf_token.as_ref().map(|_| "<redacted>"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// A console user to create: invited (the API), or with a password (`kith admin console-user`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConsoleUser {
    /// 1-64 characters, unique across the kernel (compared trimmed and lower-cased).
    #[schema(min_length = 1, max_length = 64)]
    pub login: String,
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// `owner`, `operator` or `analyst`.
    pub role: Role,
}

/// Timestamps as chrono writes them (`2026-11-23T23:34:09.847Z`), formatted
/// into one string: chrono's own `Serialize` hands its `Display` to
/// `collect_str`, which escapes each piece the formatter writes, a character at
/// a time for some. A page of customers carries a few hundred timestamps; they
/// were a third of serialising it, half that now.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn option<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serialize(at, s),
            None => s.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        use chrono::{TimeZone, Utc};

        #[test]
        fn writes_what_chrono_writes() {
            let times = [0, 1_700_000_000_000, 1_700_000_000_847, 1_700_000_000_800, -86_400_000, 253_402_300_799_999];
            for ms in times {
                let at = Utc.timestamp_millis_opt(ms).unwrap();
                let mut ours = Vec::new();
                super::serialize(&at, &mut serde_json::Serializer::new(&mut ours)).unwrap();
                assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&at).unwrap(), "{ms}");
            }
            let micro = Utc.timestamp_opt(1_700_000_000, 123_456_000).unwrap();
            let mut ours = Vec::new();
            super::serialize(&micro, &mut serde_json::Serializer::new(&mut ours)).unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&micro).unwrap());
        }
    }
}
