"""An operator's archive CSV: every row validated on its own, each bad row named on a line of its own."""

from __future__ import annotations

import pytest

from bfest.files.archive import ArchiveFileError, read_archive_file

HEADER = "id,year,title,unit_name,agency_name,region,category,group,summary,stage_reached,award,replicates\n"


def test_a_valid_file_is_read_with_its_empty_cells_as_none(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(HEADER + "A-1,2019,Antrian,Puskesmas,Kota Batu,,kesehatan,umum,Ringkas.,final,TOP 99,\nA-2,2020,Replika,UPT,Dinas Sosial,Provinsi Jawa Timur,sosial,replikasi,Ringkas.,,,A-1\n")
    first, second = read_archive_file(path)
    assert (first.year, first.region, first.award, first.replicates) == (2019, None, "TOP 99", None)
    assert (second.group.value, second.replicates, second.stage_reached) == ("replikasi", "A-1", None)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            HEADER + "A-1,2019,Antrian,P,K,,kesehatan,umum,R.,,,\nA-2,dua ribu,Judul,P,K,,kesehatan,umum,R.,,,\nA-3,2019,Judul,P,K,,kesehatan,planet,R.,,,\nA-1,2019,Lagi,P,K,,kesehatan,umum,R.,,,\n",
            ["line 3: year: Input should be a valid integer", "line 4: group: Input should be 'umum', 'khusus' or 'replikasi'", "line 5: id: A-1 is already on line 2"],
        ),
        ("id,year,title\nA,2019,T\n", ["line 1: missing column(s) unit_name, agency_name, category, group, summary"]),
        (HEADER, ["the file has no rows"]),
    ],
)
def test_every_bad_row_is_named_on_its_own_line(tmp_path, text, problems):
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(ArchiveFileError) as err:
        read_archive_file(path)
    assert len(err.value.problems) == len(problems)
    for got, want in zip(err.value.problems, problems, strict=True):
        assert got.startswith(want), got
