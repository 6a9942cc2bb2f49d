from enum import Enum

from componentize_py_types import Err

from . import types


class Level(Enum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


LINES: list[tuple[Level, str]] = []
GRANTED = True


def write(level: Level, message: str) -> None:
    if not GRANTED:
        raise Err(types.Error_AccessDenied("capability `log` is not granted"))
    LINES.append((level, message))
