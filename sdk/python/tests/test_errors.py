import contextlib
import io
import unittest

from componentize_py_types import Err

from support import customer, customers, kith_sdk, log, reset, types


class Errors(unittest.TestCase):
    def setUp(self):
        reset()

    def test_helpers_make_the_wit_error_cases(self):
        cases = [(kith_sdk.access_denied, types.Error_AccessDenied), (kith_sdk.not_found, types.Error_NotFound),
                 (kith_sdk.quota_exceeded, types.Error_QuotaExceeded), (kith_sdk.invalid, types.Error_Invalid),
                 (kith_sdk.failed, types.Error_Failed)]
        for helper, case in cases:
            error = helper("why")
            self.assertIsInstance(error, kith_sdk.KithError)
            self.assertEqual(error.to_wit(), case("why"))
        self.assertEqual(kith_sdk.KithError("plain").to_wit(), types.Error_Failed("plain"))

    def test_host_errors_arrive_as_kith_errors(self):
        customers.CUSTOMERS[1] = customer(1, 500)
        self.assertEqual(kith_sdk.read_customer(1).stats.total_spent, 500)
        with self.assertRaises(kith_sdk.NotFound) as raised:
            kith_sdk.read_customer(2)
        self.assertEqual(raised.exception.message, "customer 2")

    def test_export_turns_exceptions_into_the_wit_error(self):
        class World:
            @kith_sdk.export
            def evaluate(self, context, batch):
                if batch == "invalid":
                    raise kith_sdk.invalid("bad batch")
                if batch == "host":
                    return kith_sdk.read_customer(404)
                if batch == "bug":
                    return {}["missing"]
                if batch == "raw":
                    raise Err(types.Error_QuotaExceeded("raw"))
                return [kith_sdk.add_tag(1, "t", "r")]

        world = World()
        self.assertEqual(world.evaluate(None, "ok"), [kith_sdk.add_tag(1, "t", "r")])
        self.assertEqual(world.evaluate.__name__, "evaluate")
        for batch, expected in (("invalid", types.Error_Invalid("bad batch")),
                                ("host", types.Error_NotFound("customer 404")),
                                ("raw", types.Error_QuotaExceeded("raw"))):
            with self.assertRaises(Err) as raised:
                world.evaluate(None, batch)
            self.assertEqual(raised.exception.value, expected)
        stderr = io.StringIO()
        with self.assertRaises(Err) as raised, contextlib.redirect_stderr(stderr):
            world.evaluate(None, "bug")
        self.assertEqual(raised.exception.value, types.Error_Failed("KeyError: 'missing'"))
        self.assertIn("KeyError", stderr.getvalue())  # the traceback, for the plugin's log

    def test_logging_never_fails(self):
        kith_sdk.log.info("one")
        kith_sdk.log.write("error", 2)
        self.assertEqual(log.LINES, [(log.Level.INFO, "one"), (log.Level.ERROR, "2")])
        log.GRANTED = False
        kith_sdk.log.warn("dropped")
        self.assertEqual(len(log.LINES), 2)
        with self.assertRaises(ValueError):
            kith_sdk.log.write("loud", "x")


if __name__ == "__main__":
    unittest.main()
