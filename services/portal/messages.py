"""A service's refusal as a person reads it: each error code's message in Indonesian, with the
English beside it, and the form field it belongs to (shown next to that field)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Reply


@dataclass(frozen=True)
class Refusal:
    id: str
    en: str
    field: str | None = None
    detail: str | None = None


# code -> (Indonesian, English, the form field it belongs to)
MESSAGES: dict[str, tuple[str, str, str | None]] = {
    # registration
    "quota_exceeded": ("Kuota instansi sudah habis: tarik salah satu proposal untuk membebaskan slot.", "The agency's quota is used up: withdraw a proposal to free a slot.", None),
    "call_not_open": ("Pendaftaran belum dibuka.", "The call for proposals is not open yet.", None),
    "call_closed": ("Pendaftaran sudah ditutup.", "The call for proposals has closed.", None),
    "duplicate_title": ("Judul ini sudah dipakai proposal lain.", "Another proposal already has this title.", "title"),
    "unknown_participant": ("Peserta tidak dikenal.", "Unknown participant.", None),
    "unit_not_under_agency": ("Unit ini bukan bagian dari instansi Anda.", "This unit is not under your agency.", None),
    "not_a_group": ("Kode ini bukan kelompok budaya kerja (KBK) yang terdaftar.", "This code is not a registered work-culture group.", None),
    "unknown_original": ("Inovasi yang direplikasi tidak ada di rumah inovasi: periksa ID arsipnya.", "The archive holds no innovation with this id.", "replicates"),
    "invalid_transition": ("Tindakan ini tidak berlaku untuk status proposal saat ini.", "This action does not apply to the proposal's current status.", None),
    # verification
    "verification_not_started": ("Verifikasi belum dimulai.", "Verification has not started.", None),
    "verification_closed": ("Verifikasi sudah ditutup.", "Verification has closed.", None),
    "unknown_proposal": ("Proposal tidak dikenal.", "Unknown proposal.", None),
    # evaluations (SAKIP, RB, CETTAR)
    "invalid_sheet": ("Lembar evaluasi tidak sesuai rubrik: periksa nilai yang ditandai.", "The sheet does not fit the rubric: check the marked values.", "values"),
    "unknown_rubric": ("Rubrik evaluasi tidak dikenal.", "Unknown rubric.", None),
    "evaluation_not_open": ("Evaluasi jalur ini belum dibuka.", "This track's evaluation is not open.", None),
    "evaluation_closed": ("Evaluasi jalur ini sudah ditutup: lembar tidak dapat diubah lagi.", "This track's evaluation has closed: sheets can no longer change.", None),
    "already_approved": ("Lembar ini sudah disetujui dan tidak dapat diubah lagi.", "This sheet is approved and can no longer change.", None),
    "own_sheet": ("Anda tidak dapat menelaah lembar yang Anda isi sendiri: penelaah harus orang lain.", "You cannot review a sheet you entered yourself.", "reason"),
    # scoring
    "not_assigned": ("Proposal ini tidak ditugaskan kepada Anda.", "This proposal is not assigned to you.", None),
    "stage_closed": ("Tahap penilaian sudah ditutup: nilai tidak dapat diubah lagi.", "The stage has closed: scores can no longer change.", None),
    "unknown_stage": ("Tahap penilaian tidak dikenal.", "Unknown stage.", None),
    "off_scale": ("Nilai di luar skala kriteria.", "A mark is outside the criterion's scale.", "scores"),
    "missing_criterion": ("Semua kriteria harus dinilai.", "Every criterion must be scored.", "scores"),
    "unknown_criterion": ("Kriteria tidak dikenal.", "Unknown criterion.", "scores"),
    "already_scored": ("Anda sudah menilai proposal ini: konflik kepentingan dinyatakan sebelum menilai. Hubungi sekretariat.", "You have already scored this proposal: a conflict is declared before scoring. Contact the secretariat.", "reason"),
    "objection_window_closed": ("Masa sanggah (uji publik) sudah berakhir.", "The objection window has closed.", None),
    "not_on_shortlist": ("Proposal ini tidak ada dalam daftar pendek.", "This proposal is not on the shortlist.", "proposal_id"),
    # the actor checks (trust boundary)
    "actor_required": ("Tindakan ini memerlukan akun yang masuk.", "This act needs a signed-in account.", None),
    "actor_mismatch": ("Anda hanya dapat bertindak atas nama Anda sendiri.", "You can act only as yourself.", None),
    "not_your_unit": ("Proposal ini milik unit lain.", "This proposal belongs to another unit.", None),
    "not_your_agency": ("Proposal ini milik instansi lain.", "This proposal belongs to another agency.", None),
    "not_a_verifier": ("Anda tidak terdaftar sebagai verifikator siklus ini.", "You are not a verifier of this cycle.", None),
    "not_a_juror": ("Anda tidak terdaftar sebagai juri.", "You are not a juror.", None),
    "not_an_evaluator": ("Anda tidak terdaftar sebagai evaluator jalur ini.", "You are not an evaluator of this track.", None),
    "not_a_reviewer": ("Anda tidak terdaftar sebagai penelaah jalur ini.", "You are not a reviewer of this track.", None),
    "not_your_group": ("Anda hanya dapat bertindak atas nama kelompok Anda sendiri.", "You can act only for your own group.", None),
    "not_allowed_to_read": ("Anda tidak berhak melihat data ini.", "You may not read this.", None),
    # the runtime's
    "validation_error": ("Isian belum lengkap atau tidak valid.", "Some input is missing or invalid.", None),
    "not_found": ("Data tidak ditemukan.", "Not found.", None),
    "not_ready": ("Data sedang diproses, coba lagi sebentar lagi.", "The data is still being processed; try again shortly.", None),
    "unavailable": ("Layanan sedang tidak tersedia, coba lagi nanti.", "The service is unavailable; try again later.", None),
    "internal_error": ("Terjadi kesalahan di layanan, coba lagi.", "The service had an error; try again.", None),
}


def refusal(reply: Reply) -> Refusal:
    assert reply.error is not None
    code = reply.error.code
    idn, en, field = MESSAGES.get(code, ("Permintaan ditolak.", "The request was refused.", None))
    return Refusal(idn, en, field, f"{code}: {reply.error.message}")
