"""What the awards service writes: the certificate (piagam penghargaan) as PDF, and the results
page (HTML) and tables (CSV)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from services.awards.domain import tanggal

JAKARTA = ZoneInfo("Asia/Jakarta")
NAVY = colors.HexColor("#12355b")
GOLD = colors.HexColor("#b8902f")


def _fit(c: canvas.Canvas, text: str, font: str, size: float, width: float) -> float:
    while size > 8 and c.stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def certificate_pdf(path: Path, cert: dict[str, Any]) -> None:
    """A landscape A4 piagam: gold and navy frame, the award, the recipient, the innovation, the
    ceremony's place and date, a signature block, and the verification code with its QR code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    w, h = landscape(A4)
    c = canvas.Canvas(buf, pagesize=(w, h))
    c.setTitle(f"Piagam Penghargaan — {cert['recipient']}")
    c.setAuthor("Pemerintah Provinsi Jawa Timur — Bureaucracy Fest")
    c.setSubject(f"{cert['award_name_id']} {cert['year']}")
    c.setCreator("Bureaucracy Fest platform — awards service")
    # frame
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
    # heading
    c.setFillColor(NAVY)
    c.setFont("Helvetica-Bold", 13)
    c.drawCentredString(w / 2, h - 34 * mm, "PEMERINTAH PROVINSI JAWA TIMUR")
    c.setFont("Helvetica", 10.5)
    c.drawCentredString(w / 2, h - 40 * mm, f"Bureaucracy Fest {cert['year']} · KOVABLIK — Kompetisi Inovasi Pelayanan Publik Jawa Timur")
    c.setFillColor(GOLD)
    c.setFont("Times-Bold", 38)
    c.drawCentredString(w / 2, h - 60 * mm, "PIAGAM PENGHARGAAN")
    c.setFont("Times-Italic", 13)
    c.setFillColor(NAVY)
    c.drawCentredString(w / 2, h - 67 * mm, "Certificate of Award")
    c.setFont("Helvetica", 12)
    c.drawCentredString(w / 2, h - 80 * mm, "diberikan kepada · presented to")
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
    c.drawCentredString(w / 2, y, "atas prestasinya sebagai · for its achievement as")
    y -= 10 * mm
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
        title = f"Inovasi: “{cert['title']}”"
        c.setFont("Times-Italic", _fit(c, title, "Times-Italic", 15, w - 70 * mm))
        c.drawCentredString(w / 2, y, title)
    # place, date, signature
    c.setFont("Helvetica", 11)
    c.drawString(w - 120 * mm, 52 * mm, f"{cert['venue_city']}, {cert['date_id']}")
    c.drawString(w - 120 * mm, 46 * mm, f"{cert.get('signed_by') or 'Gubernur Jawa Timur'},")
    c.setStrokeColor(NAVY)
    c.setLineWidth(0.8)
    c.line(w - 120 * mm, 30 * mm, w - 45 * mm, 30 * mm)
    if cert.get("signer_name"):
        c.setFont("Helvetica-Bold", 11)
        c.drawString(w - 120 * mm, 25 * mm, cert["signer_name"])
    # verification
    widget = QrCodeWidget(cert["verify_uri"])
    bx = widget.getBounds()
    side = 27 * mm
    d = Drawing(side, side, transform=[side / (bx[2] - bx[0]), 0, 0, side / (bx[3] - bx[1]), 0, 0])
    d.add(widget)
    renderPDF.draw(d, c, 27 * mm, 24 * mm)
    c.setFont("Helvetica", 8.5)
    c.drawString(58 * mm, 42 * mm, "Kode verifikasi · verification code")
    c.setFont("Courier-Bold", 13)
    c.drawString(58 * mm, 35 * mm, cert["code"])
    c.setFont("Helvetica", 8)
    c.drawString(58 * mm, 29 * mm, f"Diserahkan di {cert['venue']}")
    c.drawString(58 * mm, 25 * mm, "verify: bfest.awards.cmd.verify_certificate")
    c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())


