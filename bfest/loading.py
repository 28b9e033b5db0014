"""Loading participants and jurors into the running services (``bfest participants import``,
``bfest jurors import``): read the file, send the import commands in chunks over NATS."""

from __future__ import annotations

from pathlib import Path

from bfest.operator import OperatorError, bfest_command
from contracts.registration import ImportParticipants
from contracts.scoring import ImportJurors
from services.common.messaging import CommandClient, CommandError
from services.common.settings import get_settings

CHUNK = 500


async def _client() -> CommandClient:
    url = get_settings().nats_url
    try:
        return await CommandClient.connect(url, timeout=30)
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        raise OperatorError(f"NATS is not reachable at {url}: {exc.__class__.__name__} (is `{bfest_command()} dev up` running?)") from None


async def import_participants(path: Path | None) -> int:
    from bfest.files.participants import load_default_participants, read_participants_file

    try:
        participants = read_participants_file(path) if path else load_default_participants()
    except FileNotFoundError:
        raise OperatorError(f"no such file: {path}") from None
    except ValueError as exc:
        raise OperatorError(f"{path}: {exc}") from None
    # Agencies first, so every unit finds its parent.
    participants.sort(key=lambda p: p.parent_code is not None)
    client = await _client()
    try:
        for i in range(0, len(participants), CHUNK):
            chunk = participants[i : i + CHUNK]
            await client.call(ImportParticipants(participants=chunk))
    except CommandError as exc:
        raise OperatorError(f"import refused: {exc.message}") from None
    finally:
        await client.close()
    return len(participants)


async def import_jurors(path: Path) -> int:
    from bfest.files.jurors import read_jurors_file

    try:
        jurors = read_jurors_file(path)
    except FileNotFoundError:
        raise OperatorError(f"no such file: {path}") from None
    except ValueError as exc:
        raise OperatorError(f"{path}: {exc}") from None
    client = await _client()
    try:
        for i in range(0, len(jurors), CHUNK):
            await client.call(ImportJurors(jurors=jurors[i : i + CHUNK]))
    except CommandError as exc:
        raise OperatorError(f"import refused: {exc.message}") from None
    finally:
        await client.close()
    return len(jurors)
