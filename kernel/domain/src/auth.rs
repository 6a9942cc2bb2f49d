//! Roles and scopes of API keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a key may do. A shop key holds an explicit list; its role supplies the default list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "events:write")]
    EventsWrite,
    #[serde(rename = "tags:write")]
    TagsWrite,
    #[serde(rename = "plugins:manage")]
    PluginsManage,
    /// Create, change and delete segments; take snapshots.
    #[serde(rename = "segments:manage")]
    SegmentsManage,
    /// Export a segment's members as CSV (always audited).
    #[serde(rename = "segments:export")]
    SegmentsExport,
    #[serde(rename = "pii:read")]
    PiiRead,
    /// Rewards, points adjustments and loyalty settings.
    #[serde(rename = "loyalty:manage")]
    LoyaltyManage,
    /// Spend a customer's points on a reward (a member centre app).
    #[serde(rename = "loyalty:redeem")]
    LoyaltyRedeem,
    /// Coupon templates and issuance.
    #[serde(rename = "coupons:manage")]
    CouponsManage,
    /// Send messages to customers.
    #[serde(rename = "messages:send")]
    MessagesSend,
    /// Channel settings: frequency caps, quiet hours, costs.
    #[serde(rename = "messages:manage")]
    MessagesManage,
    /// Create, change, activate, pause and archive journeys; test-send them.
    #[serde(rename = "journeys:manage")]
    JourneysManage,
}

impl Scope {
    pub const ALL: [Scope; 15] = [
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::EventsRead,
        Scope::EventsWrite,
        Scope::TagsWrite,
        Scope::PluginsManage,
        Scope::SegmentsManage,
        Scope::SegmentsExport,
        Scope::PiiRead,
        Scope::LoyaltyManage,
        Scope::LoyaltyRedeem,
        Scope::CouponsManage,
        Scope::MessagesSend,
        Scope::MessagesManage,
        Scope::JourneysManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::EventsRead => "events:read",
            Scope::EventsWrite => "events:write",
            Scope::TagsWrite => "tags:write",
            Scope::PluginsManage => "plugins:manage",
            Scope::SegmentsManage => "segments:manage",
            Scope::SegmentsExport => "segments:export",
            Scope::PiiRead => "pii:read",
            Scope::LoyaltyManage => "loyalty:manage",
            Scope::LoyaltyRedeem => "loyalty:redeem",
            Scope::CouponsManage => "coupons:manage",
            Scope::MessagesSend => "messages:send",
            Scope::MessagesManage => "messages:manage",
            Scope::JourneysManage => "journeys:manage",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| format!("unknown scope `{s}`"))
    }
}

/// The role of a key. `admin` keys belong to no shop and manage shops and keys;
/// the others are bound to one shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Owner,
    Operator,
    Analyst,
    App,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Owner, Role::Operator, Role::Analyst, Role::App];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::App => "app",
        }
    }

    /// Scopes a key of this role gets when none are given explicitly.
    pub fn default_scopes(self) -> Vec<Scope> {
        use Scope::*;
        match self {
            Role::Admin => vec![],
            Role::Owner => Scope::ALL.to_vec(),
            Role::Operator => vec![
                CustomersRead,
                CustomersWrite,
                EventsRead,
                EventsWrite,
                TagsWrite,
                PluginsManage,
                SegmentsManage,
                LoyaltyManage,
                LoyaltyRedeem,
                CouponsManage,
                MessagesSend,
                MessagesManage,
                JourneysManage,
            ],
            Role::Analyst => vec![CustomersRead, EventsRead],
            Role::App => vec![CustomersRead, CustomersWrite, EventsRead, EventsWrite, TagsWrite, LoyaltyRedeem, MessagesSend],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`; expected admin, owner, operator, analyst or app"))
    }
}
