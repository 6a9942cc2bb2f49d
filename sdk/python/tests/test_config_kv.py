import unittest

from support import config, customer, customers, kith_sdk, kv, reset, summaries


class Config(unittest.TestCase):
    def setUp(self):
        reset()

    def test_defaults_fill_what_the_shop_left_out(self):
        config.TEXT = '{"min_spent": 5}'
        self.assertEqual(kith_sdk.config({"min_spent": 100000, "tag": "vip"}), {"min_spent": 5, "tag": "vip"})
        config.TEXT = "{}"
        self.assertEqual(kith_sdk.config({"unit": 100}), {"unit": 100})
        self.assertEqual(kith_sdk.config(), {})
        self.assertEqual(kith_sdk.config_text(), "{}")

    def test_empty_and_null_are_no_configuration(self):
        for text in ("", "null", "  "):
            self.assertEqual(kith_sdk.parse_config(text, {"a": 1}), {"a": 1})

    def test_what_is_not_an_object_is_invalid(self):
        for text in ("[1]", "3", '"x"', "{oops"):
            with self.assertRaises(kith_sdk.Invalid):
                kith_sdk.parse_config(text)

    def test_without_the_capability(self):
        config.GRANTED = False
        with self.assertRaises(kith_sdk.AccessDenied):
            kith_sdk.config({"a": 1})

    def test_defaults_are_not_changed(self):
        defaults = {"a": 1}
        config.TEXT = '{"a": 2}'
        kith_sdk.config(defaults)
        self.assertEqual(defaults, {"a": 1})


class Kv(unittest.TestCase):
    def setUp(self):
        reset()

    def test_bytes_and_text(self):
        self.assertIsNone(kith_sdk.kv.get("k"))
        kith_sdk.kv.set("k", "text")
        self.assertEqual(kith_sdk.kv.get("k"), b"text")
        kith_sdk.kv.set("k", bytearray(b"\x00\x01"))
        self.assertEqual(kv.STORE["k"], b"\x00\x01")
        kith_sdk.kv.delete("k")
        kith_sdk.kv.delete("never")
        self.assertEqual(kv.STORE, {})

    def test_json_round_trip(self):
        self.assertEqual(kith_sdk.kv.get_json("status", {"state": "new"}), {"state": "new"})
        kith_sdk.kv.set_json("status", {"state": "fitted", "buyers": 512, "名": True})
        self.assertEqual(kv.STORE["status"], '{"state":"fitted","buyers":512,"名":true}'.encode())
        self.assertEqual(kith_sdk.kv.get_json("status"), {"state": "fitted", "buyers": 512, "名": True})

    def test_json_errors_are_invalid(self):
        kv.STORE["raw"] = b"\x00not json"
        with self.assertRaises(kith_sdk.Invalid):
            kith_sdk.kv.get_json("raw")
        with self.assertRaises(kith_sdk.Invalid):
            kith_sdk.kv.set_json("k", {"when": object()})
        with self.assertRaises(kith_sdk.Invalid):
            kith_sdk.kv.set_json("k", {1j})

    def test_quota(self):
        with self.assertRaises(kith_sdk.QuotaExceeded):
            kith_sdk.kv.set("big", b"x" * (kv.MAX_VALUE + 1))


class Reads(unittest.TestCase):
    def setUp(self):
        reset()

    def test_histories_and_context(self):
        customers.CUSTOMERS.update({1: customer(1), 3: customer(3)})
        self.assertEqual([h.customer_id for h in kith_sdk.histories((3, 2, 1), 0)], [3, 1])
        self.assertEqual(kith_sdk.shop_context(30).window_days, 30)
        self.assertIsNone(kith_sdk.shop_context().window_days)
        self.assertEqual(kith_sdk.now(), 1_767_225_600_000)

    def test_all_buyers_pages_until_a_short_page(self):
        summaries.BUYERS.extend(range(1, 6))
        self.assertEqual([b.customer_id for b in kith_sdk.all_buyers(2)], [1, 2, 3, 4, 5])
        self.assertEqual(summaries.CALLS, [(None, 2), (2, 2), (4, 2)])
        summaries.CALLS.clear()
        self.assertEqual(len(list(kith_sdk.all_buyers(0))), 5)  # clamped to 1
        self.assertEqual(summaries.CALLS[0], (None, 1))
        with self.assertRaises(kith_sdk.Invalid):
            kith_sdk.buyers(None, 0)


if __name__ == "__main__":
    unittest.main()
