# Market-data pipeline: daily and intraday families of period-stamped targets.
# Run `snakemake daily --cores 4`, `snakemake intraday`, or `snakemake -n` to preview.
# The tasks and their dependencies are declared in config.yaml; rules/tasks.smk
# makes a rule of each. Rules of your own go in another rules/*.smk file.
from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/tasks.smk"


rule daily:
    default_target: True
    input:
        get_daily_targets(),


rule intraday:
    input:
        get_intraday_targets(),
