"""The key-value space of this shop and plugin (capability `kv`).

Writes take effect with the call's decisions: if the call fails, its writes
are discarded. Keys are at most 256 bytes, values 64 KiB
(``kith_sdk.QuotaExceeded`` past the kernel's limits).
"""

import json

from . import _bindings
from .decisions import to_json
from .errors import Invalid, call


def get(key: str) -> bytes | None:
    """The bytes stored under `key`, or ``None``."""
    return call(_bindings.host("kv").get, key)


def set(key: str, value: bytes | str) -> None:
    """Store bytes (a str is stored as UTF-8)."""
    if isinstance(value, str):
        value = value.encode()
    call(_bindings.host("kv").set, key, bytes(value))


def delete(key: str) -> None:
    """Remove a key; removing a missing key succeeds."""
    call(_bindings.host("kv").delete, key)


def get_json(key: str, default=None):
    """The JSON value stored under `key`, or `default` when there is none; ``Invalid`` if it is not JSON."""
    raw = get(key)
    if raw is None:
        return default
    return decode_json(key, raw)


def set_json(key: str, value) -> None:
    """Store a value as compact JSON text; ``Invalid`` if it cannot be written as JSON."""
    set(key, encode_json(key, value))


def decode_json(key: str, raw: bytes):
    """``get_json``'s decoding of the bytes stored under `key`."""
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Invalid(f"value of `{key}`: {e}") from None


def encode_json(key: str, value) -> bytes:
    """``set_json``'s encoding of a value."""
    try:
        return to_json(value).encode()
    except (TypeError, ValueError) as e:
        raise Invalid(f"value of `{key}`: {e}") from None
