# Config validation before any job, with one readable line naming the offending key: the
# schema first (Snakemake's own validate, which then fills in the defaults, prints the whole
# schema on an error), then the consistency of the values with each other, the model, the
# dataset and the files they name (lth.plan.config_checks, torch-free).
import sys

sys.path.insert(0, f"{workflow.basedir}/src")
from lth.plan.config_checks import first_problem  # noqa: E402  (torch-free)


def check_config(cfg, schema_path):
    """Exit with one line naming the first key that breaks the schema or disagrees with the
    rest of the config; `cfg` itself is left as it is."""
    problem = first_problem(cfg, schema_path)
    if problem:
        key, message = problem
        sys.exit(f"lth: config error at {key}: {message}")
