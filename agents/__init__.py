"""Thin agents: record requests from the exports topic, run exports one at a time."""
