"""What the operator's commands do against Temporal: start, status, history, list, extend,
close-stage, cancel. The CLI (``bfest.cli``) only parses arguments and prints."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import decode_search_attributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.cycle import (
    KBK_CALL,
    KBK_VERIFICATION,
    TASK_QUEUE,
    CloseStageNow,
    CycleConfig,
    CycleInput,
    CycleStatus,
    ExtendDeadline,
    workflow_id,
)
from services.common.settings import Settings, get_settings
from workflows.cycle import BFEST_STAGE, BFEST_YEAR, CycleWorkflow
from workflows.worker import connect_temporal

JAKARTA = ZoneInfo("Asia/Jakarta")


class OperatorError(Exception):
    """One clear line for the operator."""


_FRACTION = re.compile(r"(T\d{2}:\d{2}:\d{2})\.\d+")


def to_seconds(text: str) -> str:
    """Instants in a message to the second: the workflow's validators quote its clock exactly."""
    return _FRACTION.sub(r"\1", text)


def state_name(status: WorkflowExecutionStatus | None) -> str:
    """A workflow's state as the cycle says it (Temporal spells one of them "canceled")."""
    if status is None:
        return "ended"
    name = status.name.lower()
    return "cancelled" if name == "canceled" else name


def bfest_command() -> str:
    """How to call ``bfest`` from here: it lives in the virtualenv, which is not on the PATH."""
    import os
    import shutil
    import sys
    from pathlib import Path

    on_path = shutil.which("bfest")
    mine = Path(sys.executable).parent / "bfest"
    if on_path and Path(on_path).resolve() == mine.resolve():
        return "bfest"
    rel = os.path.relpath(mine, Path.cwd())
    return rel if not rel.startswith("..") else str(mine)


def ui_link(settings: Settings, wid: str) -> str:
    return f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{wid}"


def parse_when(text: str) -> dt.datetime:
    """An ISO 8601 date-time; without a zone it is Asia/Jakarta (the cycle's zone)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise OperatorError(f"invalid date-time {text!r}: use ISO 8601, e.g. 2026-06-19T16:00 or 2026-06-19T16:00+07:00") from None
    return value if value.tzinfo else value.replace(tzinfo=JAKARTA)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")


def parse_duration(text: str) -> dt.timedelta:
    """``2m``, ``3h``, ``7d``, ``1d12h``, ``90s``."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise OperatorError(f"invalid duration {text!r}: use e.g. 2m, 3h, 7d or 1d12h")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    total = dt.timedelta()
    for number, u in parts:
        total += dt.timedelta(**{unit[u]: float(number)})
    return total


async def client_for(settings: Settings | None = None) -> Client:
    settings = settings or get_settings()
    try:
        return await connect_temporal(settings)
    except RuntimeError as exc:
        if "refused" not in str(exc).lower():
            raise OperatorError(str(exc)) from None
        raise OperatorError(
            f"Temporal is not reachable at {settings.temporal_address} (connection refused): start the stack with "
            f"`{bfest_command()} dev up` (or `make demo`), or set BFEST_TEMPORAL_ADDRESS"
        ) from None


async def existing(client: Client, year: int) -> WorkflowHandle:
    handle = client.get_workflow_handle(workflow_id(year))
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise OperatorError(f"no cycle for year {year} (workflow {workflow_id(year)} not found); see `{bfest_command()} cycle list`") from None
        raise OperatorError(f"Temporal refused: {exc.message}") from None
    return handle


