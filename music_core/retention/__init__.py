"""Retention, orphan sweep and duplicate handling: plan (read-only) first, then execute the plan."""
