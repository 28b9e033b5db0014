"""Reading a cycle's configuration file (TOML) and reporting every problem at once: the field
errors of every section and the cross-field rules (dates in order, weights summing to 1, …)
together, each with its field path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.awards import AwardRule, Ceremony
from contracts.cycle import CallConfig, CycleConfig, StageConfig, TracksConfig, VerificationConfig


class ConfigError(Exception):
    """The config is invalid; ``problems`` holds (field path, message) pairs, all of them."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s): " + "; ".join(f"{p}: {m}" for p, m in problems))


def _path(prefix: str, loc: tuple[Any, ...], whole: str) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or whole


def field_problems(exc: ValidationError, prefix: str = "", whole: str = "(config)") -> list[tuple[str, str]]:
    """(field path, message) for each error of ``exc``, paths written as in the file
    (``stages[1].key``); ``whole`` names the input itself when the error is about all of it."""
    return [
        (_path(prefix, err["loc"], whole), err["msg"].removeprefix("Value error, "))
        for err in exc.errors(include_url=False)
    ]


SECTIONS: dict[str, Any] = {
    "call": CallConfig,
    "verification": VerificationConfig,
    "ceremony": Ceremony,
    "stages": TypeAdapter(list[StageConfig]),
    "awards": TypeAdapter(list[AwardRule]),
}
OPTIONAL_SECTIONS: dict[str, Any] = {"tracks": TracksConfig}
"""Sections a config may leave out (a year without them runs as before)."""


def parse_config(data: dict[str, Any], source: str = "config") -> CycleConfig:
    try:
        cfg = CycleConfig.model_validate(data)
    except ValidationError as exc:
        first = field_problems(exc)
    else:
        refused = cfg.start_problems()
        if not refused:
            return cfg
        raise ConfigError(source, refused)
    # Validate each section on its own so one section's mistake does not hide another's, then
    # check the cross-field rules on whatever parsed.
    problems: list[tuple[str, str]] = []
    parsed: dict[str, Any] = {}
    for name, model in {**SECTIONS, **OPTIONAL_SECTIONS}.items():
        if name not in data:
            if name not in OPTIONAL_SECTIONS:
                problems.append((name, "Field required"))
            continue
        try:
            parsed[name] = model.model_validate(data[name]) if isinstance(model, type) and issubclass(model, BaseModel) else model.validate_python(data[name])
        except ValidationError as exc:
            problems += field_problems(exc, name)
    known = set(SECTIONS) | set(OPTIONAL_SECTIONS) | set(CycleConfig.model_fields)
    for key in data:
        if key not in known:
            problems.append((key, "Extra inputs are not permitted"))
    # The model's own cross-field check (path "(config)") is repeated below, rule by rule.
    for path, msg in first:
        if path == "(config)":
            continue
        if path.split(".")[0].split("[")[0] not in {**SECTIONS, **OPTIONAL_SECTIONS} and (path, msg) not in problems and "\n" not in msg:
            problems.append((path, msg))
    # The cross-field rules run on the sections that parsed (each rule needs only its own).
    fields = {k: v for k, v in data.items() if k not in SECTIONS and k not in OPTIONAL_SECTIONS and k in CycleConfig.model_fields}
    unparsed: dict[str, Any] = {name: None for name in OPTIONAL_SECTIONS if name in data and name not in parsed}  # skip their rules
    constructed = CycleConfig.model_construct(**fields, **parsed, **unparsed)
    problems += [p for p in constructed.problems() + constructed.start_problems() if p not in problems]
    return_problems = problems or first
    raise ConfigError(source, return_problems)


def load_config(path: str | Path) -> CycleConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), [("(file)", "no such file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("(file)", f"not valid TOML: {exc}")]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), [("(file)", "is a directory, not a config file")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [("(file)", f"not UTF-8 text (byte {exc.start}): a TOML file is UTF-8")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [("(file)", f"cannot be read: {exc.strerror or exc}")]) from None
    return parse_config(data, str(path))
