from componentize_py_types import Err

from . import types

STORE: dict[str, bytes] = {}
MAX_VALUE = 64 * 1024


def get(key: str) -> bytes | None:
    return STORE.get(key)


def set(key: str, value: bytes) -> None:
    if not isinstance(value, bytes):
        raise TypeError("kv values are bytes")
    if len(value) > MAX_VALUE:
        raise Err(types.Error_QuotaExceeded(f"value of `{key}` over {MAX_VALUE} bytes"))
    STORE[key] = value


def delete(key: str) -> None:
    STORE.pop(key, None)
