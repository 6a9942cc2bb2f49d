//! Plugins in the kernel's terms: manifests, capabilities and what a shop
//! grants, the snapshots a plugin gets and the decisions it returns.
//!
//! [`Capability`] checks live here, in one place, so that the host (imports),
//! the bus (decisions) and the API (grants) agree on them.
//!
//! One file per concern: `manifest.rs` (kinds, capabilities, limits, schema,
//! hosts, WIT versions), `grant.rs`, `snapshot.rs` (what a plugin reads),
//! `decision.rs` (what it returns, and the bounds of one call), `connector.rs`
//! (logs, messages out, requests and receipts in), `views.rs` (the catalogue,
//! subscriptions, dead letters, logs, statistics and runs as the API shows them).

mod connector;
mod decision;
mod grant;
mod manifest;
mod snapshot;
mod views;

pub use connector::*;
pub use decision::*;
pub use grant::*;
pub use manifest::*;
pub use snapshot::*;
pub use views::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Customer;
    use serde_json::json;

    const MANIFEST: &str = r#"
        id = "webhook"
        version = "1.0.0"
        kind = "channel-connector"
        api-version = "0.1.0"
        description = "Posts messages"
        vendor = "Kith"
        capabilities = ["log", "config", "http"]
        allowed-hosts = ["hooks.example.com", "127.0.0.1:9000"]
        channel = "webhook"
    "#;

    #[test]
    fn manifest_parses_and_refuses_what_it_must() {
        let m = Manifest::parse(MANIFEST).unwrap();
        assert_eq!(m.kind, Kind::ChannelConnector);
        assert_eq!(m.api_version, semver::Version::new(0, 1, 0));

        let err = Manifest::parse(&format!("{MANIFEST}\nhomepage = \"x\"")).unwrap_err();
        assert!(err.reason.contains("unknown field `homepage`"), "{err}");
        let served = Manifest::parse(&MANIFEST.replace("0.1.0\"\n        desc", "0.2.0\"\n        desc")).unwrap();
        assert_eq!(served.api_version, semver::Version::new(0, 2, 0), "0.2 is served beside 0.1");
        let err = Manifest::parse(&MANIFEST.replace("0.1.0\"\n        desc", "0.3.0\"\n        desc")).unwrap_err();
        assert_eq!(err.field, "api-version");
        assert!(err.reason.contains("it serves 0.1.0, 0.2.0"), "{err}");
        let err = Manifest::parse(&MANIFEST.replace("\"http\"]", "\"http\", \"points:write\"]")).unwrap_err();
        assert_eq!(err.field, "capabilities");
        let err = Manifest::parse(&MANIFEST.replace("\"http\"]", "\"http\", \"kv\"]")).unwrap_err();
        assert_eq!((err.field.as_str(), err.reason.as_str()), ("capabilities", "a channel-connector may not request `kv`"));
        let err = Manifest::parse(&MANIFEST.replace("id = \"webhook\"", "id = \"Web Hook\"")).unwrap_err();
        assert_eq!(err.field, "id");
        let err = Manifest::parse(&MANIFEST.replace("\"hooks.example.com\"", "\"https://hooks.example.com/x\"")).unwrap_err();
        assert_eq!(err.field, "allowed-hosts[0]");
        let err = Manifest::parse(&MANIFEST.replace("kind = \"channel-connector\"\n", "")).unwrap_err();
        assert_eq!(err.field, "kind");
        let err = Manifest::parse(&MANIFEST.replace("channel = \"webhook\"", "")).unwrap_err();
        assert_eq!(err.field, "channel", "a connector names its channel");
        let err = Manifest::parse(&MANIFEST.replace("\"hooks.example.com\", ", "\"*\", ")).unwrap_err();
        assert_eq!(err.field, "allowed-hosts", "`*` stands alone");
    }

    #[test]
    fn reads_names_parts_of_a_customer_and_defaults_to_all() {
        let rule = MANIFEST
            .replace("channel-connector", "tag-rule")
            .replace("\"http\"]", "\"tags:write\"]")
            .replace("allowed-hosts = [\"hooks.example.com\", \"127.0.0.1:9000\"]", "")
            .replace("channel = \"webhook\"", "");
        assert_eq!(Manifest::parse(&rule).unwrap().reads(), Reads::ALL, "absent: every part");
        let m = Manifest::parse(&format!("{rule}\nreads = [\"tags\", \"stats\"]")).unwrap();
        let stats_and_tags = Reads::of([Part::Stats, Part::Tags]);
        assert_eq!(m.reads(), stats_and_tags);
        assert!(stats_and_tags.has(Part::Tags) && !stats_and_tags.has(Part::Scores));
        let none = Manifest::parse(&format!("{rule}\nreads = []")).unwrap().reads();
        assert_eq!(none, Reads::of([]));

        let at = chrono::DateTime::UNIX_EPOCH;
        let mut c = Customer {
            id: 1,
            profile: crate::model::Profile { name: Some("Ann".into()), ..Default::default() },
            identities: vec![],
            stats: crate::model::Stats { order_count: 2, ..Default::default() },
            tags: vec![],
            scores: vec![],
            points: 5,
            tier: Some("gold".into()),
            created_at: at,
            updated_at: at,
        };
        stats_and_tags.blank(&mut c);
        assert_eq!((c.profile.name, c.stats.order_count, c.points, c.tier), (None, 2, 0, None));

        let err = Manifest::parse(&format!("{rule}\nreads = [\"stats\", \"identities\"]")).unwrap_err();
        assert_eq!(err.field, "reads[1]");
        assert!(err.reason.contains("unknown variant `identities`"), "{err}");
        let err = Manifest::parse(&format!("{MANIFEST}\nreads = [\"stats\"]")).unwrap_err();
        assert_eq!(err.field, "reads", "a connector is handed no customers");
    }

    #[test]
    fn limits_asked_for_are_at_least_one() {
        let m = Manifest::parse(&format!("{MANIFEST}\n[limits]\nbatch-size = 20\ntimeout-ms = 500")).unwrap();
        assert_eq!((m.limits.batch_size, m.limits.timeout_ms, m.limits.memory_mib), (Some(20), Some(500), None));
        for field in ["batch-size", "timeout-ms", "memory-mib", "fuel", "events-per-minute"] {
            let err = Manifest::parse(&format!("{MANIFEST}\n[limits]\n{field} = 0")).unwrap_err();
            assert_eq!((err.field.as_str(), err.reason.as_str()), (format!("limits.{field}").as_str(), "must be at least 1"));
        }
    }

    #[test]
    fn the_emission_rate_has_a_default_and_a_ceiling() {
        assert_eq!(Manifest::parse(MANIFEST).unwrap().limits.events_per_minute(), DEFAULT_EVENTS_PER_MINUTE);
        let m = Manifest::parse(&format!("{MANIFEST}\n[limits]\nevents-per-minute = {MAX_EVENTS_PER_MINUTE}")).unwrap();
        assert_eq!(m.limits.events_per_minute(), MAX_EVENTS_PER_MINUTE);
        let err = Manifest::parse(&format!("{MANIFEST}\n[limits]\nevents-per-minute = {}", MAX_EVENTS_PER_MINUTE + 1)).unwrap_err();
        assert_eq!((err.field.as_str(), err.reason.as_str()), ("limits.events-per-minute", "must be at most 60000"));
    }

    #[test]
    fn a_star_lets_the_shop_grant_any_host_and_nothing_more() {
        let m = Manifest::parse(&MANIFEST.replace("[\"hooks.example.com\", \"127.0.0.1:9000\"]", "[\"*\"]")).unwrap();
        let default = Grant::all_requested(&m);
        assert!(default.allowed_hosts.is_empty(), "nothing is granted by default");
        let err = default.check(&m).unwrap_err();
        assert_eq!(err.field, "grant.allowed_hosts", "a connector that could reach no host is refused at enable");
        assert!(err.reason.contains("name at least one"), "{err}");
        let gateway = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["sms.example.cn".into()] };
        assert!(gateway.check(&m).is_ok());
        assert!(gateway.allows_host("sms.example.cn") && !gateway.allows_host("other.example.cn"));
        let star = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["*".into()] };
        assert_eq!(star.check(&m).unwrap_err().field, "grant.allowed_hosts[0]", "a grant names real hosts");
    }

    #[test]
    fn api_versions_follow_semver_with_zero_major_minors_apart() {
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(api_compatible("0.1.0", &v("0.1.0")));
        assert!(api_compatible("0.1.3", &v("0.1.1")));
        assert!(!api_compatible("0.1.0", &v("0.1.1")), "built against a newer patch than served");
        assert!(!api_compatible("0.2.0", &v("0.1.0")));
        assert!(!api_compatible("0.1.0", &v("0.2.0")));
        assert!(api_compatible("1.4.0", &v("1.2.0")));
        assert!(!api_compatible("2.0.0", &v("1.2.0")));
    }

    #[test]
    fn a_grant_holds_only_what_was_requested() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let all = Grant::all_requested(&m);
        assert!(all.check(&m).is_ok());
        let more = Grant { capabilities: [Capability::Http, Capability::Kv].into(), allowed_hosts: vec![] };
        assert_eq!(more.check(&m).unwrap_err().field, "grant.capabilities");
        let other_host = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["evil.example.com".into()] };
        assert_eq!(other_host.check(&m).unwrap_err().field, "grant.allowed_hosts[0]");

        let narrow = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["hooks.example.com".into()] };
        assert!(narrow.allows_host("hooks.example.com:443"));
        assert!(narrow.allows_host("HOOKS.example.com"));
        assert!(!narrow.allows_host("127.0.0.1:9000"), "declared but not granted");
        assert!(!narrow.allows_host("hooks.example.com.evil.net"));
        let port = Grant { capabilities: [Capability::Http].into(), allowed_hosts: vec!["127.0.0.1:9000".into()] };
        assert!(port.allows_host("127.0.0.1:9000"));
        assert!(!port.allows_host("127.0.0.1:9001"));
    }

    #[test]
    fn decisions_are_checked_against_the_grant_and_the_rules() {
        let grant = Grant { capabilities: [Capability::TagsWrite, Capability::ScoresWrite].into(), allowed_hosts: vec![] };
        let tag = Decision::AddTag { customer_id: 1, tag: "vip".into(), reason: "spent a lot".into() };
        assert_eq!(tag.check("rfm", &grant), Ok(()));
        let points = Decision::AwardPoints { customer_id: 1, points: 5, source_key: "o1".into(), reason: "".into(), expires_at_ms: None };
        assert_eq!(points.check("rfm", &grant).unwrap_err(), "capability `points:write` is not granted");
        let score =
            |model: &str| Decision::SetScore { customer_id: 1, model: model.into(), value: 1.0, label: None, explanation: String::new() };
        assert!(score("rfm").check("rfm", &grant).is_ok());
        assert!(score("rfm.r").check("rfm", &grant).is_ok());
        assert!(score("rfmx").check("rfm", &grant).is_err());
        assert!(score("aipl").check("rfm", &grant).is_err());
        let nan = Decision::SetScore { customer_id: 1, model: "rfm".into(), value: f64::NAN, label: None, explanation: String::new() };
        assert!(nan.check("rfm", &grant).is_err());
        let long = Decision::AddTag { customer_id: 1, tag: "x".repeat(65), reason: String::new() };
        assert!(long.check("rfm", &grant).is_err());
        let emitting = Grant { capabilities: [Capability::EventsEmit].into(), allowed_hosts: vec![] };
        let emit = |payload: &str| Decision::EmitEvent { customer_id: None, event_type: "plugin.x".into(), payload: payload.into() };
        assert_eq!(emit(r#"{"a": ["\u0001"]}"#).check("rfm", &emitting), Ok(()));
        assert_eq!(
            emit(r#"{"a": ["\u0000"]}"#).check("rfm", &emitting).unwrap_err(),
            "event payload.a[0]: must not contain the NUL character (U+0000)"
        );
    }

    #[test]
    fn schemas_whose_references_cycle_in_place_are_refused() {
        let cyclic = [
            json!({"allOf": [{"$ref": "#"}]}),
            json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"anyOf": [{"$ref": "#/$defs/y"}]}, "y": {"not": {"$ref": "#/$defs/x"}}}}),
            json!({"if": {"$ref": "#"}}),
        ];
        for schema in cyclic {
            let err = check_schema(&schema).unwrap_err();
            assert!(err.reason.contains("leads back to itself"), "{schema}: {err}");
        }
        // Recursion under `properties` or `items` consumes input: it ends with the instance.
        let tree = json!({"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}});
        check_schema(&tree).unwrap();
        let shared = json!({"allOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/a"}], "$defs": {"a": {"type": "object"}}});
        check_schema(&shared).unwrap();
        assert!(check_schema(&json!({"$ref": "https://example.com/s.json"})).is_err(), "remote references are not served");
        assert!(check_schema(&json!({"$ref": "#/nowhere"})).is_err());
        let mut deep = json!({"type": "string"});
        for _ in 0..40 {
            deep = json!({"items": deep});
        }
        assert!(check_schema(&deep).unwrap_err().reason.contains("nest at most"));
    }

    #[test]
    fn schema_identifiers_and_dynamic_references_are_refused() {
        let escaping = [
            json!({"$id": "https://example.com/s", "allOf": [{"$ref": "https://example.com/s"}]}),
            json!({"$defs": {"a": {"$anchor": "a", "allOf": [{"$ref": "#a"}]}}}),
            json!({"$dynamicAnchor": "node", "allOf": [{"$dynamicRef": "#node"}]}),
            json!({"properties": {"a": {"$dynamicRef": "#node"}}}),
            json!({"$recursiveAnchor": true, "anyOf": [{"$recursiveRef": "#"}]}),
            json!({"items": {"$recursiveRef": "#"}}),
        ];
        for schema in escaping {
            let err = check_schema(&schema).unwrap_err();
            assert_eq!(err.field, "config-schema");
            assert!(err.reason.contains("is not served"), "{schema}: {err}");
        }
        // A property of that name is not the keyword.
        check_schema(&json!({"type": "object", "properties": {"$id": {"type": "string"}}})).unwrap();
    }

    #[test]
    fn invisible_characters_and_wild_values_are_refused() {
        let grant =
            Grant { capabilities: [Capability::TagsWrite, Capability::ScoresWrite, Capability::PointsWrite].into(), allowed_hosts: vec![] };
        let tag = |t: &str| Decision::AddTag { customer_id: 1, tag: t.into(), reason: String::new() };
        for t in ["vip\u{202e}", "v\u{200b}ip", "\u{feff}vip", "a\u{2066}b"] {
            assert!(tag(t).check("p", &grant).unwrap_err().contains("invisible"), "{t:?}");
        }
        tag("高价值").check("p", &grant).unwrap();
        let score = |value: f64| Decision::SetScore { customer_id: 1, model: "p".into(), value, label: None, explanation: String::new() };
        assert!(score(f64::MAX).check("p", &grant).is_err());
        assert!(score(-1e13).check("p", &grant).is_err());
        score(-1e12).check("p", &grant).unwrap();
        let award = |expires_at_ms| Decision::AwardPoints {
            customer_id: 1,
            points: 10,
            source_key: "k".into(),
            reason: String::new(),
            expires_at_ms,
        };
        assert!(award(Some(i64::MIN)).check("p", &grant).is_err());
        assert!(award(Some(i64::MAX)).check("p", &grant).is_err());
        award(Some(1_800_000_000_000)).check("p", &grant).unwrap();
    }

    #[test]
    fn a_calls_decisions_are_bounded_together() {
        let tags: Vec<_> =
            (0..=MAX_TAGS_PER_CUSTOMER).map(|i| Decision::AddTag { customer_id: 1, tag: format!("t{i}"), reason: String::new() }).collect();
        assert!(check_call(&tags, 1).unwrap_err().contains("tags for customer 1"));
        check_call(&tags[..MAX_TAGS_PER_CUSTOMER], 1).unwrap();
        let award = |customer_id, points| Decision::AwardPoints {
            customer_id,
            points,
            source_key: "k".into(),
            reason: String::new(),
            expires_at_ms: None,
        };
        check_call(&[award(1, 600_000_000), award(2, 600_000_000)], 1).unwrap();
        assert!(check_call(&[award(1, 600_000_000), award(1, 600_000_000)], 1).unwrap_err().contains("points"));
        let emit = Decision::EmitEvent { customer_id: None, event_type: "plugin.x".into(), payload: "{}".into() };
        check_call(&vec![emit.clone(); 8], 2).unwrap();
        assert!(check_call(&vec![emit; 9], 2).is_err());
    }

    #[test]
    fn manifest_fields_are_bounded() {
        let long = "x".repeat(MAX_DESCRIPTION_BYTES + 1);
        let err = Manifest::parse(&MANIFEST.replace("description = \"Posts messages\"", &format!("description = \"{long}\""))).unwrap_err();
        assert_eq!(err.field, "description");
        let err = Manifest::parse(&MANIFEST.replace("vendor = \"Kith\"", "vendor = \"Ki\\u202Eth\"")).unwrap_err();
        assert_eq!(err.field, "vendor");
        let err = Manifest::parse(&format!("tag-prefix = \"a b\"\n{MANIFEST}")).unwrap_err();
        assert_eq!(err.field, "tag-prefix");
        assert_eq!(Manifest::parse(&format!("tag-prefix = \"hooks:\"\n{MANIFEST}")).unwrap().tag_prefix.as_deref(), Some("hooks:"));
        assert!(prefixes_overlap("lifecycle:", "lifecycle:vip") && !prefixes_overlap("lifecycle:", "prefers:"));
    }
}
