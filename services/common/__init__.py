"""Shared infrastructure glue for every service: settings, logging, database and its schema
migrations, outbox/inbox, the command/event runtime, the NATS command client. No domain code
lives here."""
