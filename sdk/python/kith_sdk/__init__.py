"""Write Kith plugins in Python, built into WebAssembly components with componentize-py.

A plugin is a module ``app`` defining ``class WitWorld(wit_world.WitWorld)``
with its kind's exports as methods, each decorated with ``kith_sdk.export``::

    import wit_world
    import kith_sdk
    from kith_sdk import log

    class WitWorld(wit_world.WitWorld):
        @kith_sdk.export
        def evaluate(self, context, batch):
            min_spent = kith_sdk.config({"min_spent": 100_000})["min_spent"]
            log.info(f"evaluated {len(batch)} customers")
            return [kith_sdk.add_tag(s.customer.id, "vip", "spent enough")
                    for s in batch if s.customer.stats.total_spent >= min_spent]

The SDK targets ``kith:plugin@0.2.0`` (``api-version = "0.2.0"`` in
``plugin.toml``). The WIT types are the generated ones (``kith_sdk.types``:
``types.Customer``, ``types.Subject``, ...). Host functions work only inside
the component; the pure parts (decision constructors, errors, config and JSON
parsing) run anywhere with Python 3.11 or later and the standard library.
"""

from . import _bindings, kinds, kv, log
from .decisions import (
    MAX_POINTS,
    RECEIPT_STATUSES,
    accepted,
    add_tag,
    award_points,
    change_tier,
    claw_back_points,
    emit_event,
    json_body,
    receipt,
    rejected,
    remove_tag,
    retry_after,
    set_score,
    to_json,
)
from .errors import (
    AccessDenied,
    Failed,
    Invalid,
    KithError,
    NotFound,
    QuotaExceeded,
    access_denied,
    failed,
    invalid,
    not_found,
    quota_exceeded,
)
from .host import MAX_PAGE, all_buyers, buyers, config, config_text, histories, now, parse_config, read_customer, shop_context
from .kinds import export

__version__ = "0.2.0"
API_VERSION = "0.2.0"
"""The `kith:plugin` WIT version this SDK builds against: a plugin's ``api-version``."""

__all__ = [
    "API_VERSION", "MAX_PAGE", "MAX_POINTS", "RECEIPT_STATUSES",
    "AccessDenied", "Failed", "Invalid", "KithError", "NotFound", "QuotaExceeded",
    "access_denied", "failed", "invalid", "not_found", "quota_exceeded",
    "accepted", "add_tag", "award_points", "change_tier", "claw_back_points", "emit_event", "receipt", "rejected",
    "remove_tag", "retry_after", "set_score",
    "all_buyers", "buyers", "config", "config_text", "histories", "json_body", "now", "parse_config", "read_customer",
    "shop_context", "to_json",
    "export", "kv", "log", "types",
]


def __getattr__(name: str):
    # `kith_sdk.types`: the generated module of `kith:plugin/types`, whatever the world calls it.
    if name == "types":
        return _bindings.types()
    raise AttributeError(f"module 'kith_sdk' has no attribute {name!r}")


# At build time, import the bindings every kind's world has (a component cannot
# import a module once built), and let traceback formatting import what it needs.
try:
    _bindings.types()
except ImportError:
    pass
_bindings.preload(_bindings.HOST)
kinds._warm_up()
