"""Puts the SDK and the stand-in bindings (tests/fake) on the path, and resets the stand-ins' state."""

import pathlib
import sys

# Keep __pycache__ out of kith_sdk/: the kith binary embeds every file of that folder.
sys.dont_write_bytecode = True

HERE = pathlib.Path(__file__).resolve().parent
SDK = HERE.parent
FAKE = HERE / "fake"
for path in (str(SDK), str(FAKE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import kith_sdk  # noqa: E402
from wit_world.imports import config, customers, kv, log, summaries, types  # noqa: E402


def reset() -> None:
    config.TEXT, config.GRANTED = "{}", True
    log.LINES.clear()
    log.GRANTED = True
    kv.STORE.clear()
    customers.CUSTOMERS.clear()
    summaries.BUYERS.clear()
    summaries.CALLS.clear()


def customer(customer_id: int, total_spent: int = 0, tags: tuple[str, ...] = ()) -> "types.Customer":
    profile = types.Profile(None, None, None, None, None, "{}")
    stats = types.Stats(total_spent, 0, None, None, None, 0, 0)
    return types.Customer(customer_id, profile, stats, [types.Tag(t, "test") for t in tags], [], 0, None, 0)


__all__ = ["kith_sdk", "types", "config", "customers", "kv", "log", "summaries", "reset", "customer"]