async def start_cycle(client: Client, config: CycleConfig, task_queue: str = TASK_QUEUE) -> WorkflowHandle:
    wid = workflow_id(config.year)
    try:
        desc = await client.get_workflow_handle(wid).describe()
        if desc.status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED):
            raise OperatorError(
                f"cycle {config.year} already exists ({desc.status.name.lower()}, workflow {wid}); one cycle per year"
            )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise OperatorError(f"Temporal refused: {exc.message}") from None
    try:
        return await client.start_workflow(
            CycleWorkflow.run,
            CycleInput(config=config),
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes([SearchAttributePair(BFEST_YEAR, config.year), SearchAttributePair(BFEST_STAGE, "starting")]),
            memo={"config": config.summary()},
            # What the Temporal UI shows beside the id: the cycle's name, with its year once.
            static_summary=config.name if str(config.year) in config.name else f"{config.name} {config.year}",
        )
    except WorkflowAlreadyStartedError:
        raise OperatorError(f"cycle {config.year} already exists (workflow {wid}); one cycle per year") from None


async def running(client: Client, year: int) -> WorkflowHandle:
    """The cycle of ``year``, if it is still running (an operator's update needs a live cycle)."""
    handle = await existing(client, year)
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        state = state_name(desc.status)
        again = "" if desc.status == WorkflowExecutionStatus.COMPLETED else f" (it can be started again with `{bfest_command()} cycle start`)"
        raise OperatorError(f"cycle {year} is {state}, not running: there is nothing to steer{again}")
    return handle


async def status(client: Client, year: int) -> CycleStatus:
    handle = await existing(client, year)
    try:
        return await handle.query(CycleWorkflow.status)
    except RPCError as exc:
        raise OperatorError(f"cannot read cycle {year}: {exc.message} (is a worker running? `{bfest_command()} worker run`)") from None


async def deadline_of(client: Client, year: int, step: str) -> dt.datetime:
    """The current deadline of ``step`` (the call, verification, or a jury stage) of a running
    cycle: the workflow's, with the operators' extensions, whatever step the cycle is in."""
    handle = await running(client, year)
    st = await status(client, year)
    for view in st.stages:
        if view.key == step:
            return view.deadline
    for track in st.tracks:  # a running track's step: an evaluation's deadline, KBK's current step
        if track.deadline is not None and step in (track.track, track.phase) and track.state == "running":
            return track.deadline
    extended = [a["until"] for a in st.operator_actions if a.get("action") == "extend_deadline" and a.get("stage") == step]
    if extended:
        return dt.datetime.fromisoformat(extended[-1])
    started: list[Any] = []
    async for event in handle.fetch_history_events():  # the first: the config the cycle started with
        started = _decode(client, event.workflow_execution_started_event_attributes.input.payloads)
        break
    config = CycleInput.model_validate(_plain(started[0])).config if started else None
    if config is not None and step == "call":
        return config.call.closes
    if config is not None and step == "verification":
        return config.verification.deadline
    if config is not None and (deadline := _track_deadline(config, step)) is not None:
        return deadline
    known = ", ".join(["call", "verification", *[v.key for v in st.stages], *[t.track for t in st.tracks]])
    raise OperatorError(f"unknown stage {step!r} of cycle {year}; known: {known}")


def _track_deadline(config: CycleConfig, step: str) -> dt.datetime | None:
    """A track's step's deadline as the config set it (sakip, rb, cettar; kbk_call,
    kbk_verification or a KBK stage), or None."""
    evaluation = config.tracks.evaluations().get(step)
    if evaluation is not None:
        return evaluation.deadline
    kbk = config.tracks.kbk
    if kbk is None:
        return None
    steps = {KBK_CALL: kbk.call.closes, KBK_VERIFICATION: kbk.verification.deadline, **{s.key: s.deadline for s in kbk.stages}}
    return steps.get(step)


async def extend(client: Client, year: int, stage: str, until: dt.datetime, reason: str, operator: str) -> str:
    handle = await running(client, year)
    try:
        return await handle.execute_update(
            CycleWorkflow.extend_deadline, ExtendDeadline(stage=stage, until=until, reason=reason, operator=operator)
        )
    except WorkflowUpdateFailedError as exc:
        raise OperatorError(to_seconds(f"extension refused: {getattr(exc.cause, 'message', exc.cause)}")) from None
    except RPCError as exc:
        raise OperatorError(to_seconds(f"extension refused: {exc.message}")) from None


