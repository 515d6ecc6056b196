"""core: what every method stands on. Data, models (built from one table of model facts),
masks, the one reference training loop and the cohort engine, files, provenance, seeding."""
