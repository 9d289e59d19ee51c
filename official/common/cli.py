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


# --log_level -> (Python logging level for absl, TensorFlow and Keras; TF_CPP_MIN_LOG_LEVEL for TensorFlow's C++).
# At "warning" the C++ side is quieter than the Python side: its lines (CPU instruction sets, oneDNN, "failed call
# to cuInit" on a machine without a GPU) are about TensorFlow's build and host, not about the run; a real failure
# still reaches Python as an exception.
_LEVELS = {"debug": (10, "0"), "info": (20, "0"), "warning": (30, "3"), "error": (40, "3")}


def _import_tensorflow_quietly():
    """Imports TensorFlow with file descriptor 2 sent to a temporary file, replayed only if the import fails.

    TensorFlow 2.21 writes its INFO lines from before abseil's log initialisation
    ("All log messages before absl::InitializeLog() ...", oneDNN, CUDA stubs)
    whatever TF_CPP_MIN_LOG_LEVEL says, from C++, so only the descriptor can hold them back.
    """
    import tempfile

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def quiet_native_logs(argv=None, default="warning"):
    """Sets TF_CPP_MIN_LOG_LEVEL from `--log_level` in `argv` before TensorFlow is imported (a user's own
    TF_CPP_MIN_LOG_LEVEL wins). Call it first thing in a program whose module imports TensorFlow: TensorFlow's
    C++ logging reads the variable once, when it first logs, which importing it already does."""
    level = default
    for arg in (sys.argv if argv is None else argv)[1:]:
        if arg.startswith("--log_level="):
            level = arg.split("=", 1)[1]
    if level in _LEVELS:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _LEVELS[level][1])
        if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3":
            _import_tensorflow_quietly()


def set_log_level(level):
    """Shows the messages of absl, TensorFlow and Keras at `level` ("debug", "info", "warning", "error") and above.

    The command's own output (print) and Keras's progress bar are not logging
    and always show. absl's own `--verbosity`, when given on the command line,
    wins over `level` for absl's logger; so does a TF_CPP_MIN_LOG_LEVEL set by
    the user for TensorFlow's C++ lines.

    Raises:
        ValueError: an unknown level.
    """
    import logging

    from absl import flags
    from absl import logging as absl_logging

    if level not in _LEVELS:
        raise ValueError(f"--log_level must be one of {', '.join(_LEVELS)}. Received: {level!r}")
    python_level, cpp_level = _LEVELS[level]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", cpp_level)
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3":
        _import_tensorflow_quietly()
    verbosity_given = "verbosity" in flags.FLAGS and flags.FLAGS["verbosity"].present
    if not verbosity_given:
        absl_logging.set_verbosity(level)  # absl's own names; its numbers differ from Python's
    for name in ("tensorflow", "keras", "h5py", "jax", "absl"):
        if name == "absl" and verbosity_given:
            continue
        logging.getLogger(name).setLevel(python_level)
