"""Awards' use cases: each loads through the repositories, asks the domain, and emits what it
caused; printing and publishing (PDF, HTML, CSV, signed records) live in publishing.py."""

from __future__ import annotations

from typing import Any

from contracts.awards import (
    AnnounceAwards,
    AnnouncementView,
    AwardsSummary,
    CertificateView,
    DetermineAwards,
    GetResults,
    ResultsView,
    ValidateAwards,
    VerifyCertificate,
)
from contracts.scoring import ShortlistFinal
from contracts.verification import EvaluationClosed, WbkEvaluated
from services.awards import domain, publishing
from services.awards.domain import Ceremony, TrackResults
from services.awards.publishing import Config, publish_public_key
from services.awards.store import Unit


async def on_shortlist_final(evt: ShortlistFinal, uow: Unit) -> None:
    rows = [r.model_dump(mode="json") for r in evt.rows]
    await uow.shortlists.put(evt.cycle_year, evt.stage, evt.announcement_no, evt.digest, rows)


async def on_wbk_evaluated(evt: WbkEvaluated, uow: Unit) -> None:
    names = {"unit_name": evt.unit_name, "agency_code": evt.agency_code, "agency_name": evt.agency_name}
    await uow.wbk.put(evt.cycle_year, evt.result.unit_code, evt.result.final.value, evt.result.total, names)


async def on_evaluation_closed(evt: EvaluationClosed, uow: Unit) -> None:
    """A track's frozen results (SAKIP, RB, CETTAR), every approved one with its parts."""
    results = [r.model_dump(mode="json") for r in evt.results]
    await uow.evaluations.put(evt.cycle_year, evt.summary.kind.value, evt.summary.model_dump(mode="json"), results)


async def validate_awards(cmd: ValidateAwards, uow: Unit) -> dict[str, Any]:
    domain.check_rules(cmd.rules)
    return {"valid": True, "categories": [r.key for r in cmd.rules]}


async def determine_awards(cmd: DetermineAwards, uow: Unit) -> AwardsSummary:
    done = await uow.ceremonies.get(cmd.cycle_year)
    if done is not None:
        return done.same(cmd.ceremony).summary
    domain.check_rules(cmd.rules)
    layak = await uow.wbk.layak(cmd.cycle_year)
    shortlist = await uow.shortlists.rows(cmd.cycle_year, cmd.final_stage)
    rankings = domain.ready(cmd.final_stage, shortlist, cmd.expected_shortlist, layak, cmd.expected_wbk_layak)
    tracks = await _tracks(cmd, uow)
    categories = domain.determine(cmd.rules, rankings, layak, tracks.rankings, tracks.evaluations)
    directory = Config.results_dir / str(cmd.cycle_year)
    public_key = publish_public_key(directory)
    certificates = [publishing.certificate(cmd, cat, w, uow.now) for cat in categories for w in cat.winners]
    cats = [c.model_dump(mode="json") for c in categories]
    files = publishing.results(directory, cmd, cats, rankings, None, str(public_key), tracks)
    ceremony, events = Ceremony.determine(
        cmd.cycle_year, cmd.ceremony, categories, rankings, files, certificates, str(directory), tracks
    )
    await uow.certificates.add(certificates)
    await uow.ceremonies.add(ceremony)
    uow.emit(*events)
    return ceremony.summary


async def _tracks(cmd: DetermineAwards, uow: Unit) -> TrackResults:
    """What the other enabled tracks bring to the ceremony, once it has all arrived by events
    (``not_ready`` until then): KBK's final shortlist, each evaluation's approved results."""
    out = TrackResults()
    for track, expect in sorted(cmd.tracks.items()):
        if track.value not in domain.NEW_TRACKS:  # KOVABLIK's and WBK's are the command's own fields
            continue
        if track.value in domain.EVALUATION_TRACKS:
            closed = await uow.evaluations.results(cmd.cycle_year, track.value)
            out.evaluations[track.value] = domain.evaluation_ready(track.value, closed, expect.expected_results)
        elif expect.final_stage is not None:
            rows = await uow.shortlists.rows(cmd.cycle_year, expect.final_stage)
            out.rankings[track.value] = domain.competition_ready(expect.final_stage, rows, expect.expected_shortlist)
    return out


async def announce_awards(cmd: AnnounceAwards, uow: Unit) -> AnnouncementView:
    ceremony = domain.determined(await uow.ceremonies.get(cmd.cycle_year), cmd.cycle_year).same(cmd.ceremony)
    if ceremony.state in domain.CEREMONY_TRANSITIONS["announce"]:
        events = ceremony.announce(cmd.ceremony, await uow.ceremonies.next_announcement(cmd.cycle_year))
        directory = Config.results_dir / str(cmd.cycle_year)
        key = ceremony.files.get("public_key") or None
        tracks = TrackResults(ceremony.track_rankings, ceremony.evaluations)
        ceremony.files = publishing.results(
            directory, cmd, ceremony.categories, ceremony.rankings, ceremony.announcement_no, key, tracks
        )
        await uow.ceremonies.save(ceremony)
        uow.emit(*events)
    assert ceremony.announcement_no is not None
    return AnnouncementView(
        cycle_year=cmd.cycle_year, announcement_no=ceremony.announcement_no, ceremony=cmd.ceremony
    )


async def get_results(cmd: GetResults, uow: Unit) -> ResultsView:
    return domain.determined(await uow.ceremonies.get(cmd.cycle_year), cmd.cycle_year).results()


async def verify_certificate(cmd: VerifyCertificate, uow: Unit) -> CertificateView:
    """A code verifies only when its record is signed by this service's key and still says what
    was signed: an invented code is unknown, a record changed after signing fails its signature."""
    cert = await uow.certificates.get(cmd.code.strip().upper())
    if cert is None:
        return domain.unknown_certificate(cmd.code)
    signer = Config.the_signer()
    return cert.verdict(signer.key_id, publishing.signature_holds, Config.verify_url(cert.code))
