# Config validation with one readable line naming the offending key (Snakemake's own
# validate, which then fills in the defaults, prints the whole schema on an error).
import sys

import jsonschema
import yaml


def check_config(cfg, schema_path):
    """Exit with one line naming the first key that breaks the schema."""
    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        first = errors[0]
        key = ".".join(map(str, first.absolute_path)) or "(top level)"
        sys.exit(f"lth: config error at {key}: {first.message}")
