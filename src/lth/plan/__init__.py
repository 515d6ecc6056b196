"""plan: torch-free. The typed job specs, the catalog of model and schedule facts, the method
registry and the config checks; importable without Snakemake or PyTorch."""
