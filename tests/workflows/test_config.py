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


# --------------------------------------------------------------------------- the tracks


def all_tracks() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((CYCLES / "2027-all-tracks.toml").read_text())


def test_the_all_tracks_example_enables_every_track_and_a_year_without_tracks_has_none():
    cfg = load_config(CYCLES / "2027-all-tracks.toml")
    assert [t.value for t in cfg.tracks.enabled()] == ["sakip", "rb", "cettar", "kbk"]
    assert cfg.tracks.kbk is not None and [s.key for s in cfg.tracks.kbk.stages] == ["kbk_risalah", "kbk_presentasi"]
    assert load_config(CYCLES / "2027.toml").tracks.enabled() == []


def test_the_tracks_dates_are_checked_each_with_its_path():
    data = all_tracks()
    data["tracks"]["sakip"]["deadline"] = data["tracks"]["sakip"]["opens"]  # closes as it opens
    data["tracks"]["rb"]["deadline"] = data["ceremony"]["date"]  # not before the ceremony
    data["tracks"]["cettar"]["opens"] = data["call"]["opens"]
    data["tracks"]["cettar"]["deadline"] = data["verification"]["deadline"]  # reads WBK: after verification
    data["tracks"]["kbk"]["verification"]["deadline"] = data["tracks"]["kbk"]["call"]["closes"]
    data["tracks"]["kbk"]["stages"][1]["deadline"] = data["tracks"]["kbk"]["stages"][0]["deadline"]
    data["tracks"]["kbk"]["stages"][1]["advance"] = 50
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [
        ("tracks.sakip.deadline", "must be after tracks.sakip.opens"),
        ("tracks.rb.deadline", "must be before ceremony.date"),
        ("tracks.cettar.deadline", "must be after tracks.rb.deadline: CETTAR's rating reads that result"),
        ("tracks.cettar.deadline", "must be after verification.deadline: CETTAR's rating reads that result"),
        ("tracks.kbk.verification.deadline", "must be after tracks.kbk.call.closes"),
        ("tracks.kbk.stages[1].deadline", "must be after tracks.kbk.stages[0].deadline"),
        ("tracks.kbk.stages[1].advance", "cannot exceed its entrants, the previous stage's advance (20)"),
    ]


def test_cettar_may_close_just_after_what_it_reads():
    data = all_tracks()
    data["tracks"]["cettar"]["opens"] = data["tracks"]["sakip"]["opens"]
    data["tracks"]["cettar"]["deadline"] = data["tracks"]["sakip"]["deadline"]  # the same moment: refused
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert [m for _, m in err.value.problems] == [
        "must be after tracks.sakip.deadline: CETTAR's rating reads that result",
        "must be after tracks.rb.deadline: CETTAR's rating reads that result",
    ]
    data["tracks"]["cettar"]["deadline"] = data["tracks"]["sakip"]["deadline"].replace(minute=1)
    assert parse_config(data).tracks.cettar is not None


def test_kbk_stages_end_before_the_ceremony_with_their_objection_window():
    data = all_tracks()
    last = data["tracks"]["kbk"]["stages"][1]
    last["deadline"] = last["deadline"].replace(month=10, day=1)
    last["objection_days"] = 60  # its window would reach past the ceremony
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [("ceremony.date", "must be after the last tracks.kbk.stages[1]'s objection window")]


def test_kbk_stage_keys_are_their_own():
    data = all_tracks()
    data["tracks"]["kbk"]["stages"][0]["key"] = "desk"  # KOVABLIK's: the same child workflow id
    data["tracks"]["kbk"]["stages"][1]["key"] = "sakip"  # a track's workflow id
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [
        ("tracks.kbk.stages[0].key", "'desk' is also a KOVABLIK stage; KBK's stages need keys of their own (e.g. kbk_desk)"),
        ("tracks.kbk.stages[1].key", "'sakip' names a track or one of the cycle's own steps; a jury stage needs another key"),
    ]
    for word in ("call", "verification", "kbk_call", "kovablik"):
        data = all_tracks()
        data["tracks"]["kbk"]["stages"][0]["key"] = word
        with pytest.raises(ConfigError) as err:
            parse_config(data)
        assert [p for p, _ in err.value.problems] == ["tracks.kbk.stages[0].key"], word


def test_a_kovablik_stage_may_not_take_an_enabled_tracks_name():
    data = all_tracks()
    data["stages"][2]["key"] = "rb"
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [("stages[2].key", "'rb' is the name of an enabled track (its workflow's id); a jury stage needs another key")]
    data = tomllib.loads((CYCLES / "2027.toml").read_text())  # no tracks: the name is free
    data["stages"][2]["key"] = "rb"
    assert parse_config(data).stages[2].key == "rb"


def test_award_rules_of_tracks_the_year_does_not_enable_are_refused():
    data = all_tracks()
    del data["tracks"]["rb"]
    del data["tracks"]["kbk"]
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert err.value.problems == [
        ("awards[4].track", "kbk_terbaik awards in track kbk, which this year does not enable (add [tracks.kbk])"),
        ("awards[9].track", "rb_terbaik awards in track rb, which this year does not enable (add [tracks.rb])"),
    ]


def test_a_broken_track_section_is_reported_beside_the_others():
    data = all_tracks()
    data["tracks"]["sakip"]["rubric"] = 7
    data["tracks"]["kbk"]["call"]["quota_per_agency"] = 0
    data["call"]["closes"] = data["call"]["opens"]
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert [p for p, _ in err.value.problems] == [
        "tracks.sakip.rubric",
        "tracks.kbk.call.quota_per_agency",
        "call.closes",
    ]
