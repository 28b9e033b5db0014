"""An operator's participants file: every entry validated, the first problem named by its place."""

from __future__ import annotations

import pytest

from bfest.files.participants import read_participants_file


def test_a_valid_csv_is_read(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("code,name,kind,parent_code,active\nKAB-X,Kabupaten X,kabupaten,,\nKAB-X-U1,Unit,upp,KAB-X,tidak\n")
    agency, unit = read_participants_file(path)
    assert (agency.code, agency.active, unit.parent_code, unit.active) == ("KAB-X", True, "KAB-X", False)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.csv", "code,name,kind\nA,Agency,kabupaten\nB,,upp\nC,Unit C,nope\n", "2 invalid entries; the first, line 3, name: String should have at least 1 character"),
        ("p.json", '[{"code": "A", "name": "Agency", "kind": "kota"}, {"code": "B", "name": "B", "kind": "planet"}]', "1 invalid entry; the first, entry 2, kind: Input should be"),
        ("p.json", '[{"code": "A",', "not valid JSON: EOF while parsing"),
        ("p.json", '{"code": "A"}', "expected a list of entries"),
    ],
)
def test_an_invalid_file_names_its_first_problem(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_participants_file(path)
    assert str(err.value).startswith(message), str(err.value)
