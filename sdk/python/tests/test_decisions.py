import math
import unittest

from support import kith_sdk, types


class Decisions(unittest.TestCase):
    def test_constructors_make_the_generated_types(self):
        self.assertEqual(kith_sdk.add_tag(1, "vip", "spent"), types.Decision_AddTag(types.TagChange(1, "vip", "spent")))
        self.assertEqual(kith_sdk.remove_tag(2, "vip", "below"), types.Decision_RemoveTag(types.TagChange(2, "vip", "below")))
        self.assertEqual(kith_sdk.set_score(3, "m", 2, "high", "2x"),
                         types.Decision_SetScore(types.ScoreChange(3, "m", 2.0, "high", "2x")))
        self.assertIsInstance(kith_sdk.set_score(3, "m", 2).value.value, float)
        self.assertEqual(kith_sdk.award_points(4, 10, "order:T1", "paid"),
                         types.Decision_AwardPoints(types.PointsChange(4, 10, "order:T1", "paid", None)))
        self.assertEqual(kith_sdk.award_points(4, 10, "k", "r", expires_at=1_800_000_000_000).value.expires_at, 1_800_000_000_000)
        self.assertEqual(kith_sdk.claw_back_points(5, 3, "refund:T1", "refunded"),
                         types.Decision_ClawBackPoints(types.PointsChange(5, 3, "refund:T1", "refunded", None)))
        self.assertEqual(kith_sdk.change_tier(6, "gold", "spent"), types.Decision_ChangeTier(types.TierChange(6, "gold", "spent")))

    def test_emit_event_writes_compact_json(self):
        decision = kith_sdk.emit_event(7, "plugin.hello", {"n": 1, "名": "李"})
        self.assertEqual(decision, types.Decision_EmitEvent(types.EmittedEvent(7, "plugin.hello", '{"n":1,"名":"李"}')))
        self.assertEqual(kith_sdk.emit_event(None, "plugin.x", '{"a": [1]}').value.payload, '{"a": [1]}')

    def test_arguments_are_checked_where_the_decision_is_made(self):
        for bad in (lambda: kith_sdk.add_tag("1", "vip", "r"),
                    lambda: kith_sdk.add_tag(True, "vip", "r"),
                    lambda: kith_sdk.add_tag(1, None, "r"),
                    lambda: kith_sdk.set_score(1, "m", "2.0"),
                    lambda: kith_sdk.set_score(1, "m", 1.0, label=3),
                    lambda: kith_sdk.award_points(1, 1.5, "k", "r"),
                    lambda: kith_sdk.emit_event(1, "plugin.x", [1])):
            with self.assertRaises(TypeError):
                bad()
        for bad in (lambda: kith_sdk.add_tag(1, "  ", "r"),
                    lambda: kith_sdk.set_score(1, "m", math.nan),
                    lambda: kith_sdk.set_score(1, "m", math.inf),
                    lambda: kith_sdk.award_points(1, 0, "k", "r"),
                    lambda: kith_sdk.award_points(1, kith_sdk.MAX_POINTS + 1, "k", "r"),
                    lambda: kith_sdk.claw_back_points(1, 5, "", "r"),
                    lambda: kith_sdk.change_tier(1, "", "r"),
                    lambda: kith_sdk.emit_event(1, "order.paid", {}),
                    lambda: kith_sdk.emit_event(1, "plugin.", {}),
                    lambda: kith_sdk.emit_event(1, "plugin.x", "[1]"),
                    lambda: kith_sdk.emit_event(1, "plugin.x", "{not json"),
                    lambda: kith_sdk.retry_after(-1),
                    lambda: kith_sdk.receipt("lost")):
            with self.assertRaises(ValueError):
                bad()

    def test_deliveries_and_receipts(self):
        self.assertEqual(kith_sdk.accepted("p-1"), types.Delivery_Accepted("p-1"))
        self.assertEqual(kith_sdk.accepted(), types.Delivery_Accepted(None))
        self.assertEqual(kith_sdk.rejected("no"), types.Delivery_Rejected("no"))
        self.assertEqual(kith_sdk.retry_after(30), types.Delivery_RetryAfter(30))
        self.assertEqual(kith_sdk.receipt("delivered", message_id="m1"),
                         types.Receipt("m1", None, types.ReceiptStatus.DELIVERED, None, None))
        self.assertEqual(kith_sdk.receipt(types.ReceiptStatus.PENDING, detail="queued").status, types.ReceiptStatus.PENDING)

    def test_json_body(self):
        request = types.InboundRequest("POST", "/r", [], b'[{"message_id": "m1"}]')
        self.assertEqual(kith_sdk.json_body(request), [{"message_id": "m1"}])
        for body in (b"not json", b"\xff\xfe"):
            with self.assertRaises(kith_sdk.Invalid):
                kith_sdk.json_body(types.InboundRequest("POST", "/r", [], body))


if __name__ == "__main__":
    unittest.main()
