//! Every route with every role, no key, and a key of another shop.

use axum::http::{Method, StatusCode};
use kith_domain::auth::Role;
use serde_json::{Value, json};

use crate::harness::Harness;

/// Who may call a route.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    /// Anyone, without a key.
    Public,
    /// Admin keys only.
    Admin,
    /// Admin keys and shop owners.
    KeyManagers,
    /// Shop keys of these roles.
    Shop(&'static [Role]),
    /// Admin keys and shop keys with `plugins:manage`.
    Catalogue,
}

struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    access: Access,
    ok: StatusCode,
    /// The path names a resource of shop A, so shop B's key must get 404.
    names_resource: bool,
    /// What shop B's owner gets instead, where the route is not about shop A at all.
    foreign_ok: Option<StatusCode>,
}

/// Routes of the plugin API need a plugin enabled in shop A; their paths name it.
fn needs_plugin(path: &str) -> bool {
    path.contains("/plugins")
}

const READERS: &[Role] = &[Role::Owner, Role::Operator, Role::Analyst, Role::App];
const WRITERS: &[Role] = &[Role::Owner, Role::Operator, Role::App];
const OWNERS: &[Role] = &[Role::Owner];
const MANAGERS: &[Role] = &[Role::Owner, Role::Operator];
/// Keys with `loyalty:redeem` or `messages:send`: a member centre app too.
const SENDERS: &[Role] = &[Role::Owner, Role::Operator, Role::App];

