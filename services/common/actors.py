"""The acting person of a command: read from the ``Bfest-Actor`` header, which only the portal and
the operator's identities may send on person commands (the server's permissions guarantee it, see
authz.py), and checked against the command's ``ACTING`` rule before any handler runs: the role may
do the act, and the payload field that names the actor names this actor."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from contracts.base import ACTOR_HEADER, STAFF, Actor, Command, ErrorCode
from services.common.errors import DomainError


def actor_from_headers(headers: Mapping[str, str] | None) -> Actor | None:
    """The actor a message names, ``None`` when it names none; a header that is not an actor is
    refused (``invalid_actor``)."""
    raw = (headers or {}).get(ACTOR_HEADER)
    if raw is None:
        return None
    try:
        return Actor.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(header)'}: {e['msg']}" for e in exc.errors())
        raise DomainError(
            ErrorCode.INVALID_ACTOR,
            f'the {ACTOR_HEADER} header must be {{"id": …, "role": …}}: {problems}',
        ) from None


def check_actor(cmd: Command, actor: Actor | None) -> None:
    """Refuse (``DomainError``) a person's command whose actor is missing, in a role that may not
    do it, or not the one its payload names; a restricted read made for a person in a role that
    may not see it."""
    rule = type(cmd).ACTING
    if rule is not None:
        if actor is None:
            raise DomainError(
                ErrorCode.ACTOR_REQUIRED,
                f"{cmd.NAME} is a person's act: send it with the {ACTOR_HEADER} header naming who acts",
            )
        if actor.role not in rule.roles:
            raise DomainError(
                rule.role_refusal,
                f"a {actor.role.value} may not {cmd.NAME.replace('_', ' ')} "
                f"(only: {', '.join(r.value for r in rule.roles)})",
                {"actor": actor.model_dump(mode="json")},
            )
        if rule.field is not None:
            named = getattr(cmd, rule.field)
            if named != actor.id:
                raise DomainError(
                    rule.mismatch_refusal,
                    f"{rule.field} {named} is not the acting {actor.role.value} {actor.id}",
                    {"field": rule.field, "payload": named, "actor": actor.model_dump(mode="json")},
                )
    readers = type(cmd).restricted_readers(cmd)
    if readers is not None and actor is not None and actor.role not in readers:
        raise DomainError(
            ErrorCode.NOT_ALLOWED_TO_READ,
            f"a {actor.role.value} may not read this ({cmd.NAME}); only: {', '.join(r.value for r in readers)}",
        )
    own = getattr(type(cmd), "OWN_READER_FIELD", None)  # a read of one person's own data
    if own is not None and actor is not None and actor.role not in STAFF and getattr(cmd, own) != actor.id:
        raise DomainError(
            ErrorCode.NOT_ALLOWED_TO_READ,
            f"a {actor.role.value} may read only their own ({cmd.NAME}: {own} {getattr(cmd, own)} is not {actor.id})",
        )
