//! Authentication as extractors: a handler's signature says which key it needs.
//!
//! `ShopKey<S>` is a key bound to a shop holding scope `S`; `Owner` a shop's
//! owner key; `Admin` an admin key; `KeyManager` either of the last two.
//! Every shop-scoped query uses the key's shop, so another shop's resources
//! are simply not found.
//!
//! A console user's session stands in for a key: without an `Authorization` header, the
//! `kith_session` cookie is looked up and the request runs as a principal of the user's
//! shop and role, with the role's default scopes and `user:<id>` as its key id (which
//! audit entries name). A cookie-authenticated request that may change something (any
//! method but GET, HEAD and OPTIONS) must send the session's CSRF token as
//! `X-Kith-CSRF`: the cookie is `SameSite=Strict` already, and the token is what a
//! forged request cannot know. Such a request whose browser says it came from another
//! site (`Sec-Fetch-Site: cross-site`) is refused whatever it sends. Bearer keys behave as
//! they always did.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, header};
use kith_core::console::SessionCaller;
use kith_core::prelude::*;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::Principal;

use crate::AppState;
use crate::error::ApiError;

/// A scope a route requires, as a type.
pub trait RequiredScope: Send + Sync {
    const SCOPE: Option<Scope>;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $name:ident => $scope:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Option<Scope> = $scope;
        }
    )*};
}

scopes! {
    /// Any key of the shop.
    AnyScope => None;
    CustomersRead => Some(Scope::CustomersRead);
    CustomersWrite => Some(Scope::CustomersWrite);
    EventsRead => Some(Scope::EventsRead);
    EventsWrite => Some(Scope::EventsWrite);
    TagsWrite => Some(Scope::TagsWrite);
    PluginsManage => Some(Scope::PluginsManage);
    SegmentsManage => Some(Scope::SegmentsManage);
    SegmentsExport => Some(Scope::SegmentsExport);
    LoyaltyManage => Some(Scope::LoyaltyManage);
    LoyaltyRedeem => Some(Scope::LoyaltyRedeem);
    CouponsManage => Some(Scope::CouponsManage);
    MessagesSend => Some(Scope::MessagesSend);
    MessagesManage => Some(Scope::MessagesManage);
    JourneysManage => Some(Scope::JourneysManage);
}

/// The cookie that carries a console session's token.
pub(crate) const SESSION_COOKIE: &str = "kith_session";
/// The header a cookie-authenticated write sends the session's CSRF token in.
pub(crate) static CSRF_HEADER: HeaderName = HeaderName::from_static("x-kith-csrf");

/// Who is calling: a bearer key, or a console user through the session cookie.
#[derive(Debug)]
pub enum Caller {
    Key(Principal),
    Session(Box<SessionCaller>),
}

impl Caller {
    pub fn principal(&self) -> &Principal {
        match self {
            Caller::Key(principal) => principal,
            Caller::Session(session) => &session.principal,
        }
    }

    pub fn into_principal(self) -> Principal {
        match self {
            Caller::Key(principal) => principal,
            Caller::Session(session) => session.principal,
        }
    }
}

/// The value of the session cookie, if the request carries one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// The session of the cookie, if the request carries a live one (no CSRF check).
pub(crate) async fn cookie_session(headers: &HeaderMap, state: &AppState) -> Result<Option<SessionCaller>, ApiError> {
    let Some(token) = session_cookie(headers) else { return Ok(None) };
    let now = state.now();
    state.read("console_session", move |s| s.console_session(&token, now)).await
}

/// Whether the request sent the session's CSRF token, compared in constant time, and
/// its browser does not say it came from another site.
pub(crate) fn csrf_matches(headers: &HeaderMap, session: &SessionCaller) -> bool {
    use subtle::ConstantTimeEq;
    let cross_site = headers.get("sec-fetch-site").is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    !cross_site && headers.get(&CSRF_HEADER).is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(session.csrf_token.as_bytes())))
}

pub(crate) async fn caller(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let Some(authorization) = parts.headers.get(header::AUTHORIZATION) else {
        let session = cookie_session(&parts.headers, state).await?.ok_or_else(|| {
            if session_cookie(&parts.headers).is_some() {
                ApiError::unauthorized("the console session is unknown, ended or expired: sign in again")
            } else {
                ApiError::unauthorized("send an API key as `Authorization: Bearer <key>`, or sign in to the console")
            }
        })?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) && !csrf_matches(&parts.headers, &session) {
            return Err(ApiError::csrf());
        }
        return Ok(Caller::Session(Box::new(session)));
    };
    let token = authorization
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <key>`"))?;
    // A key seen lately is known without a trip to the blocking pool.
    if let Some(principal) = state.0.store.remembered_principal(&token) {
        return Ok(Caller::Key(principal));
    }
    state
        .read("authenticate", move |s| s.authenticate(&token))
        .await?
        .map(Caller::Key)
        .ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))
}

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    caller(parts, state).await.map(Caller::into_principal)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(parts, state).await
    }
}

/// A key bound to one shop and holding the scope `S`.
#[derive(Debug)]
pub struct ShopKey<S> {
    pub principal: Principal,
    pub shop_id: i64,
    _scope: PhantomData<S>,
}

impl<S> ShopKey<S> {
    pub fn can(&self, scope: Scope) -> bool {
        self.principal.has(scope)
    }
}

fn bound_shop(p: &Principal) -> Result<i64, ApiError> {
    p.shop_id.ok_or_else(|| ApiError::forbidden("admin keys manage shops and keys; use a key of the shop for its data"))
}

impl<S: RequiredScope> FromRequestParts<AppState> for ShopKey<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        let shop_id = bound_shop(&principal)?;
        if let Some(scope) = S::SCOPE
            && !principal.has(scope)
        {
            return Err(ApiError::forbidden(format!("this key lacks the `{scope}` scope")));
        }
        Ok(ShopKey { principal, shop_id, _scope: PhantomData })
    }
}

/// The owner key of a shop.
#[derive(Debug)]
pub struct Owner {
    pub shop_id: i64,
    pub principal: Principal,
}

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        let shop_id = bound_shop(&principal)?;
        if principal.role != Role::Owner {
            return Err(ApiError::forbidden("only the shop's owner keys may do this"));
        }
        Ok(Owner { shop_id, principal })
    }
}

/// An admin key.
#[derive(Debug)]
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if principal.role != Role::Admin {
            return Err(ApiError::forbidden("only admin keys may do this"));
        }
        Ok(Admin(principal))
    }
}

/// An admin key, or a shop key with `plugins:manage`: who may read the plugin catalogue.
#[derive(Debug)]
pub struct CatalogueReader;

impl FromRequestParts<AppState> for CatalogueReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if principal.role != Role::Admin && !principal.has(Scope::PluginsManage) {
            return Err(ApiError::forbidden("this key lacks the `plugins:manage` scope"));
        }
        Ok(CatalogueReader)
    }
}

/// An admin key (any shop) or a shop's owner key (that shop only).
#[derive(Debug)]
pub struct KeyManager {
    pub principal: Principal,
    /// `None` for admin keys.
    pub shop_id: Option<i64>,
}

impl FromRequestParts<AppState> for KeyManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        match principal.role {
            Role::Admin => Ok(KeyManager { principal, shop_id: None }),
            Role::Owner => Ok(KeyManager { shop_id: principal.shop_id, principal }),
            _ => Err(ApiError::forbidden("only admin keys and the shop's owner keys manage keys")),
        }
    }
}