/// Every route but `POST /v1/plugins` (a package body, tested in the plugins suite), run resumption
/// (only a failed run resumes; also tested there) and `POST /v1/receipts/{token}` (no key: the
/// token is the credential; tested in the commerce suite). `letter` and `run` are those of [`Harness::with_plugin`].
fn routes(h: &Harness, (letter, run): (i64, i64)) -> Vec<Route> {
    let r = |method: Method, path: String, body: Option<Value>, access: Access, ok: u16, names_resource: bool| Route {
        method,
        path,
        body,
        access,
        ok: StatusCode::from_u16(ok).unwrap(),
        names_resource,
        foreign_ok: None,
    };
    let c = h.customer;
    let s = h.segment;
    let j = h.journey;
    // An event trigger names nothing of shop A's, so shop B may create the same journey.
    let journey = json!({"trigger": {"event": "order.paid"}, "start": "a", "steps": {"a": {"tag": {"add": "welcomed"}}}});
    vec![
        r(Method::GET, "/healthz".into(), None, Access::Public, 200, false),
        r(Method::GET, "/metrics".into(), None, Access::Public, 200, false),
        r(Method::GET, "/openapi.json".into(), None, Access::Public, 200, false),
        r(Method::GET, "/v1/admin/clock".into(), None, Access::Admin, 200, false),
        r(Method::POST, "/v1/shops".into(), Some(json!({"name": "New"})), Access::Admin, 201, false),
        r(Method::GET, "/v1/shops".into(), None, Access::Admin, 200, false),
        r(Method::GET, "/v1/shop".into(), None, Access::Shop(READERS), 200, false),
        r(
            Method::POST,
            "/v1/keys".into(),
            Some(json!({"name": "k", "role": "analyst", "shop_id": h.shop_a})),
            Access::KeyManagers,
            201,
            true,
        ),
        r(Method::GET, "/v1/keys".into(), None, Access::KeyManagers, 200, false),
        r(Method::DELETE, format!("/v1/keys/{}", h.analyst_key_id), None, Access::KeyManagers, 200, true),
        r(
            Method::POST,
            "/v1/events".into(),
            Some(json!({"events": [{"id": "authz", "type": "customer.upsert", "customer_id": c, "profile": {"city": "Hangzhou"}}]})),
            Access::Shop(WRITERS),
            200,
            false,
        ),
        r(Method::GET, "/v1/events".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, "/v1/events/stream".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, "/v1/customers".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, format!("/v1/customers/{c}"), None, Access::Shop(READERS), 200, true),
        r(Method::POST, format!("/v1/customers/{c}/tags"), Some(json!({"tag": "t"})), Access::Shop(WRITERS), 201, true),
        r(Method::DELETE, format!("/v1/customers/{c}/tags/seeded"), None, Access::Shop(WRITERS), 204, true),
        r(Method::GET, format!("/v1/customers/{c}/merges"), None, Access::Shop(READERS), 200, true),
        r(Method::POST, format!("/v1/merges/{}/unmerge", h.merge_id), None, Access::Shop(WRITERS), 200, true),
        r(Method::GET, "/v1/audit".into(), None, Access::Shop(OWNERS), 200, false),
        r(Method::GET, "/v1/plugins".into(), None, Access::Catalogue, 200, false),
        r(Method::GET, "/v1/plugins/vip-tag".into(), None, Access::Catalogue, 200, false),
        r(Method::GET, "/v1/shop/plugins".into(), None, Access::Shop(MANAGERS), 200, false),
        // The catalogue is shared: shop B's owner enables vip-tag in shop B.
        Route {
            foreign_ok: Some(StatusCode::CREATED),
            ..r(
                Method::PUT,
                "/v1/shop/plugins/vip-tag".into(),
                Some(json!({"config": {"threshold": 5}})),
                Access::Shop(MANAGERS),
                200,
                false,
            )
        },
        r(Method::GET, "/v1/shop/plugins/vip-tag".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::DELETE, "/v1/shop/plugins/vip-tag".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::GET, "/v1/shop/plugins/vip-tag/logs".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::GET, "/v1/shop/plugins/vip-tag/fixture".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::GET, "/v1/shop/plugins/vip-tag/dead-letters".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, format!("/v1/shop/plugins/vip-tag/dead-letters/{letter}/redrive"), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, "/v1/shop/plugins/vip-tag/runs".into(), None, Access::Shop(MANAGERS), 202, true),
        r(Method::GET, format!("/v1/shop/plugins/vip-tag/runs/{run}"), None, Access::Shop(MANAGERS), 200, true),
        r(Method::GET, format!("/v1/customers/{c}/points"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/customers/{c}/points/ledger"), None, Access::Shop(READERS), 200, true),
        r(
            Method::POST,
            format!("/v1/customers/{c}/points/adjustments"),
            Some(json!({"points": 5, "reason": "goodwill", "idempotency_key": "a1"})),
            Access::Shop(MANAGERS),
            201,
            true,
        ),
        r(Method::GET, format!("/v1/customers/{c}/redemptions"), None, Access::Shop(READERS), 200, true),
        r(
            Method::POST,
            format!("/v1/customers/{c}/redemptions"),
            Some(json!({"reward_id": h.reward, "request_id": "r1"})),
            Access::Shop(SENDERS),
            201,
            true,
        ),
        r(Method::GET, "/v1/rewards".into(), None, Access::Shop(READERS), 200, false),
        // Shop B's owner names shop A's template: not one of its own.
        Route {
            foreign_ok: Some(StatusCode::BAD_REQUEST),
            ..r(
                Method::POST,
                "/v1/rewards".into(),
                Some(json!({"name": "Mug", "points_cost": 10, "coupon_template_id": h.template})),
                Access::Shop(MANAGERS),
                201,
                false,
            )
        },
        r(Method::GET, format!("/v1/rewards/{}", h.reward), None, Access::Shop(READERS), 200, true),
        r(
            Method::PUT,
            format!("/v1/rewards/{}", h.reward),
            Some(json!({"name": "Mug", "points_cost": 10, "coupon_template_id": h.template, "stock": 3})),
            Access::Shop(MANAGERS),
            200,
            true,
        ),
        r(Method::GET, "/v1/shop/settings/loyalty".into(), None, Access::Shop(MANAGERS), 200, false),
        r(Method::PUT, "/v1/shop/settings/loyalty".into(), Some(json!({"refund_policy": "forgive"})), Access::Shop(MANAGERS), 200, false),
        r(Method::GET, "/v1/coupon-templates".into(), None, Access::Shop(READERS), 200, false),
        r(
            Method::POST,
            "/v1/coupon-templates".into(),
            Some(json!({"name": "5 off", "face_value": 500, "valid_days": 7})),
            Access::Shop(MANAGERS),
            201,
            false,
        ),
        r(Method::GET, format!("/v1/coupon-templates/{}", h.template), None, Access::Shop(READERS), 200, true),
        r(
            Method::PUT,
            format!("/v1/coupon-templates/{}", h.template),
            Some(json!({"name": "5 off", "face_value": 500, "valid_days": 7})),
            Access::Shop(MANAGERS),
            200,
            true,
        ),
        r(Method::GET, format!("/v1/coupon-templates/{}/stats", h.template), None, Access::Shop(READERS), 200, true),
        r(
            Method::POST,
            format!("/v1/coupon-templates/{}/issue", h.template),
            Some(json!({"customer_id": c, "idempotency_key": "i1"})),
            Access::Shop(MANAGERS),
            201,
            true,
        ),
        r(Method::GET, format!("/v1/coupons/{}", h.coupon_code), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/customers/{c}/coupons"), None, Access::Shop(READERS), 200, true),
        // Shop B's owner names shop A's customer: not one of its own. Shop A has no SMS
        // connector, so a caller let through is told the channel is not served (400, not 403):
        // sending is covered where a connector is enabled (commerce).
        Route {
            foreign_ok: Some(StatusCode::BAD_REQUEST),
            ..r(
                Method::POST,
                "/v1/messages".into(),
                Some(json!({"customer_id": c, "channel": "sms", "template": "SMS_1", "idempotency_key": "m1"})),
                Access::Shop(SENDERS),
                400,
                false,
            )
        },
        r(Method::GET, "/v1/messages".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, format!("/v1/messages/{}", h.message), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/customers/{c}/consents"), None, Access::Shop(READERS), 200, true),
        r(
            Method::PUT,
            format!("/v1/customers/{c}/consents/sms"),
            Some(json!({"status": "opted_out", "source": "sms-reply"})),
            Access::Shop(WRITERS),
            200,
            true,
        ),
        r(Method::GET, "/v1/shop/settings/messaging".into(), None, Access::Shop(MANAGERS), 200, false),
        r(
            Method::PUT,
            "/v1/shop/settings/messaging".into(),
            Some(json!({"channels": {"sms": {"frequency_cap": {"max": 3, "window_hours": 24}}}})),
            Access::Shop(MANAGERS),
            200,
            false,
        ),
        r(Method::GET, "/v1/shop/channels".into(), None, Access::Shop(MANAGERS), 200, false),
        r(Method::GET, "/v1/segments".into(), None, Access::Shop(READERS), 200, false),
        r(
            Method::POST,
            "/v1/segments".into(),
            Some(json!({"name": "vip", "definition": {"tag": "vip"}})),
            Access::Shop(MANAGERS),
            201,
            false,
        ),
        r(Method::POST, "/v1/segments/preview".into(), Some(json!({"definition": {"tag": "vip"}})), Access::Shop(READERS), 200, false),
        r(Method::GET, format!("/v1/segments/{s}"), None, Access::Shop(READERS), 200, true),
        r(
            Method::PUT,
            format!("/v1/segments/{s}"),
            Some(json!({"name": "seeded", "definition": {"tag": "seeded", "source": "manual"}})),
            Access::Shop(MANAGERS),
            200,
            true,
        ),
        r(Method::DELETE, format!("/v1/segments/{s}"), None, Access::Shop(MANAGERS), 204, true),
        r(Method::GET, format!("/v1/segments/{s}/versions"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/segments/{s}/members"), None, Access::Shop(READERS), 200, true),
        r(Method::POST, format!("/v1/segments/{s}/snapshots"), None, Access::Shop(MANAGERS), 201, true),
        r(Method::GET, format!("/v1/segments/{s}/snapshots"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/segments/{s}/snapshots/{}/members", h.snapshot), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/segments/{s}/counts"), None, Access::Shop(READERS), 200, true),
        // Only owners hold `segments:export` by default.
        r(Method::GET, format!("/v1/segments/{s}/export"), None, Access::Shop(OWNERS), 200, true),
        r(Method::GET, "/v1/journeys".into(), None, Access::Shop(READERS), 200, false),
        r(
            Method::POST,
            "/v1/journeys".into(),
            Some(json!({"name": "j", "definition": journey.clone()})),
            Access::Shop(MANAGERS),
            201,
            false,
        ),
        r(Method::GET, format!("/v1/journeys/{j}"), None, Access::Shop(READERS), 200, true),
        r(
            Method::PUT,
            format!("/v1/journeys/{j}"),
            Some(json!({"name": "j", "definition": journey.clone()})),
            Access::Shop(MANAGERS),
            200,
            true,
        ),
        r(Method::DELETE, format!("/v1/journeys/{}", h.draft_journey), None, Access::Shop(MANAGERS), 204, true),
        r(Method::GET, format!("/v1/journeys/{j}/versions"), None, Access::Shop(READERS), 200, true),
        r(Method::POST, format!("/v1/journeys/{}/activate", h.draft_journey), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, format!("/v1/journeys/{j}/pause"), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, format!("/v1/journeys/{j}/archive"), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, format!("/v1/journeys/{j}/test-send"), Some(json!({"customer_id": c})), Access::Shop(MANAGERS), 200, true),
        r(Method::GET, format!("/v1/journeys/{j}/dry-run"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/journeys/{j}/stats"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/journeys/{j}/runs"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, format!("/v1/customers/{c}/journeys"), None, Access::Shop(READERS), 200, true),
        r(Method::GET, "/v1/metrics/overview".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, "/v1/metrics/cohorts".into(), None, Access::Shop(READERS), 200, false),
        r(Method::GET, "/v1/metrics/scores/rfm".into(), None, Access::Shop(READERS), 200, false),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Caller {
    Nobody,
    Role(Role),
    Foreign,
}

fn expected(route: &Route, caller: Caller) -> StatusCode {
    let allowed_role = |role: Role| match route.access {
        Access::Public => true,
        Access::Admin => role == Role::Admin,
        Access::KeyManagers => matches!(role, Role::Admin | Role::Owner),
        Access::Shop(roles) => roles.contains(&role),
        Access::Catalogue => matches!(role, Role::Admin | Role::Owner | Role::Operator),
    };
    match caller {
        _ if route.access == Access::Public => route.ok,
        Caller::Nobody => StatusCode::UNAUTHORIZED,
        Caller::Role(role) if allowed_role(role) => route.ok,
        Caller::Role(_) => StatusCode::FORBIDDEN,
        // Shop B's owner: refused where owners are, else shop A's resources do not exist for it.
        Caller::Foreign if !allowed_role(Role::Owner) => StatusCode::FORBIDDEN,
        Caller::Foreign if route.foreign_ok.is_some() => route.foreign_ok.unwrap_or(route.ok),
        Caller::Foreign if route.names_resource => StatusCode::NOT_FOUND,
        Caller::Foreign => route.ok,
    }
}

#[tokio::test]
async fn every_route_with_every_caller() {
    let callers = [
        Caller::Nobody,
        Caller::Role(Role::Admin),
        Caller::Role(Role::Owner),
        Caller::Role(Role::Operator),
        Caller::Role(Role::Analyst),
        Caller::Role(Role::App),
        Caller::Foreign,
    ];
    let count = routes(&Harness::new().await, (0, 0)).len();
    let mut failures = Vec::new();
    for i in 0..count {
        for caller in callers {
            // A fresh kernel per call, so that writes (revocations, unmerges) do not change later calls.
            let h = Harness::new().await;
            let ids = if needs_plugin(&routes(&h, (0, 0))[i].path) { h.with_plugin() } else { (0, 0) };
            let route = &routes(&h, ids)[i];
            let key = match caller {
                Caller::Nobody => None,
                Caller::Role(role) => Some(h.key(role).to_owned()),
                Caller::Foreign => Some(h.foreign.clone()),
            };
            let reply = h.call(route.method.clone(), &route.path, key.as_deref(), route.body.clone()).await;
            let want = expected(route, caller);
            if reply.status != want {
                failures.push(format!("{} {} as {caller:?}: got {}, want {want}: {}", route.method, route.path, reply.status, reply.body));
            }
            if !reply.status.is_success() {
                reply.assert_problem(
                    reply.status.as_u16(),
                    match reply.status.as_u16() {
                        400 => "invalid-request",
                        401 => "unauthorized",
                        403 => "forbidden",
                        _ => "not-found",
                    },
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
