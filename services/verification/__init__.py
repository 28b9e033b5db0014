"""Verification: the administrative check of every forwarded proposal, the WBK (Zona Integritas)
evaluation of nominated units against versioned thresholds, and human verifiers' overrides."""
