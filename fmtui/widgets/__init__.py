"""Widgets of the fmtui app: one file per pane or chart."""
