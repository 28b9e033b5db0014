"""Temporal orchestration: CycleWorkflow (one per year), JuryStageWorkflow (one per jury stage),
the activities that send the services' commands, the bridge, and the worker."""
