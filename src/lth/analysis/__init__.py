"""analysis: the tables computed from the trained networks (summary, cost, similarity)."""
