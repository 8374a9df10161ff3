"""``orchestrator graph``: the pipeline's DAG, for people (text by tier) or Graphviz (DOT).

Both are drawn from the pipeline model, the same one the rules are generated
from, so the picture is the DAG Snakemake runs.
"""

from __future__ import annotations

from orchestrator.pipeline import FAMILIES, Pipeline, TaskConfig


def _traits(task: TaskConfig) -> str:
    traits = []
    if task.family == "intraday":
        traits.append(f"every {task.interval_seconds // 60}m, {'+'.join(task.hours)} hours")
    if task.critical:
        traits.append("critical")
    if task.not_before is not None:
        traits.append(f"not before {task.not_before:%H:%M:%S}")
    if task.is_sharded:
        traits.append(f"{task.shards} shards, joined by {task.join_rule}")
    return f" [{', '.join(traits)}]" if traits else ""


def render_text(pipeline: Pipeline) -> str:
    """Each family's tasks by tier, each with what it needs.

    A tier's tasks can run in parallel; a task runs once everything it needs
    (all in earlier tiers) is built.
    """
    lines = []
    for family in FAMILIES:
        tiers = pipeline.tiers(family)
        if not tiers:
            continue
        lines.append(f"{family} ({sum(map(len, tiers))} tasks)")
        for level, names in enumerate(tiers):
            for index, name in enumerate(names):
                task = pipeline.task(name)
                label = f"tier {level}" if index == 0 else ""
                needs = f"  <- {', '.join(task.needs)}" if task.needs else ""
                lines.append(f"  {label:<7} {name}{_traits(task)}{needs}".rstrip())
        lines.append("")
    return "\n".join(lines)


def render_dot(pipeline: Pipeline) -> str:
    """A Graphviz digraph, one cluster per family, edges from a need to its dependent."""
    lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for family in FAMILIES:
        tasks = pipeline.family(family)
        if not tasks:
            continue
        lines.append(f'  subgraph "cluster_{family}" {{')
        lines.append(f'    label="{family}";')
        for task in tasks:
            style = ", penwidth=2" if task.critical else ""
            label = f"{task.name}\\n{task.shards} shards + join" if task.is_sharded else task.name
            lines.append(f'    "{task.name}" [label="{label}"{style}];')
        lines.append("  }")
    for task in pipeline:
        for need in task.needs:
            lines.append(f'  "{need}" -> "{task.name}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
