//! One trait per plugin kind, and the macro that exports an implementation.

use crate::{Customer, Decision, Delivery, Error, InboundRequest, Message, Receipt, ShopContext, Subject};

/// A tag rule: called with customers that changed, or with every customer in a re-tag run.
pub trait TagRule {
    /// Decide for a batch; each decision names its customer.
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error>;
}

/// A scoring model: scores customers in batches with the shop's context.
pub trait ScoringModel {
    /// Score a batch: `set-score` decisions, one or more per customer.
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error>;
}

/// A loyalty scheme: points and tiers.
pub trait LoyaltyScheme {
    /// React to events: orders paid and refunded, profile changes.
    fn on_events(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error>;
    /// The periodic review: expiries, downgrades, birthdays.
    fn review(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error>;
}

/// A channel connector: sends messages and reads delivery receipts.
pub trait ChannelConnector {
    /// Send one message; use its `id` as the provider's idempotency key.
    fn deliver(ctx: &ShopContext, message: Message) -> Result<Delivery, Error>;
    /// Parse a receipt the provider posted back.
    fn parse_receipt(ctx: &ShopContext, request: InboundRequest) -> Result<Vec<Receipt>, Error>;
}

/// Export a [`TagRule`] implementation as the component's `tag-rule` world.
#[cfg(feature = "tag-rule")]
#[macro_export]
macro_rules! export_tag_rule {
    ($ty:ty) => {
        const _: () = {
            struct KithTagRule;
            impl $crate::bindings::tag_rule::Guest for KithTagRule {
                fn evaluate(
                    ctx: $crate::ShopContext,
                    batch: ::std::vec::Vec<$crate::Subject>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, $crate::Error> {
                    <$ty as $crate::TagRule>::evaluate(&ctx, batch)
                }
            }
    $crate::bindings::tag_rule::export!(KithTagRule with_types_in $crate::bindings::tag_rule);
        };
    };
}

/// Export a [`ScoringModel`] implementation as the component's `scoring-model` world.
#[cfg(feature = "scoring-model")]
#[macro_export]
macro_rules! export_scoring_model {
    ($ty:ty) => {
        const _: () = {
            struct KithScoringModel;
            impl $crate::bindings::scoring_model::Guest for KithScoringModel {
                fn score(
                    ctx: $crate::ShopContext,
                    batch: ::std::vec::Vec<$crate::Customer>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, $crate::Error> {
                    <$ty as $crate::ScoringModel>::score(&ctx, batch)
                }
            }
    $crate::bindings::scoring_model::export!(KithScoringModel with_types_in $crate::bindings::scoring_model);
        };
    };
}

/// Export a [`LoyaltyScheme`] implementation as the component's `loyalty-scheme` world.
#[cfg(feature = "loyalty-scheme")]
#[macro_export]
macro_rules! export_loyalty_scheme {
    ($ty:ty) => {
        const _: () = {
            struct KithLoyaltyScheme;
            impl $crate::bindings::loyalty_scheme::Guest for KithLoyaltyScheme {
                fn on_events(
                    ctx: $crate::ShopContext,
                    batch: ::std::vec::Vec<$crate::Subject>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, $crate::Error> {
                    <$ty as $crate::LoyaltyScheme>::on_events(&ctx, batch)
                }
                fn review(
                    ctx: $crate::ShopContext,
                    batch: ::std::vec::Vec<$crate::Customer>,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Decision>, $crate::Error> {
                    <$ty as $crate::LoyaltyScheme>::review(&ctx, batch)
                }
            }
    $crate::bindings::loyalty_scheme::export!(KithLoyaltyScheme with_types_in $crate::bindings::loyalty_scheme);
        };
    };
}

/// Export a [`ChannelConnector`] implementation as the component's `channel-connector` world.
#[cfg(feature = "channel-connector")]
#[macro_export]
macro_rules! export_channel_connector {
    ($ty:ty) => {
        const _: () = {
            struct KithChannelConnector;
            impl $crate::bindings::channel_connector::Guest for KithChannelConnector {
                fn deliver(ctx: $crate::ShopContext, message: $crate::Message) -> ::std::result::Result<$crate::Delivery, $crate::Error> {
                    <$ty as $crate::ChannelConnector>::deliver(&ctx, message)
                }
                fn parse_receipt(
                    ctx: $crate::ShopContext,
                    request: $crate::InboundRequest,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::Receipt>, $crate::Error> {
                    <$ty as $crate::ChannelConnector>::parse_receipt(&ctx, request)
                }
            }
    $crate::bindings::channel_connector::export!(KithChannelConnector with_types_in $crate::bindings::channel_connector);
        };
    };
}
