"""The run's report: REPORT.md (throughput, p50/p95, errors by phase, checks) and latency.svg."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from html import escape
from pathlib import Path

from .checks import Check
from .load import Recorder, Sample

#: Phases that are not faults (not shaded on the chart).
QUIET = ("baseline", "after", "cooldown", "drain")
OUTCOMES = ("5xx", "4xx", "refused", "moved")
COLOURS = {"read": "#4c78a8", "comment": "#f58518", "register": "#54a24b",
           "admin-edit": "#b279a2", "login": "#9d755d"}  # fmt: skip


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _row(name: str, samples: list[Sample], seconds: float) -> str:
    ok = [s.seconds * 1000 for s in samples if s.outcome == "ok"]
    counts = {o: sum(s.outcome == o for s in samples) for o in OUTCOMES}
    rate = len(samples) / seconds if seconds > 0 else 0.0
    return (
        f"| {name} | {len(samples)} | {rate:.1f} | {percentile(ok, 0.5):.0f} | "
        f"{percentile(ok, 0.95):.0f} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |"
    )


def markdown(recorder: Recorder, checks: list[Check], meta: dict[str, object]) -> str:
    samples = recorder.samples
    by_phase: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_phase[s.phase].append(s)
    durations = {name: end - start for name, start, end in recorder.windows}
    span = (max(s.at for s in samples) - min(s.at for s in samples)) if samples else 0.0
    head = "| phase | requests | req/s | p50 ms | p95 ms | 5xx | 4xx | refused | moved |"
    lines = [
        f"# Load and fault test ({meta['form']})",
        "",
        f"{meta['summary']}",
        "",
        "## Checks (against the database, after the run)",
        "",
        "| check | result | summary |",
        "|---|---|---|",
        *(f"| {c.name} | {'PASS' if c.passed else 'FAIL'} | {c.summary} |" for c in checks),
        "",
        "## Requests by phase",
        "",
        "p50/p95 over the successful requests; `refused`: no answer (connection refused,",
        "reset or timed out); `moved`: a 404 for a slug the editor had just changed.",
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|",
        *(_row(name, by_phase[name], durations.get(name, 0.0)) for name in _phases(recorder)),
        _row("**all**", samples, span),
        "",
        "## Requests by kind",
        "",
        head.replace("phase", "kind"),
        "|---|---|---|---|---|---|---|---|---|",
        *(_row(kind, [s for s in samples if s.kind == kind], span) for kind in COLOURS),
        "",
        "![latency over time](latency.svg)",
        "",
    ]
    for check in checks:
        if check.details:
            lines += [f"### {check.name}", "", *(f"* {d}" for d in check.details), ""]
    lines += ["## Set-up", "", *(f"* {k}: {v}" for k, v in meta.items() if k != "summary"), ""]
    return "\n".join(lines)


def _phases(recorder: Recorder) -> list[str]:
    return [name for name, _, _ in recorder.windows]


def svg(recorder: Recorder, width: int = 960, height: int = 360) -> str:
    """Plot each request's latency (log scale) over time, fault windows shaded."""
    import math

    left, right, top, bottom = 60, 20, 20, 60
    samples = recorder.samples
    t_max = max([s.at + s.seconds for s in samples] + [end for _, _, end in recorder.windows] + [1])
    lo, hi = math.log10(1), math.log10(30_000)  # 1 ms .. 30 s

    def x(t: float) -> float:
        return left + (width - left - right) * t / t_max

    def y(ms: float) -> float:
        v = (math.log10(max(ms, 1)) - lo) / (hi - lo)
        return top + (height - top - bottom) * (1 - min(v, 1))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    faults = [w for w in recorder.windows if not w[0].startswith(QUIET)]
    for i, (name, start, end) in enumerate(faults):
        out.append(
            f'<rect x="{x(start):.1f}" y="{top}" width="{max(x(end) - x(start), 1):.1f}" '
            f'height="{height - top - bottom}" fill="#e45756" opacity="0.15"/>'
        )
        # Staggered: neighbouring windows' labels would overlap.
        # Near the right edge a label ends at its window instead of starting there.
        anchor, at = ("end", x(end) - 2) if x(start) > width * 0.7 else ("start", x(start) + 2)
        out.append(
            f'<text x="{at:.1f}" y="{top + 12 + 13 * (i % 3)}" fill="#a00" '
            f'text-anchor="{anchor}">{escape(name)}</text>'
        )
    for ms in (1, 10, 100, 1000, 10_000):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(ms):.1f}" y2="{y(ms):.1f}" '
            f'stroke="#ddd"/><text x="{left - 5}" y="{y(ms) + 4:.1f}" text-anchor="end">'
            f"{ms if ms < 1000 else f'{ms // 1000}s'}{'ms' if ms < 1000 else ''}</text>"
        )
    step = 10 if t_max <= 200 else 30
    for t in range(0, int(t_max) + 1, step):
        out.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 15}" text-anchor="middle">{t}s</text>'
        )
    for s in samples:
        colour = COLOURS.get(s.kind, "#333") if s.outcome in ("ok", "moved") else "#d00"
        shape = "circle" if s.outcome in ("ok", "moved") else "rect"
        cx, cy = x(s.at), y(s.seconds * 1000)
        if shape == "circle":
            out.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="1.5" fill="{colour}" opacity="0.5"/>'
            )
        else:
            out.append(
                f'<rect x="{cx - 2:.1f}" y="{cy - 2:.1f}" width="4" height="4" fill="{colour}"/>'
            )
    legend = [*COLOURS.items(), ("failed (5xx, 4xx, refused)", "#d00")]
    for i, (kind, colour) in enumerate(legend):
        lx = left + i * 150
        out.append(f'<circle cx="{lx}" cy="{height - 20}" r="4" fill="{colour}"/>')
        out.append(f'<text x="{lx + 8}" y="{height - 16}">{escape(kind)}</text>')
    out.append(
        f'<text x="{left}" y="{top - 6}">latency per request (log scale); '
        "shaded: fault windows</text></svg>"
    )
    return "\n".join(out)


def write(out: Path, recorder: Recorder, checks: list[Check], meta: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "REPORT.md").write_text(markdown(recorder, checks, meta))
    (out / "latency.svg").write_text(svg(recorder))
    (out / "results.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "checks": [asdict(c) for c in checks],
                "windows": recorder.windows,
                "p50_ms": statistics.median([s.seconds * 1000 for s in recorder.samples] or [0]),
            },
            indent=1,
            default=str,
        )
    )
