"""A juror declares a conflict of interest on the scoring page, on a real nats-server with the
real scoring service: the reason is required (refused next to the field, the input kept), the
command goes as the signed-in juror (not a form's juror id), the assignment leaves their list and
goes to another juror; declaring on a proposal already scored is refused in Indonesian; with no
scoring service answering, the page says the service is not available and keeps the reason."""

from __future__ import annotations

from contracts.scoring import DeclareConflict
from services.portal.accounts import Role
from services.scoring.app import create_app as scoring_app
from tests.portal.support import account, csrf_of, logged_in, portal
from tests.scoring.test_service import YEAR as SCORING_YEAR
from tests.scoring.test_service import cmd as scoring_cmd
from tests.scoring.test_service import open_desk_stage
from tests.support import request, running


async def _holders(nc, pid: str) -> set[str]:  # type: ignore[no-untyped-def]
    status = (await request(nc, scoring_cmd("stage_status"), {"cycle_year": SCORING_YEAR, "stage": "desk", "per_juror": True}))["data"]
    return {j["juror_id"] for j in status["per_juror"] if pid in j["missing"]}


async def test_a_juror_declares_a_conflict_on_the_scoring_page(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    async with running(scoring_app(), nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"):
        plan = await open_desk_stage(nc, js)
        juror = plan[0][0]
        mine = [p for j, p in plan if j == juror]
        pid, scored = mine[0], mine[1]
        other = next(j for j, _ in plan if j != juror)
        async with portal(nats_url, tmp_path, SCORING_YEAR) as app:
            await account(app, Role.JUROR, juror, "Juri Satu")
            async with logged_in(app, juror) as c:
                form = await c.get(f"/juror/desk/{pid}")
                assert "Nyatakan konflik kepentingan" in form.text and f'action="/juror/desk/{pid}/conflict"' in form.text
                token = csrf_of(form.text)
                empty = await c.post(f"/juror/desk/{pid}/conflict", data={"csrf_token": token, "reason": "x"})
                assert empty.status_code == 400 and "minimal 3 karakter" in empty.text and 'id="conflict_reason-error"' in empty.text
                assert ">x</textarea>" in empty.text  # the input stays
                assert juror in await _holders(nc, pid)  # nothing changed
                ok = await c.post(f"/juror/desk/{pid}/conflict", data={"csrf_token": token, "reason": "Saudara kandung kepala unit", "juror_id": other})
                assert ok.status_code == 303 and ok.headers["location"] == f"/juror?notice=conflict:{pid}"
                home = await c.get(ok.headers["location"])
                assert "Konflik kepentingan atas" in home.text and f"/juror/desk/{pid}" not in home.text
                assert (await c.get(f"/juror/desk/{pid}")).status_code == 404  # no longer theirs
                # a proposal already scored: refused, the reason kept
                assert (await c.post(f"/juror/desk/{scored}", data={"csrf_token": token, "score__mutu": "8", "score__dampak": "7"})).status_code == 303
                late = await c.post(f"/juror/desk/{scored}/conflict", data={"csrf_token": token, "reason": "Baru ingat hubungan keluarga"})
                assert late.status_code == 400 and "sudah menilai proposal ini" in late.text and "Baru ingat hubungan keluarga" in late.text
                # through the JSON API: another juror's assignment is not theirs to give back
                theirs = next(p for j, p in plan if j == other and p not in mine)
                api = await c.post(f"/api/juror/conflicts/desk/{theirs}", json={"reason": "Kenal dekat"}, headers={"X-CSRF-Token": token})
                assert api.json()["error"]["code"] == "not_assigned"
        assert juror not in await _holders(nc, pid)  # the assignment moved on
        declared = await request(nc, scoring_cmd("juror_assignments"), {"cycle_year": SCORING_YEAR, "juror_id": juror})
        assert pid not in {a["proposal_id"] for s in declared["data"]["stages"] for a in s["assignments"]}


async def test_a_scoring_service_without_the_handler_is_said_to_be_not_available(nats_url, nc, js, tmp_path):  # type: ignore[no-untyped-def]
    """The scoring service as it was before declare_conflict: it shows the assignments, nobody
    answers the declaration; the page says the service does not take it yet, the reason stays."""
    service = scoring_app()
    del service._commands[DeclareConflict.subject()]
    async with running(service, nats_url, f"sqlite+aiosqlite:///{tmp_path / 's.db'}"):
        plan = await open_desk_stage(nc, js)
        juror, pid = plan[0]
        async with portal(nats_url, tmp_path, SCORING_YEAR) as app:
            await account(app, Role.JUROR, juror)
            async with logged_in(app, juror) as c:
                form = await c.get(f"/juror/desk/{pid}")
                down = await c.post(f"/juror/desk/{pid}/conflict", data={"csrf_token": csrf_of(form.text), "reason": "Saudara kandung kepala unit"})
                assert down.status_code == 409 and "belum tersedia" in down.text and 'id="conflict-alert"' in down.text
                assert "Saudara kandung kepala unit" in down.text
        assert juror in await _holders(nc, pid)
