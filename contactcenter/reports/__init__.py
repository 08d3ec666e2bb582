"""Supervisor figures: wallboard, reports, CSAT surveys and Erlang C staffing (issue 11)."""
