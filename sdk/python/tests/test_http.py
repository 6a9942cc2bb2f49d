import subprocess
import sys
import unittest

from support import SDK, kith_sdk
from kith_sdk import http


class Http(unittest.TestCase):
    def test_split_url(self):
        self.assertEqual(http.split_url("https://hooks.example.com/kith?x=1"), ("https", "hooks.example.com", "/kith?x=1"))
        self.assertEqual(http.split_url("http://127.0.0.1:8080"), ("http", "127.0.0.1:8080", "/"))
        for bad in ("hooks.example.com/kith", "ftp://example.com/", "https:///path"):
            with self.assertRaises(kith_sdk.Invalid):
                http.split_url(bad)

    def test_headers(self):
        self.assertEqual(http.header_list({"Content-Type": "application/json", "X-N": 3}),
                         [("content-type", b"application/json"), ("x-n", b"3")])
        self.assertEqual(http.header_list([("A", b"\x01"), ("a", "2")]), [("a", b"\x01"), ("a", b"2")])
        self.assertEqual(http.header_list(None), [])

    def test_response(self):
        response = http.Response(200, [("content-type", "application/json"), ("Retry-After", "5")], b'{"id": "p-1"}')
        self.assertTrue(response.ok)
        self.assertEqual(response.header("retry-after"), "5")
        self.assertIsNone(response.header("x-missing"))
        self.assertEqual(response.json(), {"id": "p-1"})
        self.assertEqual(response.text(), '{"id": "p-1"}')
        self.assertFalse(http.Response(503).ok)
        with self.assertRaises(kith_sdk.Invalid):
            http.Response(200, [], b"<html>").json()

    def test_a_world_without_wasi_http_fails_the_call(self):
        # The stand-in bindings are a tag rule's: no wasi:http.
        with self.assertRaises(kith_sdk.Failed):
            http.request("POST", "https://hooks.example.com/", {}, "{}")

    def test_the_pure_parts_need_no_bindings(self):
        script = (
            "import kith_sdk\n"
            "from kith_sdk import http\n"
            "assert kith_sdk.parse_config('{\"a\": 2}', {'a': 1, 'b': 1}) == {'a': 2, 'b': 1}\n"
            "assert kith_sdk.invalid('x').kind == 'invalid'\n"
            "assert http.split_url('http://h/p') == ('http', 'h', '/p')\n"
            "try:\n"
            "    kith_sdk.add_tag(1, 'vip', 'r')\n"
            "except ImportError as e:\n"
            "    print('no bindings:', e)\n"
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=SDK, capture_output=True, text=True,
                              env={"PYTHONPATH": str(SDK), "PYTHONDONTWRITEBYTECODE": "1"})
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("no bindings: no generated bindings for `types`", done.stdout)


if __name__ == "__main__":
    unittest.main()
