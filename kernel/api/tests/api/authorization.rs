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

/// Every route but `POST /v1/plugins` (a package body, tested in the plugins suite) and run resumption
/// (only a failed run resumes; also tested there). `letter` and `run` are those of [`Harness::with_plugin`].
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
    vec![
        r(Method::GET, "/healthz".into(), None, Access::Public, 200, false),
        r(Method::GET, "/metrics".into(), None, Access::Public, 200, false),
        r(Method::GET, "/openapi.json".into(), None, Access::Public, 200, false),
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
        r(Method::GET, "/v1/shop/plugins/vip-tag/dead-letters".into(), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, format!("/v1/shop/plugins/vip-tag/dead-letters/{letter}/redrive"), None, Access::Shop(MANAGERS), 200, true),
        r(Method::POST, "/v1/shop/plugins/vip-tag/runs".into(), None, Access::Shop(MANAGERS), 202, true),
        r(Method::GET, format!("/v1/shop/plugins/vip-tag/runs/{run}"), None, Access::Shop(MANAGERS), 200, true),
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
