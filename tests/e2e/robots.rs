//! The group robots written in the other languages, through the kernel to stand-ins that check what
//! the real services check: DingTalk's (plugins/js/dingtalk-robot, JavaScript) signature of each
//! request, WeChat Work's (plugins/python/wecom-robot, Python) webhook key. Built and packed by
//! `kith plugin`, published into `kith serve` on the test clock, sent to by the outbox.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Http;
use crate::{Server, kith_json, kith_plugin, repository};

const SECRET: &str = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
const TOKEN: &str = "b1e2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const WECOM_KEY: &str = "693a91f6-7d1e-4bc4-97a0-0ec2a5fa5aaa";

/// A copy of a first-party plugin's source in `dir`, packed there by `kith plugin pack`
/// (the build writes `.kith/` and `target/`, which stay out of the repository's folders).
fn packed(dir: &Path, plugin: &str) -> PathBuf {
    let from = repository().join("plugins").join(plugin);
    let to = dir.join(Path::new(plugin).file_name().unwrap());
    copy(&from, &to);
    kith_plugin(&to, &["pack"]);
    to
}

pub(crate) fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".kith", "target", "__pycache__", "node_modules"].iter().any(|skip| name == *skip) {
            continue;
        }
        if entry.path().is_dir() {
            copy(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

async fn message(http: &Http, auth: &str, id: &str, want: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let m = http.get(auth, &format!("/v1/messages/{id}")).await;
        if want(&m) {
            return m;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "message {id}: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dingtalk_and_wecom_robots_send_signed_and_keyed_requests_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let dingtalk = packed(dir.path(), "js/dingtalk-robot");
    let wecom = packed(dir.path(), "python/wecom-robot");
    let provider = kith_provider::Provider::start().unwrap();
    provider.dingtalk_robot(TOKEN, SECRET);
    provider.wecom_robot(WECOM_KEY);

    let db = dir.path().join("kith.db");
    let db_arg = db.to_str().unwrap();
    let admin =
        kith_json(dir.path(), &["--database", db_arg, "admin", "create-key", "--role", "admin"])["token"].as_str().unwrap().to_owned();
    let shop = kith_json(dir.path(), &["--database", db_arg, "admin", "create-shop", "--name", "Robots"])["id"].to_string();
    let owner = kith_json(dir.path(), &["--database", db_arg, "admin", "create-key", "--shop", &shop, "--role", "owner"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cache = repository().join("target/kith-cache/wasmtime");
    let server =
        Server::start_with(dir.path(), &db, &format!("[plugins]\ncache_dir = {:?}\n[testing]\nclock = true\n", cache.to_str().unwrap()));
    let http = Http::new(reqwest::Client::new(), server.url.clone());
    let auth = format!("Bearer {owner}");
    let admin_auth = format!("Bearer {admin}");

    let publish = |project: &Path, config: Value| {
        let (config, host) = (config.to_string(), provider.host());
        kith_plugin(
            project,
            &[
                "publish",
                "--no-build",
                "--url",
                &server.url,
                "--key",
                &admin,
                "--enable",
                "--shop-key",
                &owner,
                "--plugin-config",
                &config,
                "--allow-host",
                &host,
            ],
        );
    };
    let dingtalk_config =
        |secret: &str| json!({"endpoint": provider.url("/robot/send"), "access_token": TOKEN, "secret": secret, "keyword": "Kith"});
    publish(&dingtalk, dingtalk_config(SECRET));
    publish(&wecom, json!({"endpoint": provider.url("/cgi-bin/webhook/send"), "key": WECOM_KEY}));

    let reply = http
        .post(
            &auth,
            "/v1/events",
            &json!({"events": [{"id": "c1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13812345678"}]}]}),
        )
        .await;
    let customer = reply["outcomes"][0]["customer_id"].as_i64().unwrap();
    let send = |channel: &str, key: &str| json!({"customer_id": customer, "channel": channel, "template": "VIP {{name}} paid {{amount}}", "variables": {"name": "Li", "amount": "¥1,200.00"}, "idempotency_key": key});

    // DingTalk: the stand-in answers errcode 0 only to a request signed with the robot's secret at the kernel's time.
    let sent = http.post(&auth, "/v1/messages", &send("dingtalk", "d1")).await;
    let done = message(&http, &auth, sent["id"].as_str().unwrap(), |m| m["status"] != "queued" && m["status"] != "sending").await;
    assert_eq!(done["status"], "sent", "{done}");
    let request = provider.received().into_iter().find(|r| r.path == "/robot/send").expect("a DingTalk request");
    assert_eq!(request.json()["text"]["content"], "Kith VIP Li paid ¥1,200.00", "{:?}", request.json());

    // WeChat Work: the key in the URL is the credential.
    let sent = http.post(&auth, "/v1/messages", &send("wecom", "w1")).await;
    let done = message(&http, &auth, sent["id"].as_str().unwrap(), |m| m["status"] != "queued" && m["status"] != "sending").await;
    assert_eq!(done["status"], "sent", "{done}");
    let request = provider.received().into_iter().find(|r| r.path == "/cgi-bin/webhook/send").expect("a WeChat Work request");
    assert_eq!(request.json()["text"]["content"], "VIP Li paid ¥1,200.00", "{:?}", request.json());

    // Too fast for DingTalk (20 a minute): the outbox holds the message 60 s on the kernel's clock, then it goes.
    provider.script([kith_provider::Answer::Status {
        status: 200,
        body: json!({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}).to_string(),
        retry_after: None,
    }]);
    let sent = http.post(&auth, "/v1/messages", &send("dingtalk", "d2")).await;
    let id = sent["id"].as_str().unwrap().to_owned();
    let held = message(&http, &auth, &id, |m| m["attempts"].as_i64().is_some_and(|a| a >= 1) && m["status"] == "queued").await;
    assert!(held["reason"].as_str().is_none_or(|r| !r.contains("310000")), "{held}");
    http.post(&admin_auth, "/v1/admin/clock", &json!({"advance_seconds": 59})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still = http.get(&auth, &format!("/v1/messages/{id}")).await;
    assert_eq!((still["status"].as_str(), still["attempts"].as_i64()), (Some("queued"), Some(1)), "held for 60 s: {still}");
    http.post(&admin_auth, "/v1/admin/clock", &json!({"advance_seconds": 2})).await;
    let done = message(&http, &auth, &id, |m| m["status"] == "sent" || m["status"] == "failed").await;
    assert_eq!(done["status"], "sent", "{done}");

    // A wrong secret: DingTalk refuses the signature, and the message fails with its reason.
    let owner_put = json!({"config": dingtalk_config("SECnot-the-robots-secret"), "grant": {"capabilities": ["log", "config", "clock", "http"], "allowed_hosts": [provider.host()]}});
    http.put(&auth, "/v1/shop/plugins/dingtalk-robot", &owner_put).await;
    let sent = http.post(&auth, "/v1/messages", &send("dingtalk", "d3")).await;
    let done = message(&http, &auth, sent["id"].as_str().unwrap(), |m| m["status"] == "failed" || m["status"] == "sent").await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["reason"].as_str().is_some_and(|r| r.contains("310000")), "{done}");
}
