from componentize_py_types import Err

from . import types

TEXT = "{}"
GRANTED = True


def get() -> str:
    if not GRANTED:
        raise Err(types.Error_AccessDenied("capability `config` is not granted"))
    return TEXT
