//! The merchant console's people: sign-in and sessions, and the shop's console users.
//!
//! A session is the `kith_session` cookie (`HttpOnly; SameSite=Strict; Path=/`, and `Secure`
//! as `[console] cookie_secure` says: by default when the request came through a proxy over
//! HTTPS, `X-Forwarded-Proto: https`, the kernel itself serving plain HTTP, where a `Secure`
//! cookie would not be sent back). It ends 12 hours after sign-in however active it is
//! (absolute expiry, `Max-Age=43200`), at sign-out, or when its user is removed or changes
//! their password (the session that changed it is replaced by a new one). Writes made with
//! the cookie send the session's `csrf_token` as `X-Kith-CSRF` (see `auth`); signing in and
//! accepting an invitation need none, having no session yet. Every answer here is
//! `Cache-Control: no-store`.
//!
//! Password hashing is bounded (see `AppState::hashing`): a request that waits too long for
//! a turn is answered 503 with `Retry-After`. Sign-ins take a token of a kernel-wide bucket
//! (429 `rate-limited` when it is empty); an unknown login's failures are counted in memory
//! and lock it as a known login's would (429 `locked`), so the answers do not tell them apart.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use kith_core::Actor;
use kith_core::console::{self as core_console, SESSION_TTL, SignIn, SignedIn, normalise_login};
use kith_core::prelude::*;
use kith_domain::model::{ConsoleSession, ConsoleUser, NewConsoleUser};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Caller, Owner, cookie_session, csrf_matches};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, Path};
use crate::{AppState, CookieSecure};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Compared trimmed and lower-cased.
    #[schema(min_length = 1, max_length = 64)]
    login: String,
    #[schema(min_length = 1, max_length = 256)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    /// The invitation's token, from its URL.
    #[schema(min_length = 1)]
    token: String,
    /// The user's new password: 10-256 characters.
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// 10-256 characters.
    #[schema(min_length = 10, max_length = 256)]
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConsoleUserList {
    items: Vec<ConsoleUser>,
}

/// A user invited: the invitation's token is shown this once (only its hash is kept).
#[derive(Serialize, ToSchema)]
pub struct ConsoleInvite {
    user: ConsoleUser,
    invite_token: String,
    /// The console's page that accepts it: `/#/invite?token=<token>`.
    invite_url: String,
    /// 72 hours after the invitation, RFC 3339.
    invite_expires_at: String,
}

/// The `Set-Cookie` value of a session's token (`max_age` 0 clears it).
fn cookie(token: &str, max_age: i64, headers: &HeaderMap, mode: CookieSecure) -> HeaderValue {
    let https = || {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.split(',').next().is_some_and(|first| first.trim().eq_ignore_ascii_case("https")))
    };
    let secure = match mode {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => https(),
    };
    let secure = if secure { "; Secure" } else { "" };
    let value = format!("kith_session={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // Tokens are base64url: the value is always a valid header.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("kith_session=; Path=/; Max-Age=0"))
}

