//! Console users and sessions through the router: the cookie's flags, the session in place
//! of a key on every route, CSRF on cookie writes, lock-out, masking by the user's role,
//! invitations, removal, and other shops' users kept apart.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use kith_bus::Clock;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::Role;
use kith_domain::model::NewConsoleUser;
use serde_json::{Value, json};

use crate::harness::{Harness, Reply};

const PASSWORD: &str = "tea leaves 2026";

/// A console user of `shop` with [`PASSWORD`]; their id.
fn user(h: &Harness, shop: i64, login: &str, role: Role) -> i64 {
    let new = NewConsoleUser { login: login.into(), name: Some("Li Ming".into()), role };
    h.store.create_console_user(shop, &new, Some(PASSWORD), &Actor::cli("test"), h.clock.now()).unwrap().user.id
}

/// A signed-in session: the cookie's token and the CSRF token.
struct Session {
    token: String,
    csrf: String,
}

async fn post_json(h: &Harness, uri: &str, body: Value, extra: &[(&str, &str)]) -> Reply {
    let mut req = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    h.send(req.body(Body::from(body.to_string())).unwrap()).await
}

fn cookie_of(reply: &Reply) -> String {
    reply.headers[header::SET_COOKIE].to_str().unwrap().to_owned()
}

async fn sign_in(h: &Harness, login: &str) -> Session {
    let r = post_json(h, "/v1/console/sign-in", json!({"login": login, "password": PASSWORD}), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    session_of(&r)
}

/// The session an answer began: its cookie's token and its CSRF token.
fn session_of(r: &Reply) -> Session {
    let cookie = cookie_of(r);
    let token = cookie.strip_prefix("kith_session=").unwrap().split(';').next().unwrap().to_owned();
    Session { token, csrf: r.body["csrf_token"].as_str().unwrap().to_owned() }
}

/// A request with the session's cookie, and its CSRF token when `csrf` is given.
async fn with_cookie(h: &Harness, method: Method, uri: &str, session: &Session, csrf: Option<&str>, body: Option<Value>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri).header(header::COOKIE, format!("theme=dark; kith_session={}", session.token));
    if let Some(csrf) = csrf {
        req = req.header("x-kith-csrf", csrf);
    }
    let req = match body {
        Some(body) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => req.body(Body::empty()),
    };
    h.send(req.unwrap()).await
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_that_stands_in_for_a_key() {
    let h = Harness::new().await;
    let id = user(&h, h.shop_a, "Owner.A", Role::Owner);

    let r = post_json(&h, "/v1/console/sign-in", json!({"login": " owner.a ", "password": PASSWORD}), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cookie = cookie_of(&r);
    assert!(cookie.starts_with("kith_session="), "{cookie}");
    for flag in ["; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age=43200"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert_eq!(r.body["user"]["id"], id);
    assert_eq!(r.body["user"]["login"], "owner.a");
    assert_eq!(r.body["user"]["status"], "active");
    assert_eq!(r.body["role"], "owner");
    assert_eq!(r.body["shop"]["id"], h.shop_a);
    assert!(r.body["scopes"].as_array().unwrap().iter().any(|s| s == "pii:read"));
    assert!(r.body["csrf_token"].as_str().is_some_and(|t| t.len() >= 43), "{}", r.body);
    assert!(r.body["expires_at"].is_string(), "{}", r.body);
    let https =
        post_json(&h, "/v1/console/sign-in", json!({"login": "owner.a", "password": PASSWORD}), &[("x-forwarded-proto", "https")]).await;
    assert!(cookie_of(&https).ends_with("; Secure"), "{}", cookie_of(&https));

    let session = sign_in(&h, "owner.a").await;
    let me = with_cookie(&h, Method::GET, "/v1/console/session", &session, None, None).await;
    assert_eq!(
        (me.status, me.body["user"]["id"].as_i64(), me.body["csrf_token"].as_str()),
        (StatusCode::OK, Some(id), Some(session.csrf.as_str()))
    );
    let customers = with_cookie(&h, Method::GET, "/v1/customers", &session, None, None).await;
    assert_eq!(customers.status, StatusCode::OK, "{}", customers.body);
    let shop = with_cookie(&h, Method::GET, "/v1/shop", &session, None, None).await;
    assert_eq!(shop.body["id"], h.shop_a);

    // A shop's key reads the session too (the console's development mode); an admin key has no shop.
    let key = h.get("/v1/console/session", Role::Analyst).await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    assert_eq!(
        (key.body["user"].clone(), key.body["csrf_token"].clone(), key.body["role"].clone()),
        (Value::Null, Value::Null, json!("analyst"))
    );
    assert_eq!(key.body["shop"]["id"], h.shop_a);
    h.get("/v1/console/session", Role::Admin).await.assert_problem(403, "forbidden");
    h.call(Method::GET, "/v1/console/session", None, None).await.assert_problem(401, "unauthorized");
    let bogus = Session { token: "not-a-session".into(), csrf: String::new() };
    with_cookie(&h, Method::GET, "/v1/customers", &bogus, None, None).await.assert_problem(401, "unauthorized");

    // Sign-out ends the session and clears the cookie.
    with_cookie(&h, Method::POST, "/v1/console/sign-out", &session, None, None).await.assert_problem(403, "csrf");
    let out = with_cookie(&h, Method::POST, "/v1/console/sign-out", &session, Some(&session.csrf), None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(cookie_of(&out).contains("Max-Age=0"), "{}", cookie_of(&out));
    with_cookie(&h, Method::GET, "/v1/customers", &session, None, None).await.assert_problem(401, "unauthorized");

    // Absolute expiry: 12 hours after sign-in by the kernel's clock.
    let session = sign_in(&h, "owner.a").await;
    h.clock.advance(chrono::Duration::hours(12) - chrono::Duration::seconds(1));
    assert_eq!(with_cookie(&h, Method::GET, "/v1/shop", &session, None, None).await.status, StatusCode::OK);
    h.clock.advance(chrono::Duration::seconds(1));
    with_cookie(&h, Method::GET, "/v1/shop", &session, None, None).await.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_cookie_write_needs_the_sessions_csrf_token_and_is_audited_as_the_user() {
    let h = Harness::new().await;
    let id = user(&h, h.shop_a, "owner", Role::Owner);
    let session = sign_in(&h, "owner").await;
    let tag = format!("/v1/customers/{}/tags", h.customer);

    with_cookie(&h, Method::POST, &tag, &session, None, Some(json!({"tag": "vip"}))).await.assert_problem(403, "csrf");
    with_cookie(&h, Method::POST, &tag, &session, Some("wrong"), Some(json!({"tag": "vip"}))).await.assert_problem(403, "csrf");
    let ok = with_cookie(&h, Method::POST, &tag, &session, Some(&session.csrf), Some(json!({"tag": "vip"}))).await;
    assert!(ok.status.is_success(), "{} {}", ok.status, ok.body);
    let customer = h.get(&format!("/v1/customers/{}", h.customer), Role::Owner).await;
    assert!(customer.body["tags"].as_array().unwrap().iter().any(|t| t["tag"] == "vip"), "{}", customer.body);

    // An owner user manages keys as an owner key does.
    let key =
        with_cookie(&h, Method::POST, "/v1/keys", &session, Some(&session.csrf), Some(json!({"name": "shop app", "role": "app"}))).await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let audit = with_cookie(&h, Method::GET, "/v1/audit?limit=20", &session, None, None).await;
    let entries = audit.body["items"].as_array().unwrap();
    let by = |action: &str| entries.iter().find(|e| e["action"] == action).map(|e| e["key_id"].clone());
    assert_eq!(by("key.create"), Some(json!(format!("user:{id}"))), "{}", audit.body);
    assert_eq!(by("console.sign_in"), Some(json!(format!("user:{id}"))), "{}", audit.body);

    // Bearer keys need no CSRF token, as before.
    let r = h.call(Method::POST, &tag, Some(h.key(Role::Owner)), Some(json!({"tag": "vip2"}))).await;
    assert!(r.status.is_success(), "{}", r.body);
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes_and_unknown_logins_look_like_wrong_passwords() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "clerk", Role::Operator);
    let wrong = json!({"login": "clerk", "password": "not the password"});
    let unknown = post_json(&h, "/v1/console/sign-in", json!({"login": "nobody", "password": "not the password"}), &[]).await;
    unknown.assert_problem(401, "unauthorized");
    for _ in 0..4 {
        let r = post_json(&h, "/v1/console/sign-in", wrong.clone(), &[]).await;
        r.assert_problem(401, "unauthorized");
        assert_eq!(r.body["detail"], unknown.body["detail"], "one answer for both");
    }
    let locked = post_json(&h, "/v1/console/sign-in", wrong.clone(), &[]).await;
    locked.assert_problem(429, "locked");
    assert_eq!(locked.headers[header::RETRY_AFTER], "900");
    let right = json!({"login": "clerk", "password": PASSWORD});
    let still = post_json(&h, "/v1/console/sign-in", right.clone(), &[]).await;
    still.assert_problem(429, "locked");
    h.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(post_json(&h, "/v1/console/sign-in", right.clone(), &[]).await.headers[header::RETRY_AFTER], "300");
    let users = h.get("/v1/console/users", Role::Owner).await;
    assert_eq!(users.body["items"][0]["status"], "locked", "{}", users.body);
    h.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(post_json(&h, "/v1/console/sign-in", right, &[]).await.status, StatusCode::OK);

    let audit = h.get("/v1/audit?limit=100", Role::Owner).await;
    let actions: Vec<&str> = audit.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["console.sign_in.failed", "console.user.locked", "console.sign_in"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(!actions.contains(&"console.sign_in.refused"), "attempts refused while locked write nothing: {actions:?}");

    // Bad input is a 400 naming the field, never a 500.
    let r = post_json(&h, "/v1/console/sign-in", json!({"login": "", "password": "x"}), &[]).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("login")));
    let r = post_json(&h, "/v1/console/sign-in", json!({"login": "clerk", "password": ""}), &[]).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("password")));
    post_json(&h, "/v1/console/sign-in", json!({"login": "clerk"}), &[]).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn an_analyst_session_sees_what_an_analyst_key_sees() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "analyst", Role::Analyst);
    let session = sign_in(&h, "analyst").await;
    let uri = format!("/v1/customers/{}", h.customer);
    let by_session = with_cookie(&h, Method::GET, &uri, &session, None, None).await;
    let by_key = h.get(&uri, Role::Analyst).await;
    let by_owner = h.get(&uri, Role::Owner).await;
    assert_eq!(by_session.status, StatusCode::OK, "{}", by_session.body);
    assert_eq!(by_session.body, by_key.body);
    assert_ne!(by_session.body, by_owner.body, "the owner sees the phone unmasked");
    assert!(!by_session.body.to_string().contains("13812345678"), "{}", by_session.body);
    // An analyst may not write tags, with or without the CSRF token.
    let tag = format!("/v1/customers/{}/tags", h.customer);
    with_cookie(&h, Method::POST, &tag, &session, Some(&session.csrf), Some(json!({"tag": "x"}))).await.assert_problem(403, "forbidden");
    with_cookie(&h, Method::GET, "/v1/console/users", &session, None, None).await.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn an_owner_invites_a_user_who_accepts_once_and_can_be_removed() {
    let h = Harness::new().await;
    let owner_id = user(&h, h.shop_a, "owner", Role::Owner);
    let owner = sign_in(&h, "owner").await;
    let invite = |body: Value| {
        let owner = &owner;
        let h = &h;
        async move { with_cookie(h, Method::POST, "/v1/console/users", owner, Some(&owner.csrf), Some(body)).await }
    };

    let r = invite(json!({"login": "Clerk", "name": "Wang Fang", "role": "operator"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.body["invite_token"].as_str().unwrap().to_owned();
    assert_eq!(r.body["invite_url"], format!("/#/invite?token={token}"));
    assert_eq!(r.body["user"]["status"], "invited");
    assert_eq!(r.body["user"]["last_sign_in_at"], Value::Null);
    assert!(r.body["invite_expires_at"].is_string());
    let clerk_id = r.body["user"]["id"].as_i64().unwrap();
    let user_keys: Vec<&String> = r.body["user"].as_object().unwrap().keys().collect();
    assert_eq!(user_keys, ["created_at", "id", "last_sign_in_at", "login", "name", "role", "status"]);

    let r = invite(json!({"login": "clerk", "role": "admin"})).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("role")));
    let r = invite(json!({"login": "a\u{200b}b", "role": "analyst"})).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("login")));
    invite(json!({"login": " CLERK ", "role": "analyst"})).await.assert_problem(409, "conflict");
    let operator =
        h.call(Method::POST, "/v1/console/users", Some(h.key(Role::Operator)), Some(json!({"login": "x", "role": "analyst"}))).await;
    operator.assert_problem(403, "forbidden");

    let accept = |body: Value| {
        let h = &h;
        async move { post_json(h, "/v1/console/invites/accept", body, &[]).await }
    };
    let r = accept(json!({"token": token, "password": "short"})).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("password")));
    let r = accept(json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(cookie_of(&r).contains("HttpOnly"));
    assert_eq!((r.body["user"]["login"].as_str(), r.body["role"].as_str()), (Some("clerk"), Some("operator")));
    let r = accept(json!({"token": token, "password": PASSWORD})).await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("token")), "accepted once only");

    let list = with_cookie(&h, Method::GET, "/v1/console/users", &owner, None, None).await;
    let statuses: Vec<(&str, &str)> =
        list.body["items"].as_array().unwrap().iter().map(|u| (u["login"].as_str().unwrap(), u["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, [("owner", "active"), ("clerk", "active")]);

    // The clerk changes their password; their other sessions end.
    let clerk = sign_in(&h, "clerk").await;
    let other = sign_in(&h, "clerk").await;
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let r = with_cookie(&h, Method::POST, "/v1/console/password", &clerk, Some(&clerk.csrf), Some(change("wrong one!", "a new password")))
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("current_password")));
    let r =
        with_cookie(&h, Method::POST, "/v1/console/password", &clerk, Some(&clerk.csrf), Some(change(PASSWORD, "a new password"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The session is rotated: a new cookie and CSRF token; the old session ends with the others.
    let rotated = session_of(&r);
    assert_ne!((rotated.token.as_str(), rotated.csrf.as_str()), (clerk.token.as_str(), clerk.csrf.as_str()));
    assert_eq!(r.body["user"]["login"], "clerk");
    assert!(cookie_of(&r).contains("; HttpOnly"), "{}", cookie_of(&r));
    with_cookie(&h, Method::GET, "/v1/shop", &other, None, None).await.assert_problem(401, "unauthorized");
    with_cookie(&h, Method::GET, "/v1/shop", &clerk, None, None).await.assert_problem(401, "unauthorized");
    assert_eq!(with_cookie(&h, Method::GET, "/v1/shop", &rotated, None, None).await.status, StatusCode::OK);
    let clerk = rotated;
    let key = h.call(Method::POST, "/v1/console/password", Some(h.key(Role::Owner)), Some(change(PASSWORD, "a new password"))).await;
    key.assert_problem(403, "forbidden");

    // Another shop's owner does not find the clerk; the owner cannot remove themselves.
    let foreign = h.call(Method::DELETE, &format!("/v1/console/users/{clerk_id}"), Some(&h.foreign), None).await;
    foreign.assert_problem(404, "not-found");
    let foreign_list = h.call(Method::GET, "/v1/console/users", Some(&h.foreign), None).await;
    assert_eq!(foreign_list.body["items"], json!([]));
    let own = with_cookie(&h, Method::DELETE, &format!("/v1/console/users/{owner_id}"), &owner, Some(&owner.csrf), None).await;
    own.assert_problem(409, "conflict");
    let last = h.call(Method::DELETE, &format!("/v1/console/users/{owner_id}"), Some(h.key(Role::Owner)), None).await;
    last.assert_problem(409, "conflict");
    let r = with_cookie(&h, Method::DELETE, &format!("/v1/console/users/{clerk_id}"), &owner, Some(&owner.csrf), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    with_cookie(&h, Method::GET, "/v1/shop", &clerk, None, None).await.assert_problem(401, "unauthorized");
    let audit = h.get("/v1/audit?limit=100", Role::Owner).await;
    let actions: Vec<&str> = audit.body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["console.user.invite", "console.invite.accept", "console.password.change", "console.user.remove"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[test]
fn the_console_routes_are_documented_with_the_session_scheme() {
    let doc = serde_json::to_value(kith_api::openapi()).unwrap();
    assert_eq!(doc["components"]["securitySchemes"]["session"]["in"], "cookie");
    assert_eq!(doc["components"]["securitySchemes"]["session"]["name"], "kith_session");
    for path in [
        "/v1/console/sign-in",
        "/v1/console/session",
        "/v1/console/sign-out",
        "/v1/console/users",
        "/v1/console/users/{id}",
        "/v1/console/users/{id}/unlock",
        "/v1/console/invites/accept",
        "/v1/console/password",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["paths"]["/v1/console/sign-in"]["post"]["responses"]["429"].is_object());
    for path in ["/v1/console/sign-in", "/v1/console/invites/accept", "/v1/console/password"] {
        let busy = &doc["paths"][path]["post"]["responses"]["503"];
        assert!(busy["headers"]["Retry-After"].is_object(), "{path}: {busy}");
    }
    let password = &doc["paths"]["/v1/console/password"]["post"]["responses"];
    assert!(password["200"].is_object() && password["204"].is_null() && password["429"].is_object(), "{password}");
    assert!(doc["paths"]["/v1/console/users/{id}/unlock"]["post"]["responses"]["200"].is_object());
    assert!(doc["components"]["schemas"]["ApiKey"]["properties"]["created_by"].is_object());
    for schema in ["ConsoleSession", "ConsoleUser"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// A cookie write of this session with extra headers.
async fn cookie_post(h: &Harness, uri: &str, session: &Session, extra: &[(&str, &str)], body: Value) -> Reply {
    let mut req = Request::post(uri)
        .header(header::COOKIE, format!("kith_session={}", session.token))
        .header("x-kith-csrf", session.csrf.as_str())
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    h.send(req.body(Body::from(body.to_string())).unwrap()).await
}

fn audit_actions(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn password_hashing_waits_a_bounded_time_for_a_turn_then_answers_503() {
    // No turn at all: every request that hashes waits `hash_wait`, then gets 503 busy.
    let config = kith_api::ApiConfig { hash_concurrency: 0, hash_wait: std::time::Duration::from_millis(20), ..Default::default() };
    let h = Harness::with_config(config).await;
    user(&h, h.shop_a, "clerk", Role::Operator);
    let r = post_json(&h, "/v1/console/sign-in", json!({"login": "clerk", "password": PASSWORD}), &[]).await;
    r.assert_problem(503, "busy");
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let r = post_json(&h, "/v1/console/invites/accept", json!({"token": "made-up", "password": PASSWORD}), &[]).await;
    r.assert_problem(503, "busy");
    let metrics = h.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = metrics.body.as_str().map(str::to_owned).unwrap_or_else(|| metrics.body.to_string());
    assert!(text.contains("kith_console_sign_in_failures_total{outcome=\"busy\"} 2"), "{text}");
}

#[tokio::test]
async fn sign_ins_take_a_token_of_a_kernel_wide_bucket() {
    let config = kith_api::ApiConfig { sign_in_rate: kith_api::SignInRate { per_second: 0.1, burst: 2.0 }, ..Default::default() };
    let h = Harness::with_config(config).await;
    user(&h, h.shop_a, "clerk", Role::Operator);
    let right = json!({"login": "clerk", "password": PASSWORD});
    assert_eq!(post_json(&h, "/v1/console/sign-in", right.clone(), &[]).await.status, StatusCode::OK);
    post_json(&h, "/v1/console/sign-in", json!({"login": "nobody", "password": PASSWORD}), &[]).await.assert_problem(401, "unauthorized");
    let r = post_json(&h, "/v1/console/sign-in", right, &[]).await;
    r.assert_problem(429, "rate-limited");
    let wait: u32 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
}

#[tokio::test]
async fn unknown_logins_lock_as_known_ones_do_and_write_nothing() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "clerk", Role::Operator);
    let before = audit_actions(&h.get("/v1/audit?limit=100", Role::Owner).await.body).len();
    let (known, unknown) = (json!({"login": "clerk", "password": "not the password"}), json!({"login": " NoBody ", "password": "x"}));
    for _ in 0..4 {
        let a = post_json(&h, "/v1/console/sign-in", known.clone(), &[]).await;
        let b = post_json(&h, "/v1/console/sign-in", unknown.clone(), &[]).await;
        a.assert_problem(401, "unauthorized");
        b.assert_problem(401, "unauthorized");
        assert_eq!(a.body["detail"], b.body["detail"]);
    }
    let a = post_json(&h, "/v1/console/sign-in", known.clone(), &[]).await;
    let b = post_json(&h, "/v1/console/sign-in", json!({"login": "nobody", "password": "y"}), &[]).await;
    a.assert_problem(429, "locked");
    b.assert_problem(429, "locked");
    assert_eq!(
        (a.headers[header::RETRY_AFTER].clone(), a.body["detail"].clone()),
        (b.headers[header::RETRY_AFTER].clone(), b.body["detail"].clone())
    );
    post_json(&h, "/v1/console/sign-in", unknown.clone(), &[]).await.assert_problem(429, "locked");
    h.clock.advance(chrono::Duration::minutes(15));
    post_json(&h, "/v1/console/sign-in", unknown, &[]).await.assert_problem(401, "unauthorized");

    // The known login's failures and lock are audited; the unknown login's are not written.
    let actions = audit_actions(&h.get("/v1/audit?limit=100", Role::Owner).await.body);
    assert_eq!(actions.len() - before, 6, "five failures and the lock: {actions:?}");
    let metrics = h.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = metrics.body.as_str().map(str::to_owned).unwrap_or_else(|| metrics.body.to_string());
    for outcome in ["unknown_login", "wrong_password", "locked"] {
        assert!(text.contains(&format!("kith_console_sign_in_failures_total{{outcome=\"{outcome}\"}}")), "{outcome}: {text}");
    }
}

#[tokio::test]
async fn an_owner_unlocks_a_locked_user() {
    let h = Harness::new().await;
    let owner_id = user(&h, h.shop_a, "owner", Role::Owner);
    let clerk = user(&h, h.shop_a, "clerk", Role::Operator);
    for _ in 0..5 {
        post_json(&h, "/v1/console/sign-in", json!({"login": "clerk", "password": "not the password"}), &[]).await;
    }
    post_json(&h, "/v1/console/sign-in", json!({"login": "clerk", "password": PASSWORD}), &[]).await.assert_problem(429, "locked");
    let uri = format!("/v1/console/users/{clerk}/unlock");
    h.call(Method::POST, &uri, Some(h.key(Role::Operator)), None).await.assert_problem(403, "forbidden");
    h.call(Method::POST, &uri, Some(&h.foreign), None).await.assert_problem(404, "not-found");
    h.call(Method::POST, "/v1/console/users/999999/unlock", Some(h.key(Role::Owner)), None).await.assert_problem(404, "not-found");
    let owner = sign_in(&h, "owner").await;
    with_cookie(&h, Method::POST, &uri, &owner, None, None).await.assert_problem(403, "csrf");
    let r = with_cookie(&h, Method::POST, &uri, &owner, Some(&owner.csrf), None).await;
    assert_eq!((r.status, r.body["status"].as_str(), r.body["id"].as_i64()), (StatusCode::OK, Some("active"), Some(clerk)), "{}", r.body);
    sign_in(&h, "clerk").await;
    let audit = h.get("/v1/audit?limit=100", Role::Owner).await;
    let entry = audit.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "console.user.unlock").cloned().unwrap();
    assert_eq!(entry["key_id"], format!("user:{owner_id}"));
}

#[tokio::test]
async fn removing_a_user_revokes_the_keys_they_created() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "owner", Role::Owner);
    let second = user(&h, h.shop_a, "second", Role::Owner);
    let session = sign_in(&h, "second").await;
    let made = cookie_post(&h, "/v1/keys", &session, &[], json!({"name": "their app", "role": "app"})).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let token = made.body["token"].as_str().unwrap().to_owned();
    let key_id = made.body["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(made.body["key"]["created_by"], format!("user:{second}"));
    let by_key = h.call(Method::POST, "/v1/keys", Some(h.key(Role::Owner)), Some(json!({"name": "by a key", "role": "app"}))).await;
    assert_eq!(by_key.status, StatusCode::CREATED, "{}", by_key.body);
    let keys = h.get("/v1/keys", Role::Owner).await;
    let created_by = |id: &str| keys.body["items"].as_array().unwrap().iter().find(|k| k["id"] == id).map(|k| k["created_by"].clone());
    assert_eq!(created_by(&key_id), Some(json!(format!("user:{second}"))), "{}", keys.body);
    assert_eq!(created_by(by_key.body["key"]["id"].as_str().unwrap()).and_then(|v| v.as_str().map(|s| s.len())), Some(12));
    assert_eq!(h.call(Method::GET, "/v1/shop", Some(&token), None).await.status, StatusCode::OK);

    let r = h.call(Method::DELETE, &format!("/v1/console/users/{second}"), Some(h.key(Role::Owner)), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    h.call(Method::GET, "/v1/shop", Some(&token), None).await.assert_problem(401, "unauthorized");
    let other = by_key.body["token"].as_str().unwrap();
    assert_eq!(h.call(Method::GET, "/v1/shop", Some(other), None).await.status, StatusCode::OK, "other keys go on");
    let audit = h.get("/v1/audit?limit=100", Role::Owner).await;
    let entry = audit.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "console.user.remove").cloned().unwrap();
    assert_eq!(entry["detail"]["revoked_keys"], json!([key_id]), "{entry}");
}

#[tokio::test]
async fn a_wrong_current_password_counts_toward_the_lock() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "clerk", Role::Operator);
    let session = sign_in(&h, "clerk").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a new password"});
    for _ in 0..4 {
        let r = cookie_post(&h, "/v1/console/password", &session, &[], change("wrong one!")).await;
        assert_eq!((r.status, r.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("current_password")), "{}", r.body);
    }
    let r = cookie_post(&h, "/v1/console/password", &session, &[], change("wrong one!")).await;
    r.assert_problem(429, "locked");
    assert_eq!(r.headers[header::RETRY_AFTER], "900");
    cookie_post(&h, "/v1/console/password", &session, &[], change(PASSWORD)).await.assert_problem(429, "locked");
    post_json(&h, "/v1/console/sign-in", json!({"login": "clerk", "password": PASSWORD}), &[]).await.assert_problem(429, "locked");
    let actions = audit_actions(&h.get("/v1/audit?limit=100", Role::Owner).await.body);
    assert_eq!(actions.iter().filter(|a| *a == "console.password.change_failed").count(), 5, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "console.user.locked").count(), 1, "{actions:?}");
}

#[tokio::test]
async fn the_cookie_is_secure_as_configured() {
    let body = json!({"login": "clerk", "password": PASSWORD});
    for (mode, header, secure) in [
        (kith_api::CookieSecure::Always, None, true),
        (kith_api::CookieSecure::Never, Some(("x-forwarded-proto", "https")), false),
        (kith_api::CookieSecure::Auto, Some(("x-forwarded-proto", "https")), true),
        (kith_api::CookieSecure::Auto, None, false),
    ] {
        let h = Harness::with_config(kith_api::ApiConfig { cookie_secure: mode, ..Default::default() }).await;
        user(&h, h.shop_a, "clerk", Role::Operator);
        let extra: Vec<(&str, &str)> = header.into_iter().collect();
        let r = post_json(&h, "/v1/console/sign-in", body.clone(), &extra).await;
        assert_eq!(cookie_of(&r).ends_with("; Secure"), secure, "{mode:?} {header:?}: {}", cookie_of(&r));
    }
}

#[tokio::test]
async fn a_cross_site_cookie_write_is_refused_and_console_answers_are_not_stored() {
    let h = Harness::new().await;
    user(&h, h.shop_a, "owner", Role::Owner);
    let session = sign_in(&h, "owner").await;
    let tag = format!("/v1/customers/{}/tags", h.customer);
    cookie_post(&h, &tag, &session, &[("sec-fetch-site", "cross-site")], json!({"tag": "x"})).await.assert_problem(403, "csrf");
    let r = cookie_post(&h, &tag, &session, &[("sec-fetch-site", "same-origin")], json!({"tag": "x"})).await;
    assert!(r.status.is_success(), "{} {}", r.status, r.body);
    let out = cookie_post(&h, "/v1/console/sign-out", &session, &[("sec-fetch-site", "cross-site")], json!({})).await;
    out.assert_problem(403, "csrf");

    for r in [
        with_cookie(&h, Method::GET, "/v1/console/session", &session, None, None).await,
        with_cookie(&h, Method::GET, "/v1/console/users", &session, None, None).await,
        h.call(Method::GET, "/v1/console/users", None, None).await,
        post_json(&h, "/v1/console/sign-in", json!({"login": "owner", "password": "wrong password"}), &[]).await,
    ] {
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store", "{} {}", r.status, r.body);
    }
    assert!(h.get("/v1/shop", Role::Owner).await.headers.get(header::CACHE_CONTROL).is_none());
}
