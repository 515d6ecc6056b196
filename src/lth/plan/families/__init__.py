"""The method families, one module each, each declaring `FAMILY` (lth.plan.registry.Family):
its run folders, rules and config checks. lth.plan.registry finds them here."""