async def close_stage(client: Client, year: int, stage: str, reason: str, operator: str) -> str:
    handle = await running(client, year)
    try:
        return await handle.execute_update(
            CycleWorkflow.close_stage_now, CloseStageNow(stage=stage, reason=reason, operator=operator)
        )
    except WorkflowUpdateFailedError as exc:
        raise OperatorError(to_seconds(f"early close refused: {getattr(exc.cause, 'message', exc.cause)}")) from None
    except RPCError as exc:
        raise OperatorError(to_seconds(f"early close refused: {exc.message}")) from None


async def cancel(client: Client, year: int) -> None:
    await (await running(client, year)).cancel()


def _wib(stamp: Any) -> str:
    """An instant from an update's input, in the cycle's zone like the rest of the history."""
    try:
        return dt.datetime.fromisoformat(str(stamp)).astimezone(JAKARTA).isoformat(timespec="seconds")
    except ValueError:
        return str(stamp)


async def list_cycles(client: Client) -> list[dict[str, Any]]:
    rows = []
    async for wf in client.list_workflows("WorkflowType = 'CycleWorkflow'"):
        attrs = wf.typed_search_attributes
        rows.append(
            {
                "year": attrs.get(BFEST_YEAR),
                "stage": attrs.get(BFEST_STAGE),
                "state": state_name(wf.status),
                "workflow_id": wf.id,
                "run_id": wf.run_id,
                "started": wf.start_time.astimezone(JAKARTA).isoformat(timespec="seconds"),
                "closed": wf.close_time.astimezone(JAKARTA).isoformat(timespec="seconds") if wf.close_time else None,
            }
        )
    rows.sort(key=lambda r: (r["year"] or 0, r["started"]), reverse=True)
    return rows


async def result(client: Client, year: int) -> Any:
    handle = await existing(client, year)
    try:
        return await handle.result()
    except WorkflowFailureError as exc:
        raise OperatorError(f"cycle {year} did not complete: {exc.cause}") from None


# --------------------------------------------------------------------------- history


@dataclass
class Entry:
    at: dt.datetime
    workflow: str
    kind: str
    text: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "workflow": self.workflow, "kind": self.kind, "text": self.text, **self.detail}


def _decode(client: Client, payloads: Any) -> list[Any]:
    try:
        return list(client.data_converter.payload_converter.from_payloads(list(payloads)))
    except Exception:  # noqa: BLE001 - history is read-only: show what can be shown
        return []


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


async def history(client: Client, year: int, children: bool = True) -> list[Entry]:
    """The cycle's timeline, built from the workflow's event history (and its stages' and tracks',
    KBK's stages included)."""
    handle = await existing(client, year)
    entries = await _history_of(client, handle.id, "cycle")
    todo = [e.detail["child"] for e in entries if e.kind == "stage_started"] if children else []
    while todo:
        cid = todo.pop(0)
        child = await _history_of(client, cid, cid.rsplit("-", 1)[-1])
        todo += [e.detail["child"] for e in child if e.kind == "stage_started"]
        entries += child
    entries.sort(key=lambda e: e.at)
    return entries


