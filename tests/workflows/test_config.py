"""Cycle configs: the shipped ones load; an invalid one reports every problem with its path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from workflows.config import ConfigError, load_config, parse_config

CYCLES = Path(__file__).resolve().parents[2] / "cycles"


@pytest.mark.parametrize("path", sorted(CYCLES.glob("*.toml")), ids=lambda p: p.name)
def test_the_shipped_configs_are_valid(path):
    cfg = load_config(path)
    assert [s.key for s in cfg.stages] == ["desk", "interview", "field"]
    assert cfg.call.opens < cfg.call.closes < cfg.verification.deadline < cfg.stages[0].deadline < cfg.ceremony.date


def test_every_problem_is_reported_with_its_path():
    data = tomllib.loads((CYCLES / "2027.toml").read_text())
    data["call"]["quota_per_agency"] = 0
    data["stages"][1]["jurors_per_proposal"] = "three"
    data["awards"][0]["n"] = -1
    data["surprise"] = True
    data["timezone"] = "Mars/Olympus"  # every date of a cycle is shown in WIB
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    paths = [p for p, _ in err.value.problems]
    assert paths == ["call.quota_per_agency", "stages[1].jurors_per_proposal", "awards[0].n", "surprise", "timezone"]

    data = tomllib.loads((CYCLES / "2027.toml").read_text())
    data["verification"]["deadline"] = data["call"]["opens"]
    data["stages"][0]["criteria"][0]["weight"] = 0.9
    data["stages"][2]["advance"] = 100
    data["ceremony"]["date"] = data["stages"][1]["deadline"]
    data["awards"][2]["rule"] = "lottery"  # the awards service's rules, checked before anything starts
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    paths = [p for p, _ in err.value.problems]
    assert paths == ["verification.deadline", "stages[0].criteria", "stages[2].advance", "ceremony.date", "awards[2].rule"]
    assert err.value.problems[-1][1] == "unknown rule 'lottery'; known: top_n, best_of_group, layak_wbk, grade, best_of_grade, most_improved, sakip_result"


def test_a_single_cross_field_problem_is_reported_once():
    data = tomllib.loads((CYCLES / "2027.toml").read_text())
    data["call"]["closes"] = data["call"]["opens"]
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [("call.closes", "must be after call.opens")]


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("year = = 2027")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(garbage)


def test_a_broken_section_does_not_hide_the_other_sections_cross_field_problems():
    data = tomllib.loads((CYCLES / "2027.toml").read_text())
    data["awards"][0]["n"] = "thirty"  # a field error in one section …
    data["call"]["closes"] = data["call"]["opens"]  # … and cross-field ones in others
    data["stages"][0]["criteria"][0]["weight"] = 0.9
    data["stages"][0]["criteria"][1]["scale_min"] = 20
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert [p for p, _ in err.value.problems] == [
        "awards[0].n",
        "call.closes",
        "stages[0].criteria",
        "stages[0].criteria[1]",
    ]


def test_a_stage_may_not_take_the_name_of_the_cycles_own_steps():
    data = tomllib.loads((CYCLES / "2027.toml").read_text())
    data["stages"][1]["key"] = "verification"
    data["stages"][2]["key"] = "ceremony"
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [
        ("stages[1].key", "'verification' names one of the cycle's own steps or phases; a jury stage needs another key"),
        ("stages[2].key", "'ceremony' names one of the cycle's own steps or phases; a jury stage needs another key"),
    ]
