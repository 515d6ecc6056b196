"""lth: the Lottery Ticket Hypothesis replication DAG.

snakemake report --cores all                       # default experiment, to the report
snakemake report --cores 8 --resources gpu=1       # GPU box (target before --resources)
snakemake report --workflow-profile profiles/slurm # SLURM cluster
snakemake report --configfile workflow/presets/lth_lenet_mnist.yaml --cores all
"""

from snakemake.utils import min_version, validate

min_version("9.0")

# A --configfile replaces the default experiment instead of merging into it, so a preset
# runs exactly the experiments it declares.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/validate.smk"


check_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
validate(config, "workflow/schemas/config.schema.yaml")  # fills in the schema's defaults


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        report_targets(),
        expand("results/{exp}/similarity.csv", exp=EXPERIMENTS),


rule report:
    input:
        report_targets(),
        expand("results/{exp}/similarity.csv", exp=EXPERIMENTS),
