"""Participant data: the shipped East Java data set and reading CSV/JSON files."""

from __future__ import annotations

import random
from pathlib import Path

from pydantic import TypeAdapter

from contracts.base import ParticipantKind
from contracts.registration import Participant
from services.common.files import read_records, truthy

KABUPATEN = [
    "Bangkalan", "Banyuwangi", "Blitar", "Bojonegoro", "Bondowoso", "Gresik", "Jember", "Jombang", "Kediri",
    "Lamongan", "Lumajang", "Madiun", "Magetan", "Malang", "Mojokerto", "Nganjuk", "Ngawi", "Pacitan",
    "Pamekasan", "Pasuruan", "Ponorogo", "Probolinggo", "Sampang", "Sidoarjo", "Situbondo", "Sumenep",
    "Trenggalek", "Tuban", "Tulungagung",
]  # fmt: skip
KOTA = ["Batu", "Blitar", "Kediri", "Madiun", "Malang", "Mojokerto", "Pasuruan", "Probolinggo", "Surabaya"]
OPD = [
    ("DINKES", "Dinas Kesehatan"), ("DISDIK", "Dinas Pendidikan"), ("BAPENDA", "Badan Pendapatan Daerah"),
    ("DISHUB", "Dinas Perhubungan"), ("DINSOS", "Dinas Sosial"), ("DISNAKERTRANS", "Dinas Tenaga Kerja dan Transmigrasi"),
    ("DPMPTSP", "Dinas Penanaman Modal dan PTSP"), ("DISKOPUKM", "Dinas Koperasi dan UKM"),
    ("DISPERINDAG", "Dinas Perindustrian dan Perdagangan"), ("DISTANHP", "Dinas Pertanian dan Ketahanan Pangan"),
    ("DISNAK", "Dinas Peternakan"), ("DKP", "Dinas Kelautan dan Perikanan"), ("DLH", "Dinas Lingkungan Hidup"),
    ("DPUBM", "Dinas PU Bina Marga"), ("DPUSDA", "Dinas PU Sumber Daya Air"), ("DPRKPCK", "Dinas Perumahan Rakyat, Kawasan Permukiman dan Cipta Karya"),
    ("DISBUDPAR", "Dinas Kebudayaan dan Pariwisata"), ("DISPORA", "Dinas Kepemudaan dan Olahraga"),
    ("DP3AK", "Dinas Pemberdayaan Perempuan, Perlindungan Anak dan Kependudukan"), ("DPMD", "Dinas Pemberdayaan Masyarakat dan Desa"),
    ("KOMINFO", "Dinas Komunikasi dan Informatika"), ("DISPERPUSIP", "Dinas Perpustakaan dan Kearsipan"),
    ("DISHUT", "Dinas Kehutanan"), ("DESDM", "Dinas Energi dan Sumber Daya Mineral"), ("BPBD", "Badan Penanggulangan Bencana Daerah"),
    ("BKD", "Badan Kepegawaian Daerah"), ("BAPPEDA", "Badan Perencanaan Pembangunan Daerah"), ("BPKAD", "Badan Pengelolaan Keuangan dan Aset Daerah"),
    ("INSPEKTORAT", "Inspektorat Provinsi"), ("BAKESBANGPOL", "Badan Kesatuan Bangsa dan Politik"), ("SATPOLPP", "Satuan Polisi Pamong Praja"),
    ("RSUD-SOETOMO", "RSUD Dr. Soetomo"), ("RSUD-SAIFUL", "RSUD Dr. Saiful Anwar"), ("RSUD-HAJI", "RSU Haji Surabaya"),
    ("BIRO-ORG", "Biro Organisasi Setda"), ("BIRO-HUKUM", "Biro Hukum Setda"), ("BPSDM", "Badan Pengembangan SDM"),
    ("BADAN-PENGHUBUNG", "Badan Penghubung Daerah"), ("DISPERKIM", "Dinas Perumahan dan Kawasan Permukiman"),
    ("BALITBANG", "Badan Riset dan Inovasi Daerah"),
]  # fmt: skip
BUMD = [
    ("BANK-JATIM", "PT Bank Pembangunan Daerah Jawa Timur Tbk"), ("JGU", "PT Jatim Grha Utama"),
    ("PJU", "PT Panca Wira Usaha"), ("JAMKRIDA", "PT Jamkrida Jatim"), ("BPR-JATIM", "PT BPR Jatim (Bank UMKM)"),
    ("PWU", "PT Petrogas Jatim Utama"),
]  # fmt: skip
REGION_UNITS = ["Puskesmas", "Kecamatan", "Kelurahan", "Mal Pelayanan Publik", "RSUD", "Dispendukcapil Loket"]
PROVINCE_UNITS = ["UPT", "Kantor Cabang", "UPT Balai", "UPT Pelayanan"]
TOTAL_UNITS = 1071


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.upper()).strip("-")


def load_default_participants() -> list[Participant]:
    """The 38 regencies and cities of East Java, the provincial agencies, a few BUMD, and 1,071
    generated units under them (deterministic)."""
    rng = random.Random(1071)
    agencies: list[Participant] = []
    agencies += [
        Participant(code=f"KAB-{_slug(n)}", name=f"Kabupaten {n}", kind=ParticipantKind.KABUPATEN)
        for n in KABUPATEN
    ]
    agencies += [
        Participant(code=f"KOTA-{_slug(n)}", name=f"Kota {n}", kind=ParticipantKind.KOTA) for n in KOTA
    ]
    agencies += [Participant(code=f"OPD-{c}", name=n, kind=ParticipantKind.OPD) for c, n in OPD]
    agencies += [Participant(code=f"BUMD-{c}", name=n, kind=ParticipantKind.BUMD) for c, n in BUMD]
    units: list[Participant] = []
    for i in range(TOTAL_UNITS):
        parent = agencies[i % len(agencies)]
        provincial = parent.kind in (ParticipantKind.OPD, ParticipantKind.BUMD)
        label = rng.choice(PROVINCE_UNITS if provincial else REGION_UNITS)
        kind = ParticipantKind.UPT if provincial else ParticipantKind.UPP
        number = i // len(agencies) + 1
        short = parent.name.replace("Kabupaten ", "")
        units.append(
            Participant(
                code=f"{parent.code}-U{number:02d}",
                name=f"{label} {short} {number}",
                kind=kind,
                parent_code=parent.code,
            )
        )
    return agencies + units


_ADAPTER = TypeAdapter(list[Participant])


def _row(row: dict[str, str]) -> dict[str, object]:
    return {
        "code": (row.get("code") or "").strip(),
        "name": (row.get("name") or "").strip(),
        "kind": (row.get("kind") or "").strip(),
        "parent_code": (row.get("parent_code") or "").strip() or None,
        "active": truthy(row.get("active")),
    }


def read_participants_file(path: Path | str) -> list[Participant]:
    """CSV with columns code,name,kind,parent_code,active — or a JSON list of participants."""
    return read_records(path, _ADAPTER, _row)
