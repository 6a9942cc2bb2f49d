"""Where the generated bindings live.

componentize-py generates the package ``wit_world`` from the WIT world it
builds for, and it exists only inside that build. Every use goes through
this module, which imports the binding modules when first asked (so the pure
parts of the SDK run, and are tested, without them) and caches them.

A componentize-py component has no file system once built: it runs from
the snapshot of the interpreter taken after ``app`` was imported at build
time, so a module first imported while a call runs is not found. ``preload``
imports, at build time, the modules every kind's world has; ``kith_sdk.http``
preloads the ``wasi:http`` ones, which only a channel connector's world has.
"""

import importlib

# The kith:plugin types are `wit_world.imports.types` in a world that imports
# no other interface named `types`, and `kith_plugin_types` in the
# channel-connector world, which also imports `wasi:http/types`.
_TYPES = ("wit_world.imports.types", "wit_world.imports.kith_plugin_types")
# The host interfaces of `kith:plugin@0.2.0`'s `host` world, included by every kind.
HOST = ("log", "config", "kv", "clock", "customers", "shop", "summaries")
# What `kith_sdk.http` needs (`wasi:http/types` is `wasi_http_types` beside kith's `types`).
HTTP = ("outgoing_handler", "wasi_http_types", "streams")

_cache: dict[str, object] = {}


class Missing(ImportError):
    """The bindings this needs are not there: not inside a component, or not in this kind's world."""


def _import(name: str, candidates: tuple[str, ...]):
    module = _cache.get(name)
    if module is not None:
        return module
    for candidate in candidates:
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        _cache[name] = module
        return module
    raise Missing(f"no generated bindings for `{name}` (tried {', '.join(candidates)}): "
                  "kith_sdk's host functions work only inside a component built with componentize-py")


def types():
    """The generated module of the `kith:plugin/types` interface."""
    return _import("types", _TYPES)


def host(interface: str):
    """The generated module of a host interface (`log`, `kv`, ...) or of a wasi:http one."""
    return _import(interface, (f"wit_world.imports.{interface}",))


def err():
    """The exception class a `result` error travels in (`componentize_py_types.Err`)."""
    return _import("Err", ("componentize_py_types",)).Err


def preload(interfaces: tuple[str, ...]) -> bool:
    """Import what can be imported now (at build time); True when everything was there."""
    complete = True
    for interface in interfaces:
        try:
            host(interface)
        except ImportError:
            complete = False
    return complete


def reset() -> None:
    """Forget the cached modules (for tests that swap the bindings)."""
    _cache.clear()
