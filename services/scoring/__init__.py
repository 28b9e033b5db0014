"""Scoring: the juror pool, conflict-aware assignment per jury stage, weighted scores with
revisions, divergence handling, normalised ranking, numbered shortlists and public objections."""