async def _history_of(client: Client, wid: str, label: str) -> list[Entry]:
    hist = await client.get_workflow_handle(wid).fetch_history()
    out: list[Entry] = []
    scheduled: dict[int, str] = {}
    timers: dict[str, str] = {}
    for ev in hist.events:
        at = ev.event_time.ToDatetime(tzinfo=dt.UTC)
        t = ev.event_type

        def add(kind: str, text: str, **detail: Any) -> None:
            out.append(Entry(at, label, kind, text, detail))

        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            add("started", f"{wid} started")
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attrs = decode_search_attributes(ev.upsert_workflow_search_attributes_event_attributes.search_attributes)
            stage = (attrs.get("BfestStage") or [None])[0]
            if stage:
                add("transition", f"→ {stage}", stage=stage)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = ev.activity_task_scheduled_event_attributes
            scheduled[ev.event_id] = a.activity_type.name
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a = ev.activity_task_completed_event_attributes
            name = scheduled.get(a.scheduled_event_id, "?")
            if name != "publish_cycle_event":
                res = _decode(client, a.result.payloads)
                add("activity", f"{name} done", activity=name, result=_plain(res[0]) if res else None)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = ev.activity_task_started_event_attributes
            if a.attempt > 1:
                name = scheduled.get(a.scheduled_event_id, "?")
                add(
                    "retry",
                    f"{name} succeeded on attempt {a.attempt} (last failure: {a.last_failure.message})",
                    activity=name,
                    attempt=a.attempt,
                    last_failure=a.last_failure.message,
                )
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            a = ev.activity_task_failed_event_attributes
            name = scheduled.get(a.scheduled_event_id, "?")
            add("failure", f"{name} failed: {a.failure.message}", activity=name, error=a.failure.message)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            a = ev.timer_started_event_attributes
            fire = at + a.start_to_fire_timeout.ToTimedelta()
            summary = _decode(client, [ev.user_metadata.summary]) if ev.HasField("user_metadata") and ev.user_metadata.HasField("summary") else []
            what = summary[0] if summary else "timer"
            timers[a.timer_id] = what
            add("timer", f"waiting: {what} (until {fire.astimezone(JAKARTA).isoformat(timespec='seconds')})", until=fire.isoformat(), timer=what)
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            a = ev.timer_fired_event_attributes
            add("timer_fired", f"time reached: {timers.get(a.timer_id, 'timer')}", timer=timers.get(a.timer_id))
        elif t == EventType.EVENT_TYPE_TIMER_CANCELED:
            a = ev.timer_canceled_event_attributes
            add("timer_cancelled", f"wait ended early: {timers.get(a.timer_id, 'timer')}", timer=timers.get(a.timer_id))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            a = ev.workflow_execution_signaled_event_attributes
            args = _decode(client, a.input.payloads)
            said = next((x.get("message") for x in args if isinstance(x, dict) and "message" in x), None)
            if a.signal_name == "stage_attention":
                text = f"waiting for the operator: {said}" if said else "the stage goes on (the operator decided)"
            else:
                text = f"signal {a.signal_name}"
            add("signal", text, signal=a.signal_name, input=[_plain(x) for x in args])
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            a = ev.workflow_execution_update_accepted_event_attributes
            name = a.accepted_request.input.name
            args = _decode(client, a.accepted_request.input.args.payloads)
            arg = args[0] if args else {}
            arg = arg if isinstance(arg, dict) else _plain(arg)
            who, why = arg.get("operator", "?"), arg.get("reason", "")
            extra = f" until {_wib(arg['until'])}" if "until" in arg else ""
            add("update", f"{name} {arg.get('stage', '')}{extra} by {who}: {why}", update=name, input=arg)
        elif t == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            pass
        elif t == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            a = ev.child_workflow_execution_started_event_attributes
            add("stage_started", f"stage workflow {a.workflow_execution.workflow_id} started", child=a.workflow_execution.workflow_id)
        elif t == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            a = ev.child_workflow_execution_completed_event_attributes
            add("stage_done", f"stage workflow {a.workflow_execution.workflow_id} completed", child=a.workflow_execution.workflow_id)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            add("cancel_requested", "cancellation requested")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            results = _decode(client, ev.workflow_execution_completed_event_attributes.result.payloads)
            warnings = [w for r in results if isinstance(r, dict) for w in r.get("warnings") or []]
            add("completed", f"{wid} completed" + "".join(f"; warning: {w}" for w in warnings), warnings=warnings)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            a = ev.workflow_execution_failed_event_attributes
            add("failed", f"{wid} failed: {a.failure.message}", error=a.failure.message)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
            add("cancelled", f"{wid} cancelled")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            add("terminated", f"{wid} terminated")
    return out


def entries_json(entries: list[Entry]) -> str:
    return json.dumps([e.as_json() for e in entries], ensure_ascii=False, default=str)
