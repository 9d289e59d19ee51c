"""What every command of official/ shares: user mistakes end the program in one line."""

import os
import sys
import traceback

# official/ and keras_si/ hold this project's own input checks.
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OWN_CODE = (os.path.join(_REPO, "official") + os.sep, os.path.join(_REPO, "keras_si") + os.sep)


def run_reporting_input_errors(fn, *args):
    """Runs `fn(*args)`; a ValueError raised by this project's own checks ends the program with its message alone.

    A ValueError raised elsewhere (TensorFlow, Keras) keeps its traceback: it is
    not a user mistake we diagnosed, and the traceback is what a bug report needs.
    Set KERAS_SI_FULL_TRACEBACKS=1 to keep every traceback.

    Raises:
        SystemExit: with "error: <message>" (exit status 1) for our own ValueErrors.
    """
    try:
        return fn(*args)
    except ValueError as e:
        origin = traceback.extract_tb(e.__traceback__)[-1].filename
        if os.environ.get("KERAS_SI_FULL_TRACEBACKS") or not os.path.abspath(origin).startswith(_OWN_CODE):
            raise
        sys.exit(f"error: {e}")
