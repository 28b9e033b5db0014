"""Reading a cycle's configuration file (TOML) and reporting every problem at once."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError

from contracts.cycle import CycleConfig


class ConfigError(Exception):
    """The config is invalid; ``problems`` holds (field path, message) pairs, all of them."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s): " + "; ".join(f"{p}: {m}" for p, m in problems))


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if not loc and "\n" in msg or (not loc and ": " in msg):
            for line in msg.splitlines():
                path, _, text = line.partition(": ")
                out.append((path, text))
        else:
            out.append((loc or "(config)", msg))
    return out


def parse_config(data: dict, source: str = "config") -> CycleConfig:
    try:
        return CycleConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_of(exc)) from None


def load_config(path: str | Path) -> CycleConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), [("(file)", "no such file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("(file)", f"not valid TOML: {exc}")]) from None
    return parse_config(data, str(path))