/// A session begun: the console's view, and the cookie.
fn signed_in(signed: SignedIn, headers: &HeaderMap, mode: CookieSecure) -> Response {
    let cookie = cookie(&signed.token, SESSION_TTL.num_seconds(), headers, mode);
    ([(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(signed.session)).into_response()
}

/// The 429 of a lock ending at `until`.
fn locked(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> ApiError {
    let seconds = (until - now).num_milliseconds().max(1).unsigned_abs().div_ceil(1000);
    ApiError::locked(u32::try_from(seconds).unwrap_or(u32::MAX))
}

/// A sign-in or a password check refused: a warning and the metric, by outcome.
fn refused(state: &AppState, outcome: &'static str) {
    tracing::warn!(outcome, "console sign-in refused");
    state.metrics().record_sign_in_failure(outcome);
}

/// Sign in to the console with a login and a password: the session's cookie and what the console shows.
/// Unknown logins and wrong passwords get the same 401; five failures in a row lock the login for
/// 15 minutes (429 `locked` with `Retry-After`). Too many sign-ins across the kernel answer 429
/// `rate-limited`, and too many passwords being checked at once 503 `busy`, both with `Retry-After`.
#[utoipa::path(post, path = "/v1/console/sign-in", tag = "console", request_body = SignInRequest,
    responses((status = 200, body = ConsoleSession, description = "Signed in; `Set-Cookie: kith_session=…; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200`",
        headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 429, body = Problem, description = "Locked, or too many sign-ins", headers(("Retry-After" = u32, description = "Seconds until the lock ends or the next sign-in is taken"))),
        (status = 503, body = Problem, description = "Too many passwords being checked", headers(("Retry-After" = u32, description = "Seconds to wait")))))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SignInRequest>,
) -> Result<Response, ApiError> {
    if let Err(seconds) = state.0.sign_ins.take() {
        refused(&state, "rate_limited");
        return Err(ApiError::rate_limited(seconds));
    }
    let now = state.now();
    // An unknown login locked by its failures is refused as a locked user is: with no hashing.
    let login = normalise_login(&req.login).ok();
    if let Some(until) = login.as_deref().and_then(|login| state.0.unknown_logins.locked(login, now)) {
        refused(&state, "locked");
        return Err(locked(until, now));
    }
    let outcome = state.hashing("console_sign_in", move |s| s.console_sign_in(&req.login, &req.password, now)).await?;
    match outcome {
        SignIn::SignedIn(signed) => Ok(signed_in(*signed, &headers, state.config().cookie_secure)),
        SignIn::Refused => {
            refused(&state, "wrong_password");
            Err(ApiError::unauthorized("the login or the password is wrong"))
        }
        SignIn::UnknownLogin => {
            refused(&state, "unknown_login");
            match login.as_deref().and_then(|login| state.0.unknown_logins.fail(login, now)) {
                Some(until) => Err(locked(until, now)),
                None => Err(ApiError::unauthorized("the login or the password is wrong")),
            }
        }
        SignIn::Locked { until } => {
            refused(&state, "locked");
            Err(locked(until, now))
        }
    }
}

/// Accept an invitation: set the password, which activates the user, and sign in (as sign-in answers).
#[utoipa::path(post, path = "/v1/console/invites/accept", tag = "console", request_body = AcceptInvite,
    responses((status = 200, body = ConsoleSession, description = "Signed in", headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, body = Problem),
        (status = 503, body = Problem, description = "Too many passwords being checked", headers(("Retry-After" = u32, description = "Seconds to wait")))))]
pub async fn accept_invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<AcceptInvite>,
) -> Result<Response, ApiError> {
    let now = state.now();
    let signed = state.hashing("accept_console_invite", move |s| s.accept_console_invite(&req.token, &req.password, now)).await?;
    Ok(signed_in(signed, &headers, state.config().cookie_secure))
}

/// Who the console is signed in as: a user's session (its CSRF token and end), or a shop's API key
/// (no user, no CSRF token: the console's development mode).
#[utoipa::path(get, path = "/v1/console/session", tag = "console", security(("session" = []), ("api_key" = [])),
    responses((status = 200, body = ConsoleSession), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn session(caller: Caller, State(state): State<AppState>) -> Result<Json<ConsoleSession>, ApiError> {
    let principal = caller.principal().clone();
    let shop_id = principal.shop_id.ok_or_else(|| ApiError::forbidden("admin keys belong to no shop: use a key of the shop"))?;
    let shop = state.read("get_shop", move |s| s.get_shop(shop_id)).await?;
    let view = match caller {
        Caller::Key(_) => {
            ConsoleSession { user: None, role: principal.role, scopes: principal.scopes, shop, csrf_token: None, expires_at: None }
        }
        Caller::Session(session) => ConsoleSession {
            user: Some(session.user),
            role: principal.role,
            scopes: principal.scopes,
            shop,
            csrf_token: Some(session.csrf_token),
            expires_at: Some(session.expires_at),
        },
    };
    Ok(Json(view))
}

/// Sign out: the session ends and its cookie is cleared. Without a live session there is nothing to
/// end, and the cookie is cleared all the same.
#[utoipa::path(post, path = "/v1/console/sign-out", tag = "console", security(("session" = []), ()),
    responses((status = 204, description = "Signed out; `Set-Cookie: kith_session=; Max-Age=0`", headers(("Set-Cookie" = String, description = "Clears the cookie"))),
        (status = 403, body = Problem)))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(session) = cookie_session(&headers, &state).await? {
        if !csrf_matches(&headers, &session) {
            return Err(ApiError::csrf());
        }
        let now = state.now();
        state.db("console_sign_out", move |s| s.console_sign_out(&session, now)).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie("", 0, &headers, state.config().cookie_secure))]).into_response())
}

