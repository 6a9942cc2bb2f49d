from componentize_py_types import Err

from . import types

BUYERS: list[int] = []
CALLS: list[tuple[int | None, int]] = []


def buyers(after: int | None, limit: int) -> list[types.BuyerSummary]:
    CALLS.append((after, limit))
    if not 1 <= limit <= 1000:
        raise Err(types.Error_Invalid(f"limit {limit}"))
    ids = [i for i in sorted(BUYERS) if after is None or i > after][:limit]
    return [types.BuyerSummary(i, 0, 0, 1, 1, 100, 0, 0, 10) for i in ids]
