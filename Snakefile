# Market-data pipeline: daily and intraday families of period-stamped targets.
# Run `snakemake daily --cores 4`, `snakemake intraday`, or `snakemake -n` to preview.
from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/daily.smk"
include: "rules/intraday.smk"


register_task_rules()


rule daily:
    default_target: True
    input:
        get_daily_targets(),


rule intraday:
    input:
        get_intraday_targets(),
