"""lth: replicate the Lottery Ticket Hypothesis and compare the pruning methods around it."""

__version__ = "0.1.0"
