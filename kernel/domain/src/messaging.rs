//! Messages to customers and the rules they are sent under: consent per
//! channel, a frequency cap per channel and customer over a rolling window,
//! and quiet hours in the shop's time zone.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FieldError;
use crate::identity::IdentityKind;
use crate::text::check_required;

/// A channel name: lower-case letters, digits and `-`, e.g. `sms`, `email`, `webhook`.
pub fn valid_channel(channel: &str) -> bool {
    !channel.is_empty()
        && channel.len() <= 32
        && channel.starts_with(|c: char| c.is_ascii_lowercase())
        && channel.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The identifier a channel addresses a customer by; other channels address
/// the customer by id (a webhook receiver knows them by it).
pub fn recipient_kind(channel: &str) -> Option<IdentityKind> {
    match channel {
        "sms" => Some(IdentityKind::Phone),
        "email" => Some(IdentityKind::Email),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Stored, waiting for its send time (a retry, or the end of quiet hours).
    Queued,
    /// Handed to the connector right now.
    Sending,
    /// The provider took it.
    Sent,
    /// The provider's receipt says it arrived.
    Delivered,
    /// Refused by the provider, or out of attempts.
    Failed,
    /// Not sent, by the shop's rules: no consent, over the cap, no address.
    Suppressed,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 6] = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Suppressed => "suppressed",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Something that happened to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageEvent {
    pub at: DateTime<Utc>,
    pub status: MessageStatus,
    pub detail: String,
}

/// A message of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Message {
    /// The kernel's id; connectors pass it to the provider as the idempotency key.
    pub id: String,
    pub customer_id: i64,
    pub channel: String,
    pub template: String,
    pub variables: BTreeMap<String, String>,
    /// Variables a journey filled from personal data (`{{customer.name}}`), masked
    /// whole without `pii:read`; not shown.
    #[serde(skip)]
    pub personal_variables: Vec<String>,
    pub status: MessageStatus,
    /// Why it was suppressed, failed or held.
    pub reason: Option<String>,
    /// Where it was sent (phone, e-mail or customer id), once it was.
    pub recipient: Option<String>,
    /// The connector plugin that sent it.
    pub plugin_id: Option<String>,
    /// The provider's id, from its answer.
    pub provider_id: Option<String>,
    pub attempts: i64,
    /// When the next attempt is due, while queued.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// `api`, or the journey that sent it.
    pub source: String,
    pub idempotency_key: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub history: Vec<MessageEvent>,
}

/// `POST /v1/messages`: send one message to one customer.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub customer_id: i64,
    pub channel: String,
    /// The provider's template code, e.g. `SMS_2481`.
    pub template: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// A resend with the same key answers the first message.
    pub idempotency_key: String,
}

impl SendRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        if !valid_channel(&self.channel) {
            return Err(FieldError::new("channel", "expected lower-case letters, digits or `-`, e.g. `sms`"));
        }
        check_required("template", &self.template, 128)?;
        check_required("idempotency_key", &self.idempotency_key, 128)?;
        if self.variables.len() > 50 {
            return Err(FieldError::new("variables", "at most 50 variables"));
        }
        for (name, value) in &self.variables {
            if name.is_empty() || name.len() > 64 {
                return Err(FieldError::new(format!("variables.{name}"), "names are 1 to 64 bytes"));
            }
            if value.chars().count() > 1000 {
                return Err(FieldError::new(format!("variables.{name}"), "must be at most 1000 characters"));
            }
        }
        Ok(())
    }
}

/// At most `max` messages per customer on the channel in any `window_hours`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub max: u32,
    pub window_hours: u32,
}

/// A daily span, in the shop's time zone, in which nothing is sent; it may
/// cross midnight (`21:00`–`08:00`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`, exclusive.
    pub end: String,
}

fn parse_hhmm(field: &str, text: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| FieldError::new(field, "expected a time of day as HH:MM"))
}

impl QuietHours {
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        let start = parse_hhmm(&format!("{field}.start"), &self.start)?;
        let end = parse_hhmm(&format!("{field}.end"), &self.end)?;
        if start == end {
            return Err(FieldError::new(format!("{field}.end"), "must differ from start"));
        }
        Ok(())
    }

    /// When quiet hours that hold `now` end, in UTC; `None` outside them.
    pub fn held_until(&self, zone: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (Ok(start), Ok(end)) = (parse_hhmm("start", &self.start), parse_hhmm("end", &self.end)) else { return None };
        let local = now.with_timezone(&zone);
        let time = local.time();
        let quiet = if start < end { time >= start && time < end } else { time >= start || time < end };
        if !quiet {
            return None;
        }
        let mut day = local.date_naive();
        if time >= end {
            day = day.succ_opt()?;
        }
        // A wall time skipped by a daylight-saving jump resolves to the hour after.
        let naive = day.and_time(end);
        let resolved =
            zone.from_local_datetime(&naive).earliest().or_else(|| zone.from_local_datetime(&(naive + Duration::hours(1))).earliest())?;
        Some(resolved.with_timezone(&Utc))
    }
}

