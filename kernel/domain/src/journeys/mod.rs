//! Journeys: automated marketing as a versioned JSON graph.
//!
//! A definition names a **trigger** (an event with filters, entry into a
//! segment, or a date field with an offset), **entry rules**, a **holdout**
//! share, an optional **goal** and **budget**, and **steps** by id starting at
//! `start`. A step is a wait, a branch, an A/B split, an action (send a
//! message, issue a coupon, add or remove a tag, award points) or an exit;
//! `next` (or `yes` / `no`, or each variant's `next`) names the step after it,
//! and a step without one ends the run. The graph must be acyclic, so every
//! step runs at most once per run and `(run, step)` identifies an action.
//!
//! [`parse`] validates a definition and names the faulty node
//! (`definition.steps.remind.branch.event`): the language is `language.rs`.
//! `engine.rs` is the arithmetic of the engine that needs no I/O: when a wait
//! ends, which arm of a split or the holdout a customer falls in, how message
//! variables are filled, and the significance of a difference in conversion
//! rates. `views.rs` holds journeys, runs and statistics as the API shows them.

mod engine;
mod language;
mod views;

pub use engine::*;
pub use language::*;
pub use views::*;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use chrono::{Duration, TimeZone, Utc};
    use chrono_tz::Tz;

    use serde_json::Value;

    fn first_order() -> Value {
        json!({
            "trigger": {"event": "order.paid", "where": [{"field": "first_order", "op": "eq", "value": true}]},
            "goal": {"event": "order.paid", "within_days": 30},
            "start": "card",
            "steps": {
                "card": {"send": {"channel": "sms", "template": "CARD", "variables": {"name": "{{customer.name}}"}}, "next": "wait15"},
                "wait15": {"wait": {"days": 15}, "next": "coupon"},
                "coupon": {"coupon": {"template_id": 1, "by_trigger_amount": [{"at_least": 20000, "template_id": 2}]}, "next": "tell"},
                "tell": {"send": {"channel": "sms", "template": "COUPON", "variables": {"code": "{{coupon.code}}"}}, "next": "before"},
                "before": {"wait": {"before_coupon_expires_days": 3}, "next": "bought"},
                "bought": {"branch": {"event": "order.paid"}, "no": "remind"},
                "remind": {"send": {"channel": "sms", "template": "REMIND"}}
            }
        })
    }

    #[test]
    fn the_seed_journey_parses() {
        let d = parse(&first_order()).unwrap();
        assert_eq!(d.steps.len(), 7);
        assert!(matches!(d.trigger, TriggerKind::Event { ref event, .. } if event == "order.paid"));
        assert_eq!(d.coupon_templates(), vec![("coupon".to_string(), 1), ("coupon".to_string(), 2)]);
        let StepKind::Coupon(c) = &d.steps["coupon"].kind else { panic!() };
        assert_eq!((c.template_for(Some(9_000)), c.template_for(Some(20_000)), c.template_for(None)), (1, 2, 1));
    }

    #[test]
    fn errors_point_at_the_faulty_node() {
        let with = |pointer: &str, value: Value| {
            let mut d = first_order();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match d.pointer_mut(parent).unwrap() {
                Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
                parent => _ = parent.as_object_mut().unwrap().insert(key.to_owned(), value),
            }
            d
        };
        let cases = [
            (with("/start", json!("nowhere")), "definition.start", "names no step"),
            (with("/steps/card/next", json!("ghost")), "definition.steps.card.next", "names no step"),
            (with("/steps/remind/next", json!("card")), "definition.steps.remind.next", "may not loop"),
            (with("/steps/bought/branch", json!({"event": "paid"})), "definition.steps.bought.branch.event", "event type"),
            (
                with("/steps/bought/branch", json!({"customer": {"stat": "spend", "op": "gt", "value": 1}})),
                "definition.steps.bought.branch.customer.stat",
                "unknown stat",
            ),
            (with("/steps/wait15/wait", json!({"days": 1, "until": "25:00"})), "definition.steps.wait15.wait.until", "HH:MM"),
            (with("/steps/wait15/wait", json!({})), "definition.steps.wait15.wait", "give a duration"),
            (with("/steps/wait15/wait", json!({"weeks": 2})), "definition.steps.wait15.wait.weeks", "unknown field"),
            (with("/steps/card/send/variables/name", json!("{{order.id}}")), "definition.steps.card.send.variables.name", "placeholder"),
            (with("/steps/card/coupon", json!({"template_id": 1})), "definition.steps.card", "at once"),
            (with("/trigger/segment", json!(3)), "definition.trigger", "exactly one"),
            (with("/holdout_percent", json!(95)), "definition.holdout_percent", "0 to 90"),
            (with("/goal/within_days", json!(0)), "definition.goal.within_days", "from 1"),
            (with("/steps/lost", json!({"exit": true})), "definition.steps.lost", "not reachable"),
            (with("/trigger/where/0/op", json!("like")), "definition.trigger.where[0].op", "unknown variant"),
        ];
        for (definition, field, reason) in cases {
            let e = parse(&definition).expect_err(field);
            assert_eq!(e.field, field, "{e}");
            assert!(e.reason.contains(reason), "{field}: {e}");
        }
    }

    #[test]
    fn splits_and_holdouts_are_stable_and_weighted() {
        let variants =
            vec![Variant { variant: "A".into(), weight: 30, next: None }, Variant { variant: "B".into(), weight: 70, next: None }];
        let a = (0..20_000).filter(|c| choose_variant(7, "split", *c, &variants).variant == "A").count();
        assert!((5_700..6_300).contains(&a), "30% of 20,000 ± 5σ: {a}");
        assert_eq!(choose_variant(7, "split", 42, &variants), choose_variant(7, "split", 42, &variants));
        let held = (0..20_000).filter(|c| in_holdout(7, *c, 10)).count();
        assert!((1_800..2_200).contains(&held), "{held}");
        assert_eq!((0..1000).filter(|c| in_holdout(7, *c, 0)).count(), 0);
    }

    #[test]
    fn waits_end_at_the_right_moment() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let from = Utc.with_ymd_and_hms(2026, 6, 1, 4, 0, 0).unwrap(); // 12:00 in Shanghai
        let w = |v: Value| serde_json::from_value::<Wait>(v).unwrap();
        assert_eq!(w(json!({"days": 2})).ends(zone, from, None), Some(from + Duration::days(2)));
        // 10:00 has passed today: tomorrow at 10:00 Shanghai = 02:00 UTC.
        assert_eq!(w(json!({"until": "10:00"})).ends(zone, from, None), Some(Utc.with_ymd_and_hms(2026, 6, 2, 2, 0, 0).unwrap()));
        assert_eq!(
            w(json!({"hours": 1, "until": "20:00"})).ends(zone, from, None),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap())
        );
        let expiry = from + Duration::days(10);
        assert_eq!(w(json!({"before_coupon_expires_days": 3})).ends(zone, from, Some(expiry)), Some(from + Duration::days(7)));
        assert_eq!(w(json!({"before_coupon_expires_days": 3})).ends(zone, from, None), None);
    }

    #[test]
    fn payload_tests_and_placeholders() {
        let order =
            json!({"amount": 12000, "first_order": true, "items": [{"sku": "A", "category": "serum"}, {"sku": "B", "category": "cream"}]});
        let t = |v: Value| serde_json::from_value::<FieldTest>(v).unwrap().holds(&order);
        assert!(t(json!({"field": "items.category", "op": "eq", "value": "cream"})));
        assert!(!t(json!({"field": "items.category", "op": "eq", "value": "toner"})));
        assert!(t(json!({"field": "amount", "op": "gte", "value": 12000})));
        assert!(t(json!({"field": "items.sku", "op": "in", "value": ["Z", "B"]})));
        assert!(t(json!({"field": "coupon", "op": "exists", "value": false})));
        assert!(t(json!({"field": "first_order", "op": "eq", "value": true})));
        let ctx = json!({"customer": {"name": "Ann"}, "coupon": {"code": "X1", "face_value": 500}});
        assert_eq!(
            render("Hi {{ customer.name }}, use {{coupon.code}} ({{coupon.face_value}}){{trigger.x}}", &ctx),
            "Hi Ann, use X1 (500)"
        );
    }

    #[test]
    fn two_proportions() {
        // 120/1000 against 100/1000: z ≈ 1.43, p ≈ 0.153.
        let p = two_proportion_p_value(120, 1000, 100, 1000).unwrap();
        assert!((p - 0.153).abs() < 0.002, "{p}");
        assert!(two_proportion_p_value(500, 1000, 400, 1000).unwrap() < 1e-5);
        assert_eq!(two_proportion_p_value(0, 10, 0, 10), None);
        assert_eq!(two_proportion_p_value(1, 0, 0, 10), None);
    }

    #[test]
    fn lifecycle_transitions() {
        use JourneyStatus::*;
        assert!(Draft.transition(Active).is_ok());
        assert!(Paused.transition(Active).is_ok());
        assert!(Archived.transition(Active).unwrap_err().contains("archived"));
        assert!(Draft.transition(Paused).is_err());
        assert!(Active.transition(Active).unwrap_err().contains("already"));
    }

    #[test]
    fn personal_references_and_size_limits() {
        let def = |variables: Value, filters: Value| {
            json!({"trigger": {"event": "identity.attached", "where": filters}, "start": "s",
                   "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": variables}}}})
        };
        let d =
            parse(&def(json!({"p": "{{trigger.value}}", "n": "Hi {{customer.name}}", "c": "{{coupon.code}} {{customer.id}}"}), json!([])))
                .unwrap();
        assert_eq!(d.personal_references(), vec!["definition.steps.s.send.variables.n", "definition.steps.s.send.variables.p"]);
        let d = parse(&def(json!({}), json!([{"field": "value", "op": "eq", "value": "+8613812345678"}]))).unwrap();
        assert_eq!(d.personal_references(), vec!["definition.trigger.where[0].field"]);
        let d = parse(&def(
            json!({}),
            json!([{"field": "order.receiver_name", "op": "eq", "value": "x"}, {"field": "收货人", "op": "eq", "value": "x"}]),
        ))
        .unwrap();
        assert_eq!(d.personal_references(), vec!["definition.trigger.where[0].field", "definition.trigger.where[1].field"]);
        let d = parse(&def(json!({"a": "{{trigger.amount}}"}), json!([{"field": "amount", "op": "gt", "value": 1}]))).unwrap();
        assert!(d.personal_references().is_empty());
        let many: Vec<Value> = (0..51).map(|_| json!({"field": "amount", "op": "gt", "value": 1})).collect();
        assert_eq!(parse(&def(json!({}), Value::Array(many))).unwrap_err().field, "definition.trigger.where");
        let big = json!([{"field": "sku", "op": "in", "value": vec!["x"; 1001]}]);
        assert_eq!(parse(&def(json!({}), big)).unwrap_err().field, "definition.trigger.where[0].value");
        assert_eq!(parse(&def(json!({"v": "x".repeat(1001)}), json!([]))).unwrap_err().field, "definition.steps.s.send.variables.v");
    }

    /// A journey's customer conditions follow the segment language's rule, and a payload test
    /// may not step through the digits of free text.
    #[test]
    fn personal_references_in_customer_conditions_and_free_text() {
        let d = parse(&json!({
            "trigger": {"event": "order.paid", "where": [
                {"field": "note", "op": "contains", "value": "13812"},
                {"field": "note", "op": "contains", "value": "gift"},
                {"field": "amount", "op": "gte", "value": 10000}
            ], "customer": {"profile": "name", "op": "eq", "value": "Li Ming"}},
            "start": "b",
            "steps": {"b": {"branch": {"customer": {"or": [{"tag": "vip"}, {"attribute": "receiver_mobile", "op": "exists", "value": true},
                                                          {"attribute": "remark", "op": "in", "value": ["13812345678"]}]}}, "yes": "x"},
                      "x": {"exit": true}}
        }))
        .unwrap();
        assert_eq!(
            d.personal_references(),
            vec![
                "definition.trigger.where[0].value",
                "definition.trigger.where[1].value",
                "definition.trigger.customer.profile",
                "definition.steps.b.branch.customer.or[2].value"
            ]
        );
    }
}
