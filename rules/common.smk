# Shared set-up of the workflow: validated config, the clock, the session and
# slots being built, and the one command every task rule runs.
import os
import sys

from orchestrator import workflow_support as support
from orchestrator.clock import clock_for
from orchestrator.config import write_effective_config
from orchestrator.market_calendar import load_calendar

# A user's mistake (bad config, a session that is no trading day, a date past the
# calendar's range) stops here with one line naming it, not a traceback.
with support.exit_on_user_error():
    PIPELINE = support.pipeline_config(config, workflow.configfiles)
    CONFIG_JSON = write_effective_config(PIPELINE)
    CALENDAR = load_calendar(PIPELINE.calendar_name, PIPELINE.cache_dir)
    NOW = clock_for(PIPELINE.now)()
    SESSION = support.session_of_run(PIPELINE, CALENDAR, NOW)

# What every task runs is the task runner (timeout, retries, status, sentinel). The
# sentinel path names the task, session and slot, so one command serves all rules.
# The command text never changes with the config (Snakemake would re-run on a
# "code change"): the settings reach the jobs through the environment.
# `snakemake --lint` wants a conda env or container per task; every task runs
# in the project's own virtualenv (sys.executable), so that lint is left standing.
os.environ["ORCHESTRATOR_CONFIG_JSON"] = str(CONFIG_JSON)


envvars:
    "ORCHESTRATOR_CONFIG_JSON",


RUN_TASK = (
    f"{sys.executable} -m orchestrator.task_runner"
    " --output {output} --input {input} > {log} 2>&1"
)


wildcard_constraints:
    session=r"\d{4}-\d{2}-\d{2}",
    slot=r"\d{4}",


def get_daily_targets():
    """Sentinels of every daily task for the session of this run."""
    return support.daily_targets(PIPELINE, SESSION)


def get_intraday_targets():
    """Current-slot sentinels of the intraday tasks in scope now (none when closed)."""
    return support.intraday_targets(PIPELINE, CALENDAR, NOW)


def get_upstream_slot(upstream):
    """Input function: ``upstream``'s sentinel for the slot a dependent reads."""

    def upstream_target(wildcards):
        slot = support.upstream_slot(PIPELINE, upstream, wildcards.slot)
        return support.intraday_target(wildcards.session, upstream, slot)

    upstream_target.task = upstream  # read by support.task_dependencies
    return upstream_target


def register_task_rules():
    """Every task has a rule and every rule a task; record who depends on whom."""
    with support.exit_on_user_error():
        support.check_rules_match_config(PIPELINE, [r.name for r in workflow.rules])
    support.record_dependencies(
        PIPELINE.dependencies_file, support.task_dependencies(workflow.rules)
    )


onsuccess:
    support.end_of_run(PIPELINE.state_dir)


onerror:
    support.end_of_run(PIPELINE.state_dir)
