"""The exceptions a user can cause. The command lines show these (and missing or existing files) as one line and
exit 2; any other exception is a bug in the kit and keeps its traceback. Imports nothing."""

from __future__ import annotations


class InputError(ValueError):
    """A bad argument, setting or input file, with a message that says what is wrong and where."""


class NonFiniteLoss(FloatingPointError):
    """A NaN or inf loss: the run stops there, its last checkpoint intact (lower the lr, clip, or use fp32)."""
