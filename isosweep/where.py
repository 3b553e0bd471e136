"""``--where``: a study's axes and settings restricted or extended, as the CLI's text
(``K=V,K=V1|V2``) or, from Python, a mapping (``{"lam": 100, "loss": ["se", "uconv"]}``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from isosweep.errors import UsageError
from isosweep.study import Setting, Study, int_setting_max


def _setting_values(key: str, raw: str, values: list[str], allowed: Setting) -> tuple[Any, ...]:
    """The typed, distinct values of setting ``key`` given as ``raw`` in --where."""
    if allowed is int:
        try:
            numbers = tuple(dict.fromkeys(int(v) for v in values))
        except ValueError:
            raise UsageError(f"--where {key}={raw!r}: {key} takes whole numbers, e.g. {key}=4000|8000") from None
        if any(n < 1 for n in numbers):
            raise UsageError(f"--where {key}={raw!r}: {key} must be at least 1")
        most = int_setting_max(key)
        if any(n > most for n in numbers):
            # The store could not record it: refuse now, not after the training.
            raise UsageError(f"--where {key}={raw!r}: {key} must be at most {most:,}")
        return numbers
    assert isinstance(allowed, tuple)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise UsageError(f"--where {key}={unknown[0]!r}: choose one of {', '.join(map(str, allowed))}")
    return tuple(dict.fromkeys(values))


def where_texts(where: Mapping[str, Any]) -> list[str]:
    """A mapping of keys to a value or a list of values, as ``--where`` texts (``K=V1|V2``)."""
    texts = []
    for key, value in where.items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        texts.append(f"{key}=" + "|".join(str(v) for v in values))
    return texts


def parse_where(study: Study, text: str | Sequence[str] | Mapping[str, Any] | None) -> dict[str, tuple[Any, ...]]:
    """Parse ``K=V,K=V|V`` into typed values, checking keys and values against the study.

    ``text`` may also be a mapping, ``{"lam": 100, "loss": ["se", "uconv"]}`` (:func:`where_texts`).

    ``text`` may be the texts of several ``--where`` flags: their keys add up, as if they were
    one text joined by commas, and a key named in two of them is refused like a key named twice
    in one (a later value silently replacing an earlier one would run other trials than asked)."""
    out: dict[str, tuple[Any, ...]] = {}
    if text is None:
        return out
    if isinstance(text, Mapping):
        if not text:
            return out
        text = where_texts(text)
    texts = [text] if isinstance(text, str) else list(text)
    if not texts or any(not t.strip() for t in texts):
        # An empty --where (a shell variable that was not set) must not silently mean "everything".
        raise UsageError(
            "--where is empty; leave it out to run every trial, or write e.g. --where 'dataset=mix,lam=10|100'"
        )
    for part in (p for t in texts for p in t.split(",")):
        if "=" not in part:
            raise UsageError(f"--where part {part!r} is not K=V; write e.g. --where 'dataset=mix,lam=10|100'")
        key, raw = (s.strip() for s in part.split("=", 1))
        if not key:
            raise UsageError(f"--where part {part!r} has no key before '='; write e.g. --where 'dataset=mix'")
        if key in out:
            # A second value of a key would replace the first without a word: ask for one list.
            raise UsageError(
                f"--where names {key} twice; give its values once, separated by |, e.g. --where '{key}=A|B'"
            )
        values = [v.strip() for v in raw.split("|") if v.strip()]
        if not values:
            raise UsageError(f"--where {key}= has no value; write e.g. --where '{key}=VALUE'")
        axis = study.axis(key)
        if key == "seed":
            try:
                seeds = tuple(int(v) for v in values)
            except ValueError:
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers") from None
            if any(s < 0 for s in seeds):
                raise UsageError(f"--where seed={raw!r}: seeds are non-negative integers")
            most = int_setting_max("seed")
            if any(s > most for s in seeds):
                # The store could not record it: refuse now, not after the training.
                raise UsageError(f"--where seed={raw!r}: seeds must be at most {most:,}")
            out[key] = seeds
        elif key in study.all_settings():
            out[key] = _setting_values(key, raw, values, study.all_settings()[key])
        elif axis is None:
            known = [a.name for a in study.axes] + ["seed", *study.all_settings()]
            raise UsageError(
                f"--where key {key!r} is not an axis of study {study.name!r}; use one of: {', '.join(known)}"
            )
        elif axis.kind is float:
            try:
                numbers = tuple(float(v) for v in values)
            except ValueError:
                raise UsageError(f"--where {key}={raw!r}: {key} takes numbers, e.g. {key}=10|100") from None
            if not all(x > 0 and x < float("inf") for x in numbers):
                raise UsageError(f"--where {key}={raw!r}: {key} must be a positive finite number")
            out[key] = numbers
        else:
            unknown = [v for v in values if v not in axis.values]
            if unknown:
                raise UsageError(
                    f"--where {key}={unknown[0]!r} is not a value of study {study.name!r}; choose from: {', '.join(map(str, axis.values))}"
                )
            out[key] = tuple(values)
    return out
