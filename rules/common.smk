# Shared set-up of the workflow: the validated pipeline model, the clock, the
# session and slots being built, this run's id, and the command every task runs.
import os
import sys
from datetime import date

from orchestrator import task_launcher
from orchestrator import workflow_support as support
from orchestrator.clock import clock_for
from orchestrator.config import write_effective_config
from orchestrator.market_calendar import load_calendar
from orchestrator.pipeline import Period, check_period_is_due, session_of_run
from orchestrator.state_check import check_state

# A user's mistake (bad config, unusable state/, a session that is no trading day,
# a date past the calendar's range) stops here with one line naming it, not a traceback.
with support.exit_on_user_error():
    PIPELINE_CONFIG = support.pipeline_config(config, workflow)
    PIPELINE = PIPELINE_CONFIG.pipeline
    if workflow.is_main_process:
        check_state(PIPELINE_CONFIG)
    CALENDAR = load_calendar(PIPELINE_CONFIG.calendar_name, PIPELINE_CONFIG.cache_dir)
    NOW = clock_for(PIPELINE_CONFIG.now)()
    SESSION = session_of_run(CALENDAR, NOW, PIPELINE_CONFIG.session)

# The settings and the run id reach the jobs through the environment: the
# command text never changes with the config (Snakemake would re-run every task
# on a "code change"), and each run's end hook handles only its own failures.
os.environ["ORCHESTRATOR_CONFIG_JSON"] = str(write_effective_config(PIPELINE_CONFIG))
RUN_ID = support.run_id(workflow.is_main_process)
os.environ[support.RUN_ID_VARIABLE] = RUN_ID


envvars:
    "ORCHESTRATOR_CONFIG_JSON",
    "ORCHESTRATOR_RUN_ID",


# Every task runs the task runner (timeout, retries, status, sentinel), told
# the task (its rule's name) and the period (the rule's wildcards), through its
# launcher: under the orchestrator's worker it is forked ready-imported. The
# launcher needs only the standard library: `-I -S` skip `site` (~50 ms a job).
# `snakemake --lint` wants a conda env or container per task; every task runs
# in the project's own virtualenv (sys.executable), so that lint is left standing.
# These two take no `params:`: Snakemake imports pandas (0.5 s) to compare the
# params of any job that has them, and a daily run otherwise never needs it.
# `{rule}` is the job's rule name, a local of every rule's shell command; lint
# calls it "a variable from outside of the rule", as it knows only the directives.
LAUNCH_TASK_RUNNER = f"{sys.executable} -I -S {task_launcher.__file__}"
RUN_TASK = LAUNCH_TASK_RUNNER + (
    " --task {rule} --session {wildcards.session} 2> {log}"
)
RUN_SLOT_TASK = LAUNCH_TASK_RUNNER + (
    " --task {rule} --session {wildcards.session} --slot {wildcards.slot} 2> {log}"
)


# A shard runs the task runner on its part of the universe; the join only reads
# the shards' sentinels, so it runs where Snakemake runs (localrule), never as a job.
RUN_SHARD = LAUNCH_TASK_RUNNER + (
    " --task {params.task} --session {wildcards.session} {params.shard} 2> {log}"
)
RUN_JOIN = (
    f"{sys.executable} -m orchestrator.task_runner"
    " --task {params.task} --session {wildcards.session} --join 2> {log}"
)


def get_shard_argument(task):
    """``--shard INDEX/COUNT`` of one shard job of ``task``."""
    count = PIPELINE.task(task).shards

    def shard_argument(wildcards):
        return f"--shard {wildcards.shard}/{count}"

    return shard_argument


def get_shard_targets(task):
    """Input function of ``task``'s join: the sentinels of all its shards.

    The join is where Snakemake first meets a sharded task's session: a join
    sentinel whose data is gone from the market database is removed here,
    with the shards' sentinels, before Snakemake looks at the shards.
    """

    def shard_targets(wildcards):
        if workflow.is_main_process:
            with support.exit_on_user_error():
                session = date.fromisoformat(wildcards.session)
            support.forget_sentinel_without_data(
                PIPELINE_CONFIG, PIPELINE.task(task), session
            )
        return PIPELINE.task(task).shard_targets(wildcards.session)

    return shard_targets


wildcard_constraints:
    session=r"\d{4}-\d{2}-\d{2}",
    slot=r"\d{4}",


def get_daily_targets():
    """Sentinels of every daily task for the session of this run."""
    return PIPELINE.daily_targets(SESSION)


def get_intraday_targets():
    """Current-slot sentinels of the intraday tasks due now (none when closed)."""
    return PIPELINE.intraday_targets(CALENDAR, NOW)


def get_needs_targets(task):
    """Input function of ``task``'s rule: its needs' sentinels for the same period.

    It is where Snakemake first meets a job's period, before it decides whether
    the job must run: a period that is not due yet (a future session, a slot
    outside the task's hours) stops the run here, and a daily sentinel whose
    data is gone from the market database is removed, so the job runs.
    """

    def needs_targets(wildcards):
        with support.exit_on_user_error():
            session = date.fromisoformat(wildcards.session)
            period = Period(session, wildcards.get("slot"))
            check_period_is_due(PIPELINE.task(task), period, CALENDAR, NOW)
        # A sharded task's join sentinel is checked by the join (get_shard_targets).
        if (
            period.slot is None
            and workflow.is_main_process
            and not PIPELINE.task(task).is_sharded
        ):
            support.forget_sentinel_without_data(
                PIPELINE_CONFIG, PIPELINE.task(task), session
            )
        return PIPELINE.input_targets(task, period)

    return needs_targets


def get_priority(task):
    """Tasks on a longest chain go first when ready jobs outnumber cores."""
    return 10 if PIPELINE.on_critical_path(task) else 0


onstart:
    support.sweep_dead_runs(PIPELINE_CONFIG, RUN_ID)


onsuccess:
    support.end_of_run(PIPELINE_CONFIG, RUN_ID)


onerror:
    support.end_of_run(PIPELINE_CONFIG, RUN_ID)
