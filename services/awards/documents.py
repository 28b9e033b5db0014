"""What the awards service writes: the certificate (piagam penghargaan) as PDF, and the results
page (HTML) and tables (CSV)."""

from __future__ import annotations

import csv
import html
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from contracts.published import group_label, published_score, score_text
from services.awards.domain import EVALUATION_TRACKS, NEW_TRACKS, TRACK_NAMES, TrackResults, tanggal
from services.common.files import csv_row

NAVY = colors.HexColor("#12355b")
GOLD = colors.HexColor("#b8902f")


def _fit(c: canvas.Canvas, text: str, font: str, size: float, width: float) -> float:
    while size > 8 and c.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def _shorten(c: canvas.Canvas, text: str, font: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` (a long venue must not run into the signature)."""
    if c.stringWidth(text, font, size) <= width:
        return text
    while text and c.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


LAYOUTS: dict[str, dict[str, str]] = {
    "award": {
        "title": "PIAGAM PENGHARGAAN",
        "title_en": "Certificate of Award",
        "to": "diberikan kepada · presented to",
        "as": "atas prestasinya sebagai · for its achievement as",
        "document": "Piagam Penghargaan",
    },
    "sakip_result": {
        "title": "PENYERAHAN HASIL EVALUASI",
        "title_en": "Handover of the SAKIP Evaluation Result",
        "to": "diserahkan kepada · handed over to",
        "as": "hasil evaluasi SAKIP tahun {year} · SAKIP evaluation result {year}",
        "document": "Penyerahan Hasil Evaluasi SAKIP",
    },
}
"""The wording of each certificate kind: the award (piagam penghargaan) and the handover of an
agency's SAKIP evaluation result."""


def _layout(cert: dict[str, Any]) -> dict[str, str]:
    return {k: v.format(year=cert["year"]) for k, v in LAYOUTS[cert.get("kind") or "award"].items()}


def certificate_pdf(path: Path, cert: dict[str, Any]) -> None:
    """A landscape A4 piagam: gold and navy frame, the award (or, for a SAKIP handover, the
    result's grade), the recipient, the innovation or risalah, the ceremony's place and date, a
    signature block, and the verification code with its QR code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    w, h = landscape(A4)
    c = canvas.Canvas(buf, pagesize=(w, h))
    c.setTitle(f"{_layout(cert)['document']} — {cert['recipient']}")
    c.setAuthor("Pemerintah Provinsi Jawa Timur — Bureaucracy Fest")
    c.setSubject(f"{cert['award_name_id']} {cert['year']}")
    c.setCreator("Bureaucracy Fest platform — awards service")
    _frame(c, w, h)
    _heading_block(c, w, h, cert)
    _award_block(c, w, _recipient_block(c, w, h, cert), cert)
    _signature_block(c, w, cert)
    _verification_block(c, w, cert)
    c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())


def _frame(c: canvas.Canvas, w: float, h: float) -> None:
    c.setFillColor(colors.HexColor("#fffdf6"))
    c.rect(0, 0, w, h, stroke=0, fill=1)
    c.setStrokeColor(NAVY)
    c.setLineWidth(6)
    c.rect(12 * mm, 12 * mm, w - 24 * mm, h - 24 * mm)
    c.setStrokeColor(GOLD)
    c.setLineWidth(1.5)
    c.rect(17 * mm, 17 * mm, w - 34 * mm, h - 34 * mm)
    for x, y in ((17, 17), (17, -17), (-17, 17), (-17, -17)):
        cx = x * mm if x > 0 else w + x * mm
        cy = y * mm if y > 0 else h + y * mm
        c.setFillColor(GOLD)
        c.circle(cx, cy, 3 * mm, stroke=0, fill=1)


def _heading_block(c: canvas.Canvas, w: float, h: float, cert: dict[str, Any]) -> None:
    c.setFillColor(NAVY)
    c.setFont("Helvetica-Bold", 13)
    c.drawCentredString(w / 2, h - 34 * mm, "PEMERINTAH PROVINSI JAWA TIMUR")
    c.setFont("Helvetica", 10.5)
    track = cert.get("track") or "kovablik"
    short, full = TRACK_NAMES["kovablik" if track == "wbk" else track]  # WBK's piagam is given at KOVABLIK's ceremony, as before
    c.drawCentredString(w / 2, h - 40 * mm, f"Bureaucracy Fest {cert['year']} · {short} — {full}")
    layout = _layout(cert)
    c.setFillColor(GOLD)
    c.setFont("Times-Bold", _fit(c, layout["title"], "Times-Bold", 38, w - 60 * mm))
    c.drawCentredString(w / 2, h - 60 * mm, layout["title"])
    c.setFont("Times-Italic", 13)
    c.setFillColor(NAVY)
    c.drawCentredString(w / 2, h - 67 * mm, layout["title_en"])


def _recipient_block(c: canvas.Canvas, w: float, h: float, cert: dict[str, Any]) -> float:
    """The recipient (and its agency); the height the award goes at."""
    c.setFont("Helvetica", 12)
    c.drawCentredString(w / 2, h - 80 * mm, _layout(cert)["to"])
    recipient = cert["recipient"]
    size = _fit(c, recipient, "Times-Bold", 28, w - 70 * mm)
    c.setFont("Times-Bold", size)
    c.drawCentredString(w / 2, h - 93 * mm, recipient)
    y = h - 101 * mm
    if cert.get("agency_name") and cert["agency_name"] != recipient:
        c.setFont("Helvetica", 12)
        c.drawCentredString(w / 2, y, cert["agency_name"])
        y -= 9 * mm
    c.setFont("Helvetica", 12)
    c.drawCentredString(w / 2, y, _layout(cert)["as"])
    return float(y - 10 * mm)


def _grade_text(cert: dict[str, Any]) -> str:
    label = f" — {cert['grade_label']}" if cert.get("grade_label") and cert["grade_label"] != cert["grade"] else ""
    return f"Predikat · grade: {cert['grade']}{label}"


def _award_block(c: canvas.Canvas, w: float, y: float, cert: dict[str, Any]) -> None:
    if cert.get("kind") == "sakip_result":
        _handover_block(c, w, y, cert)
        return
    c.setFillColor(GOLD)
    award = cert["award_name_id"]
    c.setFont("Helvetica-Bold", _fit(c, award, "Helvetica-Bold", 19, w - 70 * mm))
    c.drawCentredString(w / 2, y, award)
    y -= 6.5 * mm
    c.setFillColor(NAVY)
    if cert["award_name_en"].casefold() != award.casefold():  # an award named alike in both languages is named once
        c.setFont("Helvetica-Oblique", 11)
        c.drawCentredString(w / 2, y, cert["award_name_en"])
    if cert.get("title"):
        y -= 10 * mm
        title = f"{'Risalah' if cert.get('track') == 'kbk' else 'Inovasi'}: “{cert['title']}”"
        c.setFont("Times-Italic", _fit(c, title, "Times-Italic", 15, w - 70 * mm))
        c.drawCentredString(w / 2, y, title)
    if cert.get("grade"):
        y -= 9 * mm
        c.setFont("Helvetica-Bold", 13)
        c.drawCentredString(w / 2, y, _grade_text(cert))
    _score_line(c, w, y, cert)


SCORE_LABELS = {"lke": "Nilai LKE · LKE total", "evaluation": "Nilai evaluasi · evaluation total", "final": "Nilai akhir · final score"}


def _score_line(c: canvas.Canvas, w: float, y: float, cert: dict[str, Any]) -> None:
    if cert.get("score") is not None:
        c.setFont("Helvetica", 11)
        label = SCORE_LABELS.get(cert.get("score_kind") or "final", SCORE_LABELS["final"])
        c.drawCentredString(w / 2, y - 8 * mm, f"{label}: {score_text(cert['score'])}")


def _handover_block(c: canvas.Canvas, w: float, y: float, cert: dict[str, Any]) -> None:
    """A SAKIP handover: the grade the agency holds, large, then its total (the handover's own
    name, as the cycle's award rule calls it, in small letters under them)."""
    c.setFillColor(GOLD)
    grade = f"Predikat {cert['grade']}" + (f" — {cert['grade_label']}" if cert.get("grade_label") else "")
    c.setFont("Helvetica-Bold", _fit(c, grade, "Helvetica-Bold", 22, w - 70 * mm))
    c.drawCentredString(w / 2, y, grade)
    c.setFillColor(NAVY)
    y -= 9 * mm
    c.setFont("Helvetica", 11)
    c.drawCentredString(w / 2, y, f"{cert['award_name_id']} · {cert['award_name_en']}")
    _score_line(c, w, y, cert)


def _signature_block(c: canvas.Canvas, w: float, cert: dict[str, Any]) -> None:
    """Place, date, signature."""
    c.setFont("Helvetica", 11)
    c.drawString(w - 120 * mm, 52 * mm, f"{cert['venue_city']}, {cert['date_id']}")
    c.drawString(w - 120 * mm, 46 * mm, f"{cert.get('signed_by') or 'Gubernur Jawa Timur'},")
    c.setStrokeColor(NAVY)
    c.setLineWidth(0.8)
    c.line(w - 120 * mm, 30 * mm, w - 45 * mm, 30 * mm)
    if cert.get("signer_name"):
        c.setFont("Helvetica-Bold", 11)
        c.drawString(w - 120 * mm, 25 * mm, cert["signer_name"])


def _verification_block(c: canvas.Canvas, w: float, cert: dict[str, Any]) -> None:
    widget = QrCodeWidget(cert["verify_url"])
    bx = widget.getBounds()
    side = 27 * mm
    d = Drawing(side, side, transform=[side / (bx[2] - bx[0]), 0, 0, side / (bx[3] - bx[1]), 0, 0])
    d.add(widget)
    renderPDF.draw(d, c, 27 * mm, 24 * mm)
    c.setFont("Helvetica", 8.5)
    c.drawString(58 * mm, 42 * mm, "Kode verifikasi · verification code")
    # the code on one line, never broken: shrunk to the space left of the signature block
    code_room = (w - 120 * mm) - 58 * mm - 6 * mm
    c.setFont("Courier-Bold", _fit(c, cert["code"], "Courier-Bold", 13, code_room))
    c.drawString(58 * mm, 35 * mm, cert["code"])
    c.setFont("Helvetica", 8)
    c.drawString(58 * mm, 29 * mm, _shorten(c, f"Diserahkan di {cert['venue']}", "Helvetica", 8, code_room))
    c.drawString(58 * mm, 25 * mm, "Periksa keaslian · verify at:")
    c.setFont("Helvetica-Bold", _fit(c, cert["verify_url"], "Helvetica-Bold", 8, code_room))
    c.drawString(58 * mm, 21 * mm, cert["verify_url"])
    c.linkURL(cert["verify_url"], (58 * mm, 19 * mm, 58 * mm + code_room, 24 * mm), relative=0)


def write_results(
    directory: Path,
    year: int,
    ceremony: dict[str, Any] | None,
    categories: list[dict[str, Any]],
    rankings: list[dict[str, Any]],
    announcement: str | None,
    extra_files: dict[str, str] | None = None,
    tracks: TrackResults | None = None,
) -> dict[str, str]:
    """The results page (index.html) and its tables (awards.csv, ranking.csv, and with the
    evaluation tracks evaluations.csv). Scores are shown as published (contracts.published:
    half-up, two decimals); CSV text cells cannot start a spreadsheet formula."""
    directory.mkdir(parents=True, exist_ok=True)
    tracks = tracks or TrackResults()
    awards_csv = directory / "awards.csv"
    with awards_csv.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["award_key", "award_name_id", "award_name_en", "rank", "unit_code", "unit_name", "agency_code", "agency_name", "proposal_id", "title", "group", "score", "certificate_code", "track", "certificate_kind", "grade"])
        for cat in categories:
            for wnr in cat["winners"]:
                out.writerow(
                    csv_row(
                        [
                            cat["key"], cat["name_id"], cat["name_en"], wnr["rank"], wnr["unit_code"], wnr["unit_name"],
                            wnr.get("agency_code") or "", wnr.get("agency_name") or "", wnr.get("proposal_id") or "",
                            wnr.get("title") or "", wnr.get("group") or "", _published(wnr.get("score")), wnr.get("certificate_code") or "",
                            cat.get("track") or "kovablik", wnr.get("certificate_kind") or "award", wnr.get("grade") or "",
                        ]
                    )
                )
    ranking_csv = directory / "ranking.csv"
    with ranking_csv.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["rank", "proposal_id", "title", "group", "unit_code", "agency_code", "score", "jurors", "top_criterion_mean", "tie_break", "juror_scores"])
        for r in rankings:
            ex = r.get("explanation") or {}
            out.writerow(
                csv_row(
                    [
                        r["rank"], r["proposal_id"], r["title"], r["group"], r["unit_code"], r["agency_code"], _published(r.get("score")),
                        r.get("jurors"), ex.get("top_criterion_mean"), ex.get("tie_break", ""), json.dumps(ex.get("jurors", []), ensure_ascii=False),
                    ]
                )
            )
    files = {"html": str(directory / "index.html"), "awards_csv": str(awards_csv), "ranking_csv": str(ranking_csv)}
    if tracks.evaluations:
        files["evaluations_csv"] = str(_evaluations_csv(directory / "evaluations.csv", tracks.evaluations))
    page = directory / "index.html"
    page.write_text(_html(year, ceremony, categories, rankings, announcement, extra_files or {}, tracks), encoding="utf-8")
    return {**files, **(extra_files or {})}


def _parts_text(parts: list[dict[str, Any]]) -> str:
    """A result's parts as one line: name value (of max, or weight), source."""
    out = []
    for p in parts:
        of = f"/{p['max']:g}" if p.get("max") is not None else f" ×{p['weight']:g}" if p.get("weight") is not None else ""
        source = f" ({p['source']})" if p.get("source") else ""
        out.append(f"{p['name']} {score_text(p['value'])}{of}{source}")
    return "; ".join(out)


def _evaluations_csv(path: Path, evaluations: dict[str, list[dict[str, Any]]]) -> Path:
    """Every approved result of each evaluation track, with its parts and who entered and approved it."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["track", "subject_code", "subject_name", "rubric", "total", "grade", "label", "previous_grade", "improvement", "parts", "evaluator_id", "reviewer_id"])
        for track in (t for t in EVALUATION_TRACKS if t in evaluations):
            for r in sorted(evaluations[track], key=lambda r: (-r["total"], r["subject_code"])):
                out.writerow(
                    csv_row(
                        [
                            track, r["subject_code"], r["subject_name"], r["rubric"], _published(r["total"]), r["grade"], r["label"],
                            r.get("previous_grade") or "", "" if r.get("improvement") is None else r["improvement"],
                            _parts_text(r.get("parts") or []), r.get("evaluator_id") or "", r.get("reviewer_id") or "",
                        ]
                    )
                )
    return path


def _published(score: Any) -> Decimal | str:
    """A score cell: the published Decimal (written as 73.01), or empty."""
    value = published_score(score)
    return "" if value is None else value


METHODS: dict[str, tuple[str, str]] = {
    "normalised": (
        "Nilai adalah rata-rata nilai para juri setelah dinormalisasi per juri (skor-z tiap juri dipetakan ke skala tahap), "
        "sehingga juri yang ketat dan juri yang longgar berbobot sama.",
        "The score is the mean over jurors of per-juror z-scores mapped to the stage scale, so a harsh and a lenient juror count alike.",
    ),
    "raw": (
        "Nilai adalah rata-rata nilai mentah tertimbang para juri: tidak ada juri yang menilai 2 proposal atau lebih, sehingga tidak dapat dinormalisasi.",
        "Mean of the jurors' raw weighted totals: none of them scored 2 or more proposals, so none could be normalised.",
    ),
    "mixed": (
        "Rata-rata nilai ternormalisasi; juri yang menilai kurang dari 2 proposal dihitung dengan nilai mentahnya.",
        "Mean of the normalised scores; jurors with fewer than 2 scores count with their raw totals.",
    ),
}
TIE_RULE = (
    "Peringkat seri diputuskan berdasarkan rata-rata kriteria berbobot tertinggi, lalu waktu penerusan yang lebih awal, lalu nomor proposal.",
    "Ties are broken by the mean on the highest-weighted criterion, then the earlier forward, then the proposal id.",
)
TIES: dict[str, tuple[str, str]] = {
    "top_criterion": ("Seri nilai dengan {other}: diputuskan oleh rata-rata kriteria {criterion}", "tie on score with {other}: broken by the mean on {criterion}"),
    "earlier_forward": ("Seri nilai dengan {other}: diputuskan oleh waktu penerusan yang lebih awal", "tie on score with {other}: broken by the earlier forward"),
    "proposal_id": ("Seri dengan {other}: diputuskan oleh nomor proposal", "tie with {other}: broken by proposal id"),
}


def _method_code(explanation: dict[str, Any]) -> str | None:
    code = explanation.get("method_code")
    if code:
        return str(code)
    method = str(explanation.get("method") or "")  # a ranking from before the code was kept
    if method.startswith("mean of the jurors' raw"):
        return "raw"
    if "fewer than 2" in method:
        return "mixed"
    return "normalised" if method.startswith("mean over jurors") else None


def _bilingual(indonesian: str, english: str) -> str:
    e = html.escape
    return f"{e(indonesian)} <span class='en'>({e(english)})</span>" if english.casefold() != indonesian.casefold() else e(indonesian)


def _row_note(explanation: dict[str, Any], common_method: str | None) -> str:
    """What is particular to one ranked row: its ties (naming the proposals tied with), a method
    other than the one stated above the table, and its flags."""
    notes = []
    for tie in explanation.get("ties") or []:
        forms = TIES.get(tie.get("broken_by", ""))
        if forms:
            fill = {"other": tie.get("with", ""), "criterion": tie.get("criterion") or explanation.get("top_criterion", "")}
            notes.append(_bilingual(forms[0].format(**fill), forms[1].format(**fill)))
    if not explanation.get("ties") and explanation.get("tie_break"):
        notes.append(html.escape(str(explanation["tie_break"])))
    code = _method_code(explanation)
    if code and code != common_method and code in METHODS:
        notes.append(_bilingual(*METHODS[code]))
    if "unscored" in (explanation.get("flags") or []):
        notes.append(_bilingual("Belum dinilai", "unscored"))
    return "<br>".join(notes)


def _heading(name_id: str, name_en: str, level: str = "h2") -> str:
    e = html.escape
    en = "" if name_en.casefold() == name_id.casefold() else f" <span class='en'>{e(name_en)}</span>"
    return f"<{level}>{e(name_id)}{en}</{level}>"


STYLE = (
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#12355b;line-height:1.4}"
    "h1{border-bottom:3px solid #b8902f;padding-bottom:.3rem}h2{margin-top:2rem}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}"
    "th,td{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}"
    "th{background:#12355b;color:#fff;font-weight:600}th .en{color:#d7dde6}"
    "td.num,th.num{text-align:right;white-space:nowrap}"
    "code.cert{white-space:nowrap;font-size:.9em;background:#f4f1e6;padding:.1rem .3rem;border-radius:3px}"
    ".en{color:#666;font-style:italic;font-weight:normal}.empty{color:#999}"
    ".note{background:#f7f7f2;border-left:4px solid #b8902f;padding:.5rem .8rem;margin:.5rem 0}"
    ".muted{color:#555;font-size:.9em}"
)


def _th(indonesian: str, english: str = "", cls: str = "") -> str:
    e = html.escape
    attr = f" class='{cls}'" if cls else ""
    return f"<th{attr}>{e(indonesian)}" + (f" <span class='en'>{e(english)}</span>" if english else "") + "</th>"


def _html(
    year: int,
    ceremony: dict[str, Any] | None,
    categories: list[dict[str, Any]],
    rankings: list[dict[str, Any]],
    announcement: str | None,
    extra_files: dict[str, str],
    tracks: TrackResults | None = None,
) -> str:
    e = html.escape
    tracks = tracks or TrackResults()
    parts = [
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Hasil Bureaucracy Fest {year}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Bureaucracy Fest {year} — Hasil Penghargaan <span class='en'>Award results</span></h1>",
    ]
    if ceremony:
        when = ceremony["date"]
        parts.append(f"<p>Penganugerahan <span class='en'>(award ceremony)</span>: {e(tanggal(when))}, {e(ceremony['venue'])}</p>")
    if announcement:
        parts.append(f"<p>Pengumuman <span class='en'>(announcement)</span> No. {e(announcement)}</p>")
    if _by_track(categories, tracks):
        parts += _tracks_html(categories, rankings, tracks)
    else:  # a year of KOVABLIK and WBK alone: the page as it always was
        for cat in categories:
            parts += _category_html(cat)
        if rankings:
            parts += _ranking_html(rankings)
    parts.append(_downloads_html(extra_files, bool(tracks.evaluations)))
    parts.append("</body></html>")
    return "\n".join(parts)


TRACK_ORDER = ("kovablik", "wbk", "kbk", "sakip", "rb", "cettar")


def _by_track(categories: list[dict[str, Any]], tracks: TrackResults) -> bool:
    """Whether the page is grouped by track: when the ceremony has a track beside KOVABLIK and WBK."""
    return bool(tracks.evaluations or tracks.rankings) or any((c.get("track") or "kovablik") in NEW_TRACKS for c in categories)


def _tracks_html(categories: list[dict[str, Any]], rankings: list[dict[str, Any]], tracks: TrackResults) -> list[str]:
    """Every track in turn: its heading, its categories, then its final ranking (the
    competitions) or every approved result with its parts (the evaluation tracks)."""
    parts: list[str] = []
    for track in TRACK_ORDER:
        cats = [c for c in categories if (c.get("track") or "kovablik") == track]
        ranked = rankings if track == "kovablik" else tracks.rankings.get(track) or []
        results = tracks.evaluations.get(track)
        if not (cats or ranked or results):
            continue
        short, full = TRACK_NAMES[track]
        parts.append(f"<section class='track' id='track-{track}'>" + _heading(short, full, "h2"))
        for cat in cats:
            parts += _category_html(cat, "h3")
        if ranked:
            parts += _ranking_html(ranked, "h3", track)
        if results is not None:
            parts += _evaluations_html(track, results)
        parts.append("</section>")
    return parts


def _evaluations_html(track: str, results: list[dict[str, Any]]) -> list[str]:
    """Every approved result of an evaluation track as handed over: grade, total and each part
    with its source (CETTAR's composite shows SAKIP, RB, Zona Integritas and work culture)."""
    e = html.escape
    short = TRACK_NAMES[track][0]
    parts = [_heading(f"Hasil evaluasi {short}", f"{short} evaluation results", "h3")]
    if not results:
        parts.append("<p class='empty'>Tidak ada hasil yang disetujui <span class='en'>(no approved result)</span></p>")
        return parts
    rubrics = sorted({str(r.get("rubric")) for r in results})
    sources = sorted({str(r.get("rubric_source")) for r in results if r.get("rubric_source")})
    parts.append(f"<p class='muted'>Rubrik <span class='en'>(rubric)</span>: {e(', '.join(rubrics))}" + (f" — {e('; '.join(sources))}" if sources else "") + "</p>")
    head = [_th("#", cls="num"), _th("Instansi", "Subject"), _th("Predikat", "Grade"), _th("Nilai", "Total", cls="num"), _th("Bagian", "Parts")]
    if track == "sakip":
        head.append(_th("Tahun lalu", "Last year"))
    parts.append("<div class='scroll'><table><tr>" + "".join(head) + "</tr>")
    for i, r in enumerate(sorted(results, key=lambda r: (-r["total"], r["subject_code"])), start=1):
        part_lines = "<br>".join(e(_parts_text([p])) for p in r.get("parts") or [])
        cells = [
            f"<td class='num'>{i}</td>",
            f"<td>{e(r['subject_name'])}<br><span class='muted'>{e(r['subject_code'])}</span></td>",
            f"<td>{e(r['grade'])} <span class='en'>{e(r.get('label') or '')}</span></td>",
            f"<td class='num'>{score_text(r['total'])}</td>",
            f"<td>{part_lines}</td>",
        ]
        if track == "sakip":
            cells.append(f"<td>{e(r.get('previous_grade') or '—')}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table></div>")
    return parts


def _category_html(cat: dict[str, Any], level: str = "h2") -> list[str]:
    """A category's heading and its winners' table (or why it has none)."""
    e = html.escape
    parts = [_heading(cat["name_id"], cat["name_en"], level)]
    if not cat["winners"]:
        parts.append(f"<p class='empty'>Tidak ada pemenang <span class='en'>(no winner)</span>: {e(cat.get('empty_reason') or '')}</p>")
        return parts
    if (cat.get("track") or "kovablik") in EVALUATION_TRACKS:
        return parts + _graded_table(cat)
    wbk = cat.get("rule") == "layak_wbk"
    kbk = cat.get("track") == "kbk"
    head = [_th("#", cls="num"), _th("Unit"), _th("Perangkat daerah", "Agency")]
    if kbk:
        head += [_th("Risalah", "Report")]
    elif not wbk:
        head += [_th("Inovasi", "Innovation"), _th("Kelompok", "Group")]
    head += [_th("Nilai LKE" if wbk else "Nilai", "LKE total" if wbk else "Score", cls="num"), _th("Kode piagam", "Certificate code")]
    parts.append("<div class='scroll'><table><tr>" + "".join(head) + "</tr>")
    for wnr in cat["winners"]:
        cells = [
            f"<td class='num'>{wnr['rank']}</td>",
            f"<td>{e(wnr['unit_name'])}</td>",
            f"<td>{e(wnr.get('agency_name') or wnr.get('agency_code') or '')}</td>",
        ]
        if kbk:
            cells += [f"<td>{e(wnr.get('title') or '')}</td>"]
        elif not wbk:
            cells += [f"<td>{e(wnr.get('title') or '')}</td>", f"<td>{e(group_label(wnr.get('group')))}</td>"]
        cells += [f"<td class='num'>{score_text(wnr.get('score'))}</td>", f"<td><code class='cert'>{e(wnr.get('certificate_code') or '')}</code></td>"]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table></div>")
    return parts


def _graded_table(cat: dict[str, Any]) -> list[str]:
    """An evaluation track's category: each winner's grade and total."""
    e = html.escape
    head = [_th("#", cls="num"), _th("Instansi", "Subject"), _th("Predikat", "Grade"), _th("Nilai", "Total", cls="num"), _th("Kode piagam", "Certificate code")]
    parts = ["<div class='scroll'><table><tr>" + "".join(head) + "</tr>"]
    for wnr in cat["winners"]:
        parts.append(
            f"<tr><td class='num'>{wnr['rank']}</td><td>{e(wnr['unit_name'])}</td>"
            f"<td>{e(wnr.get('grade') or '')} <span class='en'>{e(wnr.get('grade_label') or '')}</span></td>"
            f"<td class='num'>{score_text(wnr.get('score'))}</td><td><code class='cert'>{e(wnr.get('certificate_code') or '')}</code></td></tr>"
        )
    parts.append("</table></div>")
    return parts


def _ranking_html(rankings: list[dict[str, Any]], level: str = "h2", track: str = "kovablik") -> list[str]:
    """The final ranking: how scores were made, then every row with its notes."""
    e = html.escape
    codes = [_method_code(r.get("explanation") or {}) for r in rankings if r.get("score") is not None]
    common = max(set(codes), key=codes.count) if codes else None
    name = "" if track == "kovablik" else f" {TRACK_NAMES[track][0]}"
    parts = [_heading(f"Peringkat akhir{name}", f"Final ranking{name}", level)]
    note = [_bilingual(*METHODS[common])] if common in METHODS else []
    note.append(_bilingual(*TIE_RULE))
    note.append(_bilingual("Nilai dibulatkan setengah ke atas pada dua desimal.", "Scores are rounded half-up to two decimals."))
    parts.append("<div class='note'>" + "<br>".join(note) + "</div>")
    kbk = track == "kbk"  # a risalah, ranked within its cluster's categories
    what = _th("Risalah", "Report") if kbk else _th("Inovasi", "Innovation")
    kind = _th("Klaster", "Cluster") if kbk else _th("Kelompok", "Group")
    head = [_th("#", cls="num"), what, _th("Unit"), kind, _th("Nilai", "Score", cls="num"), _th("Juri", "Jurors", cls="num"), _th("Catatan", "Note")]
    parts.append("<div class='scroll'><table><tr>" + "".join(head) + "</tr>")
    for r in rankings:
        ex = r.get("explanation") or {}
        sort = r.get("category") or "" if kbk else group_label(r.get("group"))
        parts.append(
            f"<tr><td class='num'>{r['rank']}</td><td>{e(r['title'])}<br><span class='muted'>{e(r['proposal_id'])}</span></td>"
            f"<td>{e(r.get('unit_name') or r['unit_code'])}</td><td>{e(sort)}</td>"
            f"<td class='num'>{score_text(r.get('score'))}</td><td class='num'>{r.get('jurors', '')}</td><td>{_row_note(ex, common)}</td></tr>"
        )
    parts.append("</table></div>")
    return parts


def _downloads_html(extra_files: dict[str, str], evaluations: bool = False) -> str:
    e = html.escape
    links = [("awards.csv", "Pemenang (CSV)", "winners"), ("ranking.csv", "Peringkat (CSV)", "ranking")]
    if evaluations:
        links.append(("evaluations.csv", "Hasil evaluasi (CSV)", "evaluation results"))
    if extra_files.get("public_key"):
        links.append((Path(extra_files["public_key"]).name, "Kunci publik piagam", "certificate public key, Ed25519 PEM"))
    return (
        "<p class='muted'>Unduh <span class='en'>(download)</span>: "
        + " · ".join(f"<a href='{e(href)}'>{e(text)}</a> <span class='en'>({e(en)})</span>" for href, text, en in links)
        + "</p>"
    )
