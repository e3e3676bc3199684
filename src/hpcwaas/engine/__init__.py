"""Orchestration: runs executions, schedules their steps, cancels and recovers them."""