/// Change the signed-in user's password. Every session of the user ends, this one included, and a
/// new session replaces it: the answer is that session (a new CSRF token) with its cookie, as
/// sign-in answers. A wrong current password (400) counts toward the lock as a failed sign-in does;
/// once locked, 429 with `Retry-After`.
#[utoipa::path(post, path = "/v1/console/password", tag = "console", request_body = PasswordChange, security(("session" = [])),
    responses((status = 200, body = ConsoleSession, description = "Changed; the new session, `Set-Cookie: kith_session=…`",
        headers(("Set-Cookie" = String, description = "The new session cookie"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem, description = "Locked", headers(("Retry-After" = u32, description = "Seconds until the lock ends"))),
        (status = 503, body = Problem, description = "Too many passwords being checked", headers(("Retry-After" = u32, description = "Seconds to wait")))))]
pub async fn change_password(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<Response, ApiError> {
    let Caller::Session(session) = caller else {
        return Err(ApiError::forbidden("only a console user signed in with a session changes their password"));
    };
    let now = state.now();
    let outcome = state
        .hashing("change_console_password", move |s| s.change_console_password(&session, &req.current_password, &req.new_password, now))
        .await?;
    match outcome {
        core_console::PasswordChange::Changed(signed) => Ok(signed_in(*signed, &headers, state.config().cookie_secure)),
        core_console::PasswordChange::Wrong => {
            refused(&state, "wrong_password");
            Err(ApiError::bad_request("current_password", "is not the current password"))
        }
        core_console::PasswordChange::Locked { until } => {
            refused(&state, "locked");
            Err(locked(until, now))
        }
    }
}

/// The shop's console users (owners).
#[utoipa::path(get, path = "/v1/console/users", tag = "console", security(("session" = []), ("api_key" = [])),
    responses((status = 200, body = ConsoleUserList), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_users(owner: Owner, State(state): State<AppState>) -> Result<Json<ConsoleUserList>, ApiError> {
    let (shop_id, now) = (owner.shop_id, state.now());
    let items = state.read("console_users", move |s| s.console_users(shop_id, now)).await?;
    Ok(Json(ConsoleUserList { items }))
}

/// Invite a console user to the shop (owners): the invitation's token and URL, shown once, valid 72 hours.
#[utoipa::path(post, path = "/v1/console/users", tag = "console", request_body = NewConsoleUser, security(("session" = []), ("api_key" = [])),
    responses((status = 201, body = ConsoleInvite), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
pub async fn invite_user(
    owner: Owner,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewConsoleUser>,
) -> Result<(StatusCode, Json<ConsoleInvite>), ApiError> {
    let (shop_id, now) = (owner.shop_id, state.now());
    let actor = Actor::key(&owner.principal.key_id);
    let created = state.db("create_console_user", move |s| s.create_console_user(shop_id, &new, None, &actor, now)).await?;
    let invite = created.invite.ok_or_else(|| ApiError::internal(anyhow::anyhow!("an invited user has no invitation")))?;
    Ok((
        StatusCode::CREATED,
        Json(ConsoleInvite {
            user: created.user,
            invite_url: format!("/#/invite?token={}", invite.token),
            invite_token: invite.token,
            invite_expires_at: invite.expires_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        }),
    ))
}

/// Remove a console user of the shop (owners) and end their sessions: not yourself, not the last active owner.
#[utoipa::path(delete, path = "/v1/console/users/{id}", tag = "console", params(("id" = i64, Path, description = "Console user id")),
    security(("session" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
pub async fn remove_user(owner: Owner, State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let (shop_id, now) = (owner.shop_id, state.now());
    let acting_user = owner.principal.key_id.strip_prefix("user:").and_then(|id| id.parse().ok());
    let actor = Actor::key(&owner.principal.key_id);
    state.db("remove_console_user", move |s| s.remove_console_user(shop_id, id, acting_user, &actor, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End a console user's lock and clear their count of failed sign-ins (owners; audited as
/// `console.user.unlock`): the way back for a user locked out by someone else's attempts.
#[utoipa::path(post, path = "/v1/console/users/{id}/unlock", tag = "console", params(("id" = i64, Path, description = "Console user id")),
    security(("session" = []), ("api_key" = [])),
    responses((status = 200, body = ConsoleUser, description = "Unlocked"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn unlock_user(owner: Owner, State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<ConsoleUser>, ApiError> {
    let (shop_id, now) = (owner.shop_id, state.now());
    let actor = Actor::key(&owner.principal.key_id);
    let user = state.db("unlock_console_user", move |s| s.unlock_console_user(shop_id, id, &actor, now)).await?;
    Ok(Json(user))
}
