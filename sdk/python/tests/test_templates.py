"""The Python templates' logic (sdk/templates/python), run against the stand-in bindings."""

import importlib.util
import unittest

from support import SDK, config, customer, kith_sdk, log, reset, types
from kith_sdk import http

TEMPLATES = SDK.parent / "templates" / "python"
ID = "{{id}}"  # the templates are tested before `kith plugin new` replaces it


def load(kind: str):
    spec = importlib.util.spec_from_file_location(f"template_{kind.replace('-', '_')}", TEMPLATES / kind / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(average: float = 0.0) -> "types.ShopContext":
    d = types.Distribution(0.0, [])
    return types.ShopContext(1, 0, None, "Asia/Shanghai", "CNY", 0, 0, d, d, types.Distribution(average, []), 0.0)


def subject(c, event_type=None, order_id="T1", amount=0):
    event = None if event_type is None else types.Event(1, event_type, c.id, "{}", 0)
    order = None if event_type is None else types.Order(order_id, c.id, amount, 0, "paid", None, 0, [])
    return types.Subject(c, event, order)


class Templates(unittest.TestCase):
    def setUp(self):
        reset()

    def test_tag_rule(self):
        app = load("tag-rule")
        config.TEXT = '{"min_spent": 100000}'
        batch = [subject(customer(1, 120000)), subject(customer(2, 50000, (ID,))), subject(customer(3, 150000, (ID,))),
                 subject(customer(4, 10))]
        self.assertEqual(app.WitWorld().evaluate(context(), batch), [
            kith_sdk.add_tag(1, ID, "spent 120000 (at least 100000)"),
            kith_sdk.remove_tag(2, ID, "spent 50000 (less than 100000)"),
        ])
        self.assertIn((log.Level.INFO, "evaluated 4 customers"), log.LINES)
        config.TEXT = "{}"  # the default min_spent
        self.assertEqual(len(app.WitWorld().evaluate(context(), [subject(customer(1, 100000))])), 1)

    def test_scoring_model(self):
        app = load("scoring-model")
        decisions = app.WitWorld().score(context(50000.0), [customer(1, 120000), customer(2, 25000)])
        self.assertEqual(decisions, [
            kith_sdk.set_score(1, ID, 2.4, "high", "2.40x the shop's average spend"),
            kith_sdk.set_score(2, ID, 0.5, "low", "0.50x the shop's average spend"),
        ])
        self.assertEqual(app.WitWorld().score(context(0.0), [customer(3, 10)]),
                         [kith_sdk.set_score(3, ID, 0.0, "low", "0.00x the shop's average spend")])

    def test_loyalty_scheme(self):
        app = load("loyalty-scheme")
        config.TEXT = '{"unit": 100}'
        batch = [subject(customer(1), "order.paid", "T1001", 12345), subject(customer(2), "order.refunded", "T1002", 5000),
                 subject(customer(3), "order.paid", "T1003", 99), subject(customer(4))]
        self.assertEqual(app.WitWorld().on_events(context(), batch),
                         [kith_sdk.award_points(1, 123, "order:T1001", "order T1001 paid", None)])
        self.assertEqual(app.WitWorld().review(context(), [customer(1)]), [])

    def test_channel_connector_deliver(self):
        app = load("channel-connector")
        sent = []

        def answer(status, headers=(), body=b""):
            def request(method, url, headers_, body_):
                sent.append((method, url, headers_, body_))
                return http.Response(status, list(headers), body)
            app.http.request = request

        message = types.Message("m1", 1, "webhook", "+8613800000000", "welcome", [("name", "Li")])
        world = app.WitWorld()
        config.TEXT = '{"url": "https://hooks.example.com/send"}'
        try:
            answer(200, body=b'{"id": "p-1"}')
            self.assertEqual(world.deliver(context(), message), kith_sdk.accepted("p-1"))
            method, url, headers, body = sent[0]
            self.assertEqual((method, url, headers), ("POST", "https://hooks.example.com/send", {"content-type": "application/json"}))
            self.assertEqual(body, '{"id":"m1","to":"+8613800000000","template":"welcome","variables":{"name":"Li"}}')
            answer(202, body=b"queued")
            self.assertEqual(world.deliver(context(), message), kith_sdk.accepted("m1"))
            answer(200, body=b'{"id": 7}')
            self.assertEqual(world.deliver(context(), message), kith_sdk.accepted("m1"))
            answer(429, [("retry-after", "120")])
            self.assertEqual(world.deliver(context(), message), kith_sdk.retry_after(120))
            answer(503, [("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")])
            self.assertEqual(world.deliver(context(), message), kith_sdk.retry_after(30))
            answer(400)
            self.assertEqual(world.deliver(context(), message), kith_sdk.rejected("provider answered 400"))
        finally:
            app.http.request = http.request

    def test_channel_connector_parse_receipt(self):
        world = load("channel-connector").WitWorld()

        def parse(body: bytes):
            return world.parse_receipt(context(), types.InboundRequest("POST", "/receipts", [], body))

        self.assertEqual(parse(b'{"message_id": "m1", "status": "delivered"}'),
                         [kith_sdk.receipt("delivered", message_id="m1")])
        self.assertEqual(parse(b'[{"message_id": "m1", "status": "failed", "detail": "no such number"},'
                               b' {"message_id": "m2", "status": "pending"}]'),
                         [kith_sdk.receipt("failed", message_id="m1", detail="no such number"),
                          kith_sdk.receipt("pending", message_id="m2")])
        self.assertEqual(parse(b"[]"), [])
        from componentize_py_types import Err
        for body in (b"delivered", b'{"message_id": "m1", "status": "lost"}', b'{"status": "delivered"}', b"[1]",
                     b'{"message_id": "m1", "status": "failed", "detail": 3}'):
            with self.assertRaises(Err) as raised:
                parse(body)
            self.assertIsInstance(raised.exception.value, types.Error_Invalid, body)


if __name__ == "__main__":
    unittest.main()
