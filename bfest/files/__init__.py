"""The import files the operator reads (participants, jurors): their formats belong with the CLI,
which sends what it read to the services over NATS and imports none of their code."""
