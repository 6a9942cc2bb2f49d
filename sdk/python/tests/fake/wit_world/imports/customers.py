from componentize_py_types import Err

from . import types

CUSTOMERS: dict[int, "types.Customer"] = {}


def read(id: int) -> types.Customer:
    if id not in CUSTOMERS:
        raise Err(types.Error_NotFound(f"customer {id}"))
    return CUSTOMERS[id]


def histories(ids: list[int], since: int) -> list[types.History]:
    return [types.History(i, [], [], False) for i in ids if i in CUSTOMERS]
