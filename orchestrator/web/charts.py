"""Inline SVG for the dashboard: line charts of prices, run-duration bars, the task graph.

No chart library and no script: the server draws each picture as SVG text,
which the page embeds (and the Content-Security-Policy allows, being no
script). Colours come from CSS classes (``static/dashboard.css``), so the
pictures follow the pages' palette. Every text placed in the SVG is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

from markupsafe import Markup

from orchestrator.freshness import human_age
from orchestrator.pipeline import Pipeline
from orchestrator.web.history import Run

NODE_WIDTH = 178
NODE_HEIGHT = 46
COLUMN_GAP = 70
ROW_GAP = 14
MARGIN = 10


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 60 else human_age(value)


def line_chart(
    points: Sequence[tuple[float, float]],
    x_label: Callable[[float], str],
    title: str,
    width: int = 640,
    height: int = 200,
) -> Markup:
    """A line through ``points`` (x ascending) with the first and last x and the y range."""
    left, right, top, bottom = 56, 12, 14, 26
    head = (
        f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    if not points:
        return Markup(
            f'{head}<text class="chart-empty" x="{width / 2}" y="{height / 2}" '
            f'text-anchor="middle">no data</text></svg>'
        )
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:  # a flat line still needs a range to sit in
        y0, y1 = y0 - 1, y1 + 1
    inner_w, inner_h = width - left - right, height - top - bottom

    def place(x: float, y: float) -> str:
        px = left + (inner_w * (x - x0) / (x1 - x0) if x1 > x0 else inner_w / 2)
        py = top + inner_h * (1 - (y - y0) / (y1 - y0))
        return f"{px:.1f},{py:.1f}"

    line = " ".join(place(x, y) for x, y in points)
    parts = [
        head,
        f'<line class="axis" x1="{left}" y1="{top + inner_h}" x2="{width - right}" '
        f'y2="{top + inner_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + inner_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{_number(y1)}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + inner_h}" text-anchor="end">'
        f"{_number(y0)}</text>",
        f'<text class="tick" x="{left}" y="{height - 8}">{escape(x_label(x0))}</text>',
        f'<text class="tick" x="{width - right}" y="{height - 8}" text-anchor="end">'
        f"{escape(x_label(x1))}</text>",
        f'<polyline class="series" points="{line}"/>',
        "</svg>",
    ]
    return Markup("".join(parts))


def duration_bars(
    runs: Sequence[Run], capacity: int = 30, width: int = 240, height: int = 44
) -> Markup:
    """One bar per run, newest at the right, its height the run's duration, its colour its outcome.

    Bars keep the width of ``capacity`` runs, so a task with few runs shows few
    thin bars, not a few wide blocks.
    """
    label = f"durations of the last {len(runs)} runs"
    head = (
        f'<svg class="chart duration-chart" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{label}">'
    )
    if not runs:
        return Markup(
            f'{head}<text class="chart-empty" x="4" y="{height / 2 + 4}">no runs yet</text></svg>'
        )
    longest = max(run.duration_seconds for run in runs) or 1.0
    slot = width / max(capacity, len(runs))
    bar = max(slot - 2, 1)
    offset = width - slot * len(runs)
    parts = [head]
    for index, run in enumerate(runs):
        tall = max((height - 12) * run.duration_seconds / longest, 2)
        outcome = "ok" if run.ok else "failed"
        tip = f"{run.period}: {_seconds(run.duration_seconds)}, {run.outcome}"
        if run.attempts > 1:
            tip += f" after {run.attempts} attempts"
        parts.append(
            f'<rect class="bar {outcome}" x="{offset + index * slot:.1f}" y="{height - tall:.1f}" '
            f'width="{bar:.1f}" height="{tall:.1f}"><title>{escape(tip)}</title></rect>'
        )
    parts.append(f'<text class="tick" x="0" y="9">max {_seconds(longest)}</text></svg>')
    return Markup("".join(parts))


def graph_svg(
    pipeline: Pipeline,
    family: str,
    status_class: Mapping[str, str],
    status_text: Mapping[str, str],
) -> Markup:
    """One family's DAG: a column per tier, a box per task coloured by its status.

    Edges run from each need to its dependent; each box links to the task's
    row on the Tasks page.
    """
    tiers = pipeline.tiers(family)
    if not tiers:
        return Markup("")
    place: dict[str, tuple[float, float]] = {}
    for level, names in enumerate(tiers):
        for index, name in enumerate(names):
            place[name] = (
                float(MARGIN + level * (NODE_WIDTH + COLUMN_GAP)),
                float(MARGIN + index * (NODE_HEIGHT + ROW_GAP)),
            )
    width = MARGIN * 2 + len(tiers) * NODE_WIDTH + (len(tiers) - 1) * COLUMN_GAP
    height = MARGIN * 2 + max(map(len, tiers)) * (NODE_HEIGHT + ROW_GAP) - ROW_GAP
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(family)} tasks and what each needs">'
    ]
    for name in place:
        x2, y2 = place[name]
        for need in pipeline.task(name).needs:
            x1, y1 = place[need]
            start_x, start_y = x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2
            end_x, end_y = x2, y2 + NODE_HEIGHT / 2
            bend = COLUMN_GAP / 2
            parts.append(
                f'<path class="edge" d="M{start_x:.1f},{start_y:.1f} C{start_x + bend:.1f},'
                f'{start_y:.1f} {end_x - bend:.1f},{end_y:.1f} {end_x:.1f},{end_y:.1f}"/>'
            )
    for name, (x, y) in place.items():
        task = pipeline.task(name)
        css = status_class.get(name, "unknown")
        shown = task.label or name
        critical = " critical" if task.critical else ""
        parts.append(
            f'<a href="/tasks#task-{escape(name)}" class="node{critical}" '
            f'data-task="{escape(name)}">'
            f'<rect class="status-{escape(css)}" x="{x}" y="{y}" width="{NODE_WIDTH}" '
            f'height="{NODE_HEIGHT}" rx="7"/>'
            f'<text class="node-name" x="{x + 10}" y="{y + 19}">{escape(shown)}</text>'
            f'<text class="node-status" x="{x + 10}" y="{y + 36}">'
            f"{escape(status_text.get(name, ''))}</text></a>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
