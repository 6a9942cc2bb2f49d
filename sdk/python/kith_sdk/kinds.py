"""Turning a plugin's methods into the component's exports."""

import functools
import sys
import traceback

from . import _bindings
from .errors import KithError


def export(method):
    """Decorate each method of ``WitWorld`` that the kind exports.

    A ``KithError`` it raises (``raise kith_sdk.invalid("...")``) fails the call
    with that WIT `error`; any other exception fails it with `failed`, its
    traceback written to stderr (the plugin's log, at `warn`). Without this,
    an exception other than ``componentize_py_types.Err`` traps the instance::

        class WitWorld(wit_world.WitWorld):
            @kith_sdk.export
            def evaluate(self, context, batch):
                ...
    """

    @functools.wraps(method)
    def exported(self, *args):
        Err = _bindings.err()
        try:
            return method(self, *args)
        except Err:
            raise
        except KithError as e:
            raise Err(e.to_wit()) from None
        except Exception as e:
            _print_traceback()
            message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise Err(_bindings.types().Error_Failed(message)) from None

    return exported


def _print_traceback() -> None:
    try:
        traceback.print_exc(file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reporting must not replace the error being reported
        pass


def _warm_up() -> None:
    """Format one traceback now, at build time: formatting imports modules lazily, which a call cannot."""
    try:
        raise ValueError("warm-up")
    except ValueError:
        try:
            traceback.format_exc()
        except BaseException:  # noqa: BLE001
            pass
