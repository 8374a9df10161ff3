# One rule per task of config.yaml, generated: a task is declared once, there.
# A rule's name is its task's name (so `--forcerun TASK` works), its inputs are
# the sentinels of the task's `needs:` (the one dependency list), its output is
# the task's period-stamped sentinel (orchestrator/pipeline.py names them).
# Its resources (wall time, memory, cpus, partition) are what a cluster
# executor asks for (config.yaml `resources:`); local runs ignore them.
# A task with `shards: N` is N jobs of its rule, one per shard sentinel, and a
# join rule `<task>_join` writing the task's sentinel from theirs
# (orchestrator/sharding.py): dependents read the join, and `--forcerun TASK`
# re-runs every shard, the join and what follows.
# Directives are evaluated as each rule is defined, except `shell:`, which is
# read when a job runs: it must not refer to the loop variable.

for task in PIPELINE:
    if task.family == "daily" and not task.is_sharded:

        rule:
            name:
                task.name
            input:
                get_needs_targets(task.name),
            output:
                task.target_pattern,
            log:
                task.log_pattern,
            priority: get_priority(task.name)
            resources:
                **task.snakemake_resources(),
            shell:
                RUN_TASK

    elif task.family == "intraday":

        rule:
            name:
                task.name
            input:
                get_needs_targets(task.name),
            output:
                task.target_pattern,
            log:
                task.log_pattern,
            priority: get_priority(task.name)
            resources:
                **task.snakemake_resources(),
            shell:
                RUN_SLOT_TASK

    else:

        rule:
            name:
                task.name
            input:
                get_needs_targets(task.name),
            output:
                task.shard_target_pattern,
            log:
                task.shard_log_pattern,
            wildcard_constraints:
                shard=r"\d+",
            priority: get_priority(task.name)
            resources:
                **task.snakemake_resources(),
            params:
                task=task.name,
                shard=get_shard_argument(task.name),
            shell:
                RUN_SHARD

        rule:
            name:
                task.join_rule
            input:
                get_shard_targets(task.name),
            output:
                task.target_pattern,
            log:
                task.log_pattern,
            priority: get_priority(task.name)
            localrule: True
            params:
                task=task.name,
            shell:
                RUN_JOIN
