"""The operator's read-only dashboard reads the cycle workflow's ``status`` query (here a stand-in
workflow with the real id and query name, on Temporal's test server) and says so in one line when
a year has no cycle."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from services.portal.accounts import Role
from tests.portal.support import account, logged_in, portal

YEAR = 2040


@workflow.defn(name="PortalStatusStandIn")
class StatusStandIn:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {"year": YEAR, "phase": "jury", "stage": "desk", "deadline": "2040-06-12T16:00:00+07:00", "counts": {"forwarded": 71}, "attention": None, "operator_actions": []}


async def test_the_dashboard_shows_the_cycle_status_and_links_the_temporal_ui(nats_url, tmp_path, temporal_env):  # type: ignore[no-untyped-def]
    queue = f"portal-{uuid.uuid4().hex[:8]}"
    # unsandboxed: this test module imports the portal, which a workflow sandbox would refuse
    async with Worker(temporal_env.client, task_queue=queue, workflows=[StatusStandIn], workflow_runner=UnsandboxedWorkflowRunner()):
        async with portal(nats_url, tmp_path, YEAR) as app:
            app.state.temporal = temporal_env.client
            await account(app, Role.OPERATOR, "biro-org")
            async with logged_in(app, "biro-org") as c:
                missing = await c.get("/operator")
                assert missing.status_code == 200 and f"Belum ada siklus {YEAR}" in missing.text
                real = await temporal_env.client.start_workflow(StatusStandIn.run, id=f"bfest-cycle-{YEAR}", task_queue=queue)
                page = await c.get("/operator")
                assert 'id="phase">jury<' in page.text and "desk" in page.text and "forwarded" in page.text
                assert f"/namespaces/default/workflows/bfest-cycle-{YEAR}" in page.text
                api = (await c.get("/api/operator/status")).json()
                assert api["ok"] and api["data"]["phase"] == "jury"
                await real.terminate()
