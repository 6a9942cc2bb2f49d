//! `kith plugin` as a vendor uses it: a project from every template (each kind in each language),
//! built, run against its own fixtures, packed, published into a running kernel with an admin key,
//! enabled in a shop, and seen doing its work there.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Http;
use crate::{Server, kith_json, kith_plugin, kith_plugin_run, repository};

const LANGUAGES: [&str; 4] = ["rust", "js", "python", "c"];
/// Each kind and the short name its plugin gets (`rust-tag`, `js-points`, …).
const KINDS: [(&str, &str); 4] =
    [("tag-rule", "tag"), ("scoring-model", "score"), ("loyalty-scheme", "points"), ("channel-connector", "send")];

fn target() -> PathBuf {
    repository().join("target")
}

/// Ask `path` until `done` holds of its answer, for up to two minutes.
async fn until(http: &Http, auth: &str, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let value = http.get(auth, path).await;
        if done(&value) {
            return value;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{what}: still {value}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_from_every_template_passes_its_fixtures_installs_and_works_in_a_shop() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    for lang in LANGUAGES {
        for (kind, short) in KINDS {
            let id = format!("{lang}-{short}");
            let created = kith_plugin(&projects, &["new", &id, "--kind", kind, "--lang", lang]);
            assert!(created.contains("plugin.toml"), "{created}");
            // The template's own fixtures pass in the kernel's host, as the vendor's first test run.
            let tested = kith_plugin(&projects.join(&id), &["test"]);
            assert!(tested.contains(" passed, 0 failed"), "{id}:\n{tested}");
            assert!(tested.contains("cost: instantiation"), "{id}:\n{tested}");
            if lang == "rust" {
                // The same fixtures natively, through the SDK's fake host (`tests/fixtures.rs`).
                let native = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                    .current_dir(projects.join(&id))
                    .args(["test", "--quiet"])
                    .env("CARGO_TARGET_DIR", target().join("templates-native"))
                    .env_remove("RUSTFLAGS")
                    .output()
                    .unwrap();
                assert!(
                    native.status.success(),
                    "{id}: cargo test:\n{}\n{}",
                    String::from_utf8_lossy(&native.stdout),
                    String::from_utf8_lossy(&native.stderr)
                );
            }
            if lang == "c" {
                // clang, the bindings and the encoder make the same component from the same
                // sources, wherever the project is.
                let elsewhere = dir.path().join("elsewhere");
                std::fs::create_dir_all(&elsewhere).unwrap();
                kith_plugin(&elsewhere, &["new", &id, "--kind", kind, "--lang", lang]);
                kith_plugin(&elsewhere.join(&id), &["build"]);
                let first = std::fs::read(projects.join(&id).join("target/kith/plugin.wasm")).unwrap();
                let other = std::fs::read(elsewhere.join(&id).join("target/kith/plugin.wasm")).unwrap();
                assert!(other == first, "{id}: a build in another folder gave other bytes");
            }
            kith_plugin(&projects.join(&id), &["pack", "--no-build"]);
            assert!(projects.join(&id).join("target/kith").join(format!("{id}-0.1.0.tar.gz")).is_file());
        }
    }
    // A fixture the plugin does not meet fails the run with the difference, exit status 1.
    let project = projects.join("rust-tag");
    let broken =
        std::fs::read_to_string(project.join("fixtures/basic.json")).unwrap().replace("spent 120000 (at least 100000)", "spent a lot");
    std::fs::write(project.join("broken.json"), broken).unwrap();
    let failed = kith_plugin_run(&project, &["test", "--no-build", "broken.json"]);
    let report = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{report}");
    assert!(report.contains("decisions[0]: expected") && report.contains("spent a lot") && report.contains("1 failed"), "{report}");
    // Decisions the kernel would refuse (a tag without the grant of `tags:write`) fail as they would in a shop.
    let refused = r#"{"grant": {"capabilities": ["log", "config"]}, "customers": [{"id": 1, "stats": {"total_spent": 200000}}]}"#;
    std::fs::write(project.join("refused.json"), refused).unwrap();
    let failed = kith_plugin_run(&project, &["test", "--no-build", "refused.json"]);
    let report = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{report}");
    assert!(report.contains("the kernel refuses the call") && report.contains("tags:write"), "{report}");
    std::fs::write(project.join("refused.json"), refused.replace(r#""customers""#, r#""expect": {"error": "refused"}, "customers""#))
        .unwrap();
    let tested = kith_plugin(&project, &["test", "--no-build", "refused.json"]);
    assert!(tested.contains("1 passed"), "{tested}");

    // One shop per language, each with its four plugins, in one kernel.
    let provider = kith_provider::Provider::start().unwrap();
    let db = dir.path().join("kith.db");
    let db_arg = db.to_str().unwrap();
    let admin =
        kith_json(dir.path(), &["--database", db_arg, "admin", "create-key", "--role", "admin"])["token"].as_str().unwrap().to_owned();
    let (mut owners, mut shops) = (Vec::new(), Vec::new());
    for lang in LANGUAGES {
        let shop = kith_json(dir.path(), &["--database", db_arg, "admin", "create-shop", "--name", lang])["id"].to_string();
        shops.push(shop.clone());
        let key = kith_json(dir.path(), &["--database", db_arg, "admin", "create-key", "--shop", &shop, "--role", "owner"]);
        owners.push(key["token"].as_str().unwrap().to_owned());
    }
    let cache = target().join("kith-cache/wasmtime");
    let server = Server::start_with(dir.path(), &db, &format!("[plugins]\ncache_dir = {:?}\n", cache.to_str().unwrap()));
    let http = Http::new(reqwest::Client::new(), server.url.clone());
    for (lang, owner) in LANGUAGES.iter().zip(&owners) {
        for (_, short) in KINDS {
            let id = format!("{lang}-{short}");
            let config = match short {
                "tag" => json!({"min_spent": 100000}),
                "points" => json!({"unit": 100}),
                "send" => json!({"url": provider.url("/webhook")}),
                _ => json!({}),
            };
            let mut args = vec!["publish", "--no-build", "--url", &server.url, "--key", &admin, "--enable", "--shop-key", owner];
            let config = config.to_string();
            args.extend(["--plugin-config", &config]);
            let host = provider.host();
            if short == "send" {
                args.extend(["--allow-host", &host]);
            }
            let published = kith_plugin(&projects.join(&id), &args);
            assert!(
                published.contains(&format!("installed {id} 0.1.0")) && published.contains(&format!("enabled {id} 0.1.0")),
                "{published}"
            );
        }
    }

    for (lang, owner) in LANGUAGES.iter().zip(&owners) {
        let auth = format!("Bearer {owner}");
        let order = json!({"events": [
            {"id": format!("{lang}-c1"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13812345678"}], "profile": {"name": "张伟", "city": "杭州"}},
            {"id": format!("{lang}-o1"), "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}],
            "order": {"id": format!("{lang}-T1"), "paid_at": "2026-10-01T12:00:00Z", "items": [{"sku": "TEA-1", "quantity": 1, "unit_price": 120000, "discount": 0}]}}]});
        let reply = http.post(&auth, "/v1/events", &order).await;
        let customer = reply["outcomes"][1]["customer_id"].as_i64().unwrap_or_else(|| panic!("{reply}"));
        let path = format!("/v1/customers/{customer}");
        // The tag rule tagged the customer who spent 1,200.00; the loyalty scheme awarded a point per yuan.
        until(&http, &auth, &path, &format!("{lang}: tagged and awarded"), |c| {
            c["tags"].as_array().is_some_and(|t| t.iter().any(|t| t["tag"] == format!("{lang}-tag"))) && c["points"] == 1200
        })
        .await;
        // The scoring model scores every customer in a run: spent as much as the shop's average, so 1.0 and high.
        http.post(&auth, &format!("/v1/shop/plugins/{lang}-score/runs"), &json!({})).await;
        let scored = until(&http, &auth, &path, &format!("{lang}: scored"), |c| {
            c["scores"].as_array().is_some_and(|s| s.iter().any(|s| s["model"] == format!("{lang}-score")))
        })
        .await;
        let score = scored["scores"].as_array().unwrap().iter().find(|s| s["model"] == format!("{lang}-score")).unwrap().clone();
        assert_eq!((score["value"].as_f64(), score["label"].as_str()), (Some(1.0), Some("high")), "{lang}: {score}");
        // The connector posts a message to the provider, which accepts it.
        let message = http
            .post(&auth, "/v1/messages", &json!({"customer_id": customer, "channel": "webhook", "template": "welcome", "variables": {"name": "Li"}, "idempotency_key": lang}))
            .await;
        let id = message["id"].as_str().unwrap_or_else(|| panic!("{message}")).to_owned();
        until(&http, &auth, &format!("/v1/messages/{id}"), &format!("{lang}: message sent"), |m| {
            m["status"] == "sent" || m["status"] == "delivered"
        })
        .await;
        let received = provider.received();
        let posted = received
            .iter()
            .map(|r| r.json())
            .find(|b| b["template"] == "welcome" && b["variables"]["name"] == "Li" && b["id"] == id.as_str());
        assert!(posted.is_some(), "{lang}: the provider got {:?}", received.iter().map(|r| r.json()).collect::<Vec<_>>());
    }

    // --record: what rust-points (which reads whole customers) would be handed in the shop now,
    // for a key without pii:read: personal data masked.
    let key = kith_json(
        dir.path(),
        &[
            "--database",
            db_arg,
            "admin",
            "create-key",
            "--shop",
            &shops[0],
            "--role",
            "owner",
            "--scope",
            "plugins:manage",
            "--scope",
            "customers:read",
        ],
    );
    let key = key["token"].as_str().unwrap();
    let project = projects.join("rust-points");
    let report = kith_plugin(&project, &["test", "--no-build", "--record", "--url", &server.url, "--key", key]);
    assert!(report.contains("2 fixtures: 2 passed"), "{report}");
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(project.join("fixtures/recorded.json")).unwrap()).unwrap();
    let customer = &recorded["customers"][0];
    assert!(customer["tags"].as_array().unwrap().iter().any(|t| t["tag"] == "rust-tag"), "{recorded}");
    assert_eq!((customer["stats"]["total_spent"].as_i64(), customer["points"].as_i64()), (Some(120000), Some(1200)), "{recorded}");
    assert_eq!(recorded["config"], json!({"unit": 100}), "{recorded}");
    let name = customer["profile"]["name"].as_str().unwrap_or_else(|| panic!("{recorded}"));
    assert!(name != "张伟" && name.starts_with('张'), "a key without pii:read records masked names: {name}");
}
