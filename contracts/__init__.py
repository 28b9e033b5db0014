"""Typed contracts shared by every service and the workflows: commands, events, value types,
the reply envelope and subject names. Plain pydantic; no I/O.

Importing :mod:`contracts.catalogue` registers every command and event."""
