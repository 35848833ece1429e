"""Releases, the staged rollout state machine and the canary analysis."""