def write_results(directory: Path, year: int, ceremony: dict[str, Any] | None, categories: list[dict[str, Any]], rankings: list[dict[str, Any]], announcement: str | None) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    awards_csv = directory / "awards.csv"
    with awards_csv.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["award_key", "award_name_id", "award_name_en", "rank", "unit_code", "unit_name", "agency_code", "proposal_id", "title", "group", "score", "certificate_code"])
        for cat in categories:
            for wnr in cat["winners"]:
                out.writerow([cat["key"], cat["name_id"], cat["name_en"], wnr["rank"], wnr["unit_code"], wnr["unit_name"], wnr.get("agency_code") or "", wnr.get("proposal_id") or "", wnr.get("title") or "", wnr.get("group") or "", wnr.get("score") if wnr.get("score") is not None else "", wnr.get("certificate_code") or ""])
    ranking_csv = directory / "ranking.csv"
    with ranking_csv.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["rank", "proposal_id", "title", "group", "unit_code", "agency_code", "score", "jurors", "top_criterion_mean", "tie_break", "juror_scores"])
        for r in rankings:
            ex = r.get("explanation") or {}
            out.writerow([r["rank"], r["proposal_id"], r["title"], r["group"], r["unit_code"], r["agency_code"], r.get("score"), r.get("jurors"), ex.get("top_criterion_mean"), ex.get("tie_break", ""), json.dumps(ex.get("jurors", []), ensure_ascii=False)])
    page = directory / "index.html"
    page.write_text(_html(year, ceremony, categories, rankings, announcement), encoding="utf-8")
    return {"html": str(page), "awards_csv": str(awards_csv), "ranking_csv": str(ranking_csv)}


def _html(year: int, ceremony: dict[str, Any] | None, categories: list[dict[str, Any]], rankings: list[dict[str, Any]], announcement: str | None) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>",
        f"<title>Hasil Bureaucracy Fest {year}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2rem auto;color:#12355b}"
        "h1{border-bottom:3px solid #b8902f}table{border-collapse:collapse;width:100%;margin:1rem 0}"
        "th,td{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}th{background:#12355b;color:#fff}"
        ".en{color:#666;font-style:italic}.empty{color:#999}</style></head><body>",
        f"<h1>Bureaucracy Fest {year} — Hasil Penghargaan <span class='en'>(Award results)</span></h1>",
    ]
    if ceremony:
        when = ceremony["date"]
        parts.append(f"<p>Penganugerahan (ceremony): {e(tanggal(when))}, {e(ceremony['venue'])}</p>")
    if announcement:
        parts.append(f"<p>Pengumuman No. {e(announcement)}</p>")
    for cat in categories:
        parts.append(f"<h2>{e(cat['name_id'])} <span class='en'>{e(cat['name_en'])}</span></h2>")
        if not cat["winners"]:
            parts.append(f"<p class='empty'>Tidak ada pemenang (no winner): {e(cat.get('empty_reason') or '')}</p>")
            continue
        parts.append("<table><tr><th>#</th><th>Unit</th><th>Perangkat daerah (agency)</th><th>Inovasi (innovation)</th><th>Nilai (score)</th><th>Kode piagam</th></tr>")
        for wnr in cat["winners"]:
            score = "" if wnr.get("score") is None else f"{wnr['score']:.2f}"
            parts.append(
                f"<tr><td>{wnr['rank']}</td><td>{e(wnr['unit_name'])}</td><td>{e(wnr.get('agency_name') or wnr.get('agency_code') or '')}</td>"
                f"<td>{e(wnr.get('title') or '')}</td><td>{score}</td><td><code>{e(wnr.get('certificate_code') or '')}</code></td></tr>"
            )
        parts.append("</table>")
    if rankings:
        parts.append("<h2>Peringkat akhir <span class='en'>Final ranking</span></h2><table><tr><th>#</th><th>Inovasi</th><th>Kelompok</th><th>Nilai</th><th>Juri</th><th>Keterangan (explanation)</th></tr>")
        for r in rankings:
            ex = r.get("explanation") or {}
            score = "" if r.get("score") is None else f"{r['score']:.2f}"
            parts.append(
                f"<tr><td>{r['rank']}</td><td>{e(r['title'])}</td><td>{e(r['group'])}</td><td>{score}</td>"
                f"<td>{r.get('jurors', '')}</td><td>{e(ex.get('tie_break', ex.get('method', '')))}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
