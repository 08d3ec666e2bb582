"""Customer value scoring, cross-sell and up-sell offers, and their outcomes (issue 7)."""
