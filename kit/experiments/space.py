"""A search space as text: ``KEY=KIND:ARGS`` per setting, parsed without importing torch or Optuna (the command
line checks it before any slow work starts).

``KEY`` is a :class:`~kit.training.config.TrainConfig` setting, a nested one dotted (``postprocess.box_thresh``,
``loss.prob_weight``). Kinds: ``float:LOW:HIGH[:STEP]``, ``log:LOW:HIGH`` (log-uniform, for learning rates and
weight decay), ``int:LOW:HIGH[:STEP]`` and ``choice:[A,B,...]`` (Python literals: numbers, strings, booleans,
None).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Sequence

from kit.errors import InputError

KINDS = ("float", "log", "int", "choice")
EXAMPLES = "lr=log:1e-5:1e-3, weight_decay=float:0:2e-4, batch_size=int:2:8, loss.prob_loss=choice:['bce','dice']"


@dataclass(frozen=True)
class SearchParam:
    """One searched setting and its range (or choices)."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial samples for this setting (named by ``key`` in the study)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log", step=self.step)

    def middle(self) -> Any:
        """A value inside the range: what the settings are checked with before the first trial trains."""
        if self.kind == "choice":
            return self.choices[0]
        if self.kind == "int":
            return int(self.low)
        return (self.low * self.high) ** 0.5 if self.kind == "log" else (self.low + self.high) / 2


def parse_param(text: str) -> SearchParam:
    """``"lr=log:1e-5:1e-3"`` -> ``SearchParam("lr", "log", 1e-5, 1e-3)``; a malformed one names what is wrong."""
    key, sep, spec = text.partition("=")
    kind, _, args = spec.partition(":")
    if not sep or not key or kind not in KINDS:
        raise InputError(f"--param {text!r}: give KEY=KIND:ARGS with KIND one of {', '.join(KINDS)}, e.g. {EXAMPLES}")
    if kind == "choice":
        try:
            choices = ast.literal_eval(args)
        except (ValueError, SyntaxError):
            choices = None
        if not isinstance(choices, (list, tuple)) or not choices or not all(
                c is None or isinstance(c, (bool, int, float, str)) for c in choices):
            raise InputError(f"--param {text!r}: choice takes a non-empty list of numbers, strings, booleans or "
                             "None, e.g. choice:['bce','dice']")
        return SearchParam(key, kind, choices=tuple(choices))
    try:
        numbers = [float(v) for v in args.split(":")]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or numbers[0] >= numbers[1]:
        raise InputError(f"--param {text!r}: {kind} takes LOW:HIGH{'' if kind == 'log' else '[:STEP]'} with "
                         "LOW < HIGH, e.g. float:0.2:0.4")
    if kind == "log" and (len(numbers) == 3 or numbers[0] <= 0):
        raise InputError(f"--param {text!r}: log takes LOW:HIGH with 0 < LOW (no step)")
    if kind == "int" and not all(n.is_integer() for n in numbers):
        raise InputError(f"--param {text!r}: int takes whole numbers")
    return SearchParam(key, kind, numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)


def parse_space(items: Sequence[str]) -> list[SearchParam]:
    """Every ``--param``; a setting searched twice is an error."""
    space = [parse_param(item) for item in items]
    keys = [p.key for p in space]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise InputError(f"--param {twice} given more than once")
    return space


def as_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Sampled values by dotted key -> settings as :func:`~kit.training.config.resolve_config` takes them
    (``{"postprocess.thresh": 0.3}`` -> ``{"postprocess": {"thresh": 0.3}}``)."""
    settings: dict[str, Any] = {}
    for key, value in values.items():
        outer, dot, inner = key.partition(".")
        if dot:
            settings.setdefault(outer, {})[inner] = value
        else:
            settings[key] = value
    return settings


def merge_base(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    """The fixed settings with the sampled ones on top; a setting both fixed and searched is an error."""
    merged = dict(base)
    for key, value in sampled.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            both = sorted(set(value) & set(base[key]))
            if both:
                raise InputError(f"{[f'{key}.{k}' for k in both]} both fixed (--set) and searched (--param)")
            merged[key] = {**base[key], **value}
        elif key in base:
            raise InputError(f"{key!r} both fixed (--set) and searched (--param)")
        else:
            merged[key] = value
    return merged