/// How a shop sends on one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPolicy {
    #[serde(default)]
    pub frequency_cap: Option<FrequencyCap>,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// What one message costs the shop, in minor units (for journey ROI).
    #[serde(default)]
    pub cost_per_message: i64,
}

/// A shop's messaging settings, by channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessagingSettings {
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelPolicy>,
}

impl MessagingSettings {
    pub fn validate(&self) -> Result<(), FieldError> {
        for (channel, policy) in &self.channels {
            let field = format!("channels.{channel}");
            if !valid_channel(channel) {
                return Err(FieldError::new(field, "expected lower-case letters, digits or `-`, e.g. `sms`"));
            }
            if let Some(cap) = policy.frequency_cap
                && (cap.max == 0 || cap.window_hours == 0 || cap.window_hours > 24 * 366)
            {
                return Err(FieldError::new(
                    format!("{field}.frequency_cap"),
                    "max must be at least 1 and window_hours between 1 and 8784",
                ));
            }
            if let Some(quiet) = &policy.quiet_hours {
                quiet.validate(&format!("{field}.quiet_hours"))?;
            }
            if policy.cost_per_message < 0 {
                return Err(FieldError::new(format!("{field}.cost_per_message"), "must not be negative"));
            }
        }
        Ok(())
    }

    pub fn policy(&self, channel: &str) -> ChannelPolicy {
        self.channels.get(channel).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::OptedIn => "opted_in",
            ConsentStatus::OptedOut => "opted_out",
        }
    }
}

/// Whether a customer accepts messages on a channel. Without a record the
/// customer has not opted out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Consent {
    pub channel: String,
    pub status: ConsentStatus,
    /// Where the customer said so, e.g. `checkout`, `sms-reply`.
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

/// `PUT /v1/customers/{id}/consents/{channel}`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    pub status: ConsentStatus,
    pub source: String,
}

/// The connector that sends a channel of a shop, and where its provider posts receipts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConnectorRoute {
    pub channel: String,
    pub plugin_id: String,
    /// Secret path segment of `POST /v1/receipts/{token}`.
    pub receipt_token: String,
}

/// What a batch of receipts matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReceiptReport {
    pub matched: usize,
    pub unknown: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_across_midnight_hold_until_their_end_in_the_shop_zone() {
        let quiet = QuietHours { start: "21:00".into(), end: "08:00".into() };
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // 22:30 in Shanghai is 14:30 UTC; held until 08:00 next day = 00:00 UTC.
        assert_eq!(quiet.held_until(shanghai, at("2026-03-01T14:30:00Z")), Some(at("2026-03-02T00:00:00Z")));
        // 07:59 in Shanghai: held one minute.
        assert_eq!(quiet.held_until(shanghai, at("2026-03-01T23:59:00Z")), Some(at("2026-03-02T00:00:00Z")));
        // 08:00 and 20:59 are not quiet.
        assert_eq!(quiet.held_until(shanghai, at("2026-03-02T00:00:00Z")), None);
        assert_eq!(quiet.held_until(shanghai, at("2026-03-02T12:59:00Z")), None);
        let lunch = QuietHours { start: "12:00".into(), end: "14:00".into() };
        assert_eq!(lunch.held_until(Tz::UTC, at("2026-03-02T12:30:00Z")), Some(at("2026-03-02T14:00:00Z")));
        assert_eq!(lunch.held_until(Tz::UTC, at("2026-03-02T14:00:00Z")), None);
    }

    #[test]
    fn quiet_hours_ending_in_a_skipped_hour_resolve_after_the_jump() {
        // New York skips 02:00-03:00 on 2026-03-08; quiet until 02:30 ends at 03:30 local (07:30 UTC).
        let quiet = QuietHours { start: "22:00".into(), end: "02:30".into() };
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(quiet.held_until(ny, at("2026-03-08T04:00:00Z")), Some(at("2026-03-08T07:30:00Z")));
    }

    #[test]
    fn settings_name_the_field_at_fault() {
        let mut settings = MessagingSettings::default();
        settings.channels.insert(
            "sms".into(),
            ChannelPolicy { frequency_cap: Some(FrequencyCap { max: 0, window_hours: 24 }), quiet_hours: None, cost_per_message: 5 },
        );
        assert_eq!(settings.validate().unwrap_err().field, "channels.sms.frequency_cap");
        settings.channels.get_mut("sms").unwrap().frequency_cap = None;
        settings.channels.get_mut("sms").unwrap().quiet_hours = Some(QuietHours { start: "25:00".into(), end: "08:00".into() });
        assert_eq!(settings.validate().unwrap_err().field, "channels.sms.quiet_hours.start");
    }
}
