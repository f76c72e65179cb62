"""Turn a pytest-benchmark JSON file into REPORT.md and overhead.svg.

Usage: python -m benchmarks.report benchmarks/results/<name>.json

If ``benchmarks/results/<name>.instructions.json`` exists (written by
``python -m benchmarks.instructions``), its CPU instruction counts are shown too.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

UPDATE, CREATE, DELETE, LOAD = "update save", "create save", "delete", "load 10,000 rows"
TRANSACTION, AUTOCOMMIT = "100 saves in one transaction", "autocommit save with a rule"
COMMENT, USERS, QUERYSET = "comment create", "user creation", "queryset update of 1,000 rows"
RULE = "signalhooks rule (keys+tags)"
PLUS_ROUND_TRIP = "plain + one round trip (by hand)"
COUNTER = "signalhooks counter + touch"
PLUS_UPDATE = "plain + one UPDATE of the post (by hand)"
TRACKED = "signalhooks 2 tracked fields"
INIT_RECEIVER = "django post_init receiver (no-op)"
HIT, HIT_TAGGED = "cached() hit", "cached() hit, 2 tags"
#: An autocommit save with a rule may cost a plain save plus this many raw pipelines.
ROUND_TRIP_LIMIT = 1.2


@dataclass
class Row:
    median: float
    min: float
    rounds: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def interleaved(self) -> float | None:
        value = self.extra.get("interleaved_ratio")
        return None if value is None else float(value)


Groups = dict[str, dict[str, Row]]


def load(path: Path) -> tuple[Groups, dict[str, Any]]:
    data = json.loads(path.read_text())
    groups: Groups = {}
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        # pytest-benchmark 5.3 gives a test without parameters ``"params": null``.
        variant = (bench.get("params") or {}).get("variant", bench["name"])
        groups.setdefault(bench["group"], {})[variant] = Row(
            median=stats["median"],
            min=stats["min"],
            rounds=stats["rounds"],
            extra=bench.get("extra_info", {}),
        )
    return groups, data


def _instructions_file(path: Path) -> Path:
    return path.with_name(path.stem + ".instructions.json")


def load_instructions(path: Path) -> dict[str, dict[str, float]]:
    """Return ``{group: {variant: instructions per operation}}`` if measured, else ``{}``."""
    candidate = _instructions_file(path)
    if not candidate.exists():
        return {}
    result: dict[str, dict[str, float]] = json.loads(candidate.read_text())["per_operation"]
    return result


def instruction_goals(path: Path) -> list[str]:
    """Return the section with the instruction-count goals, if they were measured."""
    from benchmarks.instructions import goals_table

    candidate = _instructions_file(path)
    if not candidate.exists():
        return []
    data = json.loads(candidate.read_text())
    return [
        "",
        "## CPU instruction goals",
        "",
        f"`make bench-instructions` (callgrind, Python {data['python']}, SQLite in memory, GC "
        "off in the measured loop; the peers measured in the same run):",
        "",
        goals_table(data["per_operation"], data.get("peak_bytes", {})).rstrip("\n"),
    ]


def ratio(groups: Groups, group: str, variant: str, base: str = "plain") -> float | None:
    """The interleaved ratio (timed in turns with plain) if there is one, else of medians."""
    rows = groups.get(group, {})
    if variant not in rows or base not in rows:
        return None
    interleaved = rows[variant].interleaved
    if interleaved is not None and base == "plain":
        return interleaved
    return rows[variant].median / rows[base].median


def noise(groups: Groups, group: str) -> float | None:
    """How far plain timed in turns with itself is from 1: the noise floor of a group."""
    plain = groups.get(group, {}).get("plain")
    return None if plain is None or plain.interleaved is None else abs(plain.interleaved - 1)


def instr_ratio(instr: dict[str, dict[str, float]], group: str, variant: str) -> float | None:
    rows = instr.get(group, {})
    if variant not in rows or "plain" not in rows:
        return None
    return rows[variant] / rows["plain"]


@dataclass
class Target:
    text: str
    limit: str
    measured: str
    met: bool | None  # None: not measured
    note: str = ""


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}×"


def targets(groups: Groups, instr: dict[str, dict[str, float]]) -> list[Target]:
    result: list[Target] = []

    def timed(group: str, variant: str, text: str, limit: float, why: str = "") -> None:
        measured = ratio(groups, group, variant)
        cpu = instr_ratio(instr, group, variant)
        shown = _x(measured) + ("" if cpu is None else f" (CPU instructions {cpu:.3f}×)")
        floor = noise(groups, group)
        note = "" if floor is None else f"noise floor ±{floor * 100:.1f}%"
        met = None if measured is None else measured <= limit
        if met is False and why:
            note = f"{note}; {why}" if note else why
        result.append(Target(text, f"≤ {limit:.2f}×", shown, met, note))

    timed(UPDATE, "signalhooks hook", "one unconditioned `post_save` hook, update save", 1.05)
    timed(UPDATE, "signalhooks changed=", "one `changed=` hook, update save", 1.06)

    loads = groups.get(LOAD, {})
    floor = ratio(groups, LOAD, INIT_RECEIVER)
    why_load = (
        "any `post_init` receiver pays Django's signal dispatch for every row: "
        f"a no-op one measures {_x(floor)} here"
        if floor is not None
        else ""
    )
    timed(LOAD, TRACKED, "load 10,000 rows, two tracked fields: time", 1.10, why_load)
    if "plain" in loads and TRACKED in loads:
        memory = loads[TRACKED].extra["peak_bytes"] / loads["plain"].extra["peak_bytes"]
        per_row = (loads[TRACKED].extra["peak_bytes"] - loads["plain"].extra["peak_bytes"]) / 1e4
        result.append(
            Target(
                "load 10,000 rows, two tracked fields: memory (tracemalloc peak)",
                "≤ 1.15×",
                f"{memory:.3f}× (+{per_row:.0f} bytes per row)",
                memory <= 1.15,
            )
        )

    tx = groups.get(TRANSACTION, {})
    if RULE in tx:
        trips = tx[RULE].extra.get("redis_round_trips")
        result.append(
            Target(
                "Redis round trips per transaction (100 saves with a rule)",
                "1",
                str(trips),
                trips == 1,
            )
        )
    for group, text, slack in (
        (TRANSACTION, "100 saves + rule in one `atomic()`", 0.10),
        (AUTOCOMMIT, "autocommit save with a rule", 0.0),
    ):
        measured = ratio(groups, group, RULE)
        allowance = ratio(groups, group, PLUS_ROUND_TRIP)
        if measured is None or allowance is None:
            continue
        limit = allowance + slack
        what = "1.10× plain + one round trip" if slack else "plain + one round trip"
        floor = noise(groups, group)
        result.append(
            Target(
                text,
                f"≤ {what} = {limit:.3f}×",
                _x(measured),
                measured <= limit,
                "" if floor is None else f"noise floor ±{floor * 100:.1f}%",
            )
        )

    rule_save = groups.get(AUTOCOMMIT, {}).get(RULE)
    multiple = None if rule_save is None else rule_save.extra.get("round_trips_above_plain")
    if multiple is not None:
        result.append(
            Target(
                "autocommit save with a rule, above a plain save (wall clock, interleaved)",
                f"≤ {ROUND_TRIP_LIMIT:.1f}× one raw redis-py pipeline round trip",
                f"{multiple:.2f}× one round trip",
                multiple <= ROUND_TRIP_LIMIT,
                "plain save, the raw pipeline alone and the rule save timed in turns; "
                f"against plain + the same pipeline after the save: "
                f"{rule_save.extra.get('above_plain_vs_by_hand', float('nan')):.2f}×",
            )
        )

    comments = groups.get(COMMENT, {})
    if COUNTER in comments:
        queries = comments[COUNTER].extra.get("queries")
        measured = ratio(groups, COMMENT, COUNTER)
        allowance = ratio(groups, COMMENT, PLUS_UPDATE)
        time_ok = measured is not None and allowance is not None and measured <= allowance
        floor = noise(groups, COMMENT)
        result.append(
            Target(
                "comment create with `counter` + `touch`",
                f"≤ plain create + one UPDATE = 2 queries, {_x(allowance)}",
                f"{queries} queries, {_x(measured)}",
                queries == 2 and time_ok,
                "" if floor is None else f"noise floor ±{floor * 100:.1f}%",
            )
        )

    users = groups.get(USERS, {})
    queued = users.get("welcome mail, queued task")
    if queued is not None:
        mails = queued.extra.get("mails_in_request")
        templates = queued.extra.get("templates_in_request")
        off = users.get("welcome mail off")
        extra_queries = (
            queued.extra.get("queries", 0) - off.extra.get("queries", 0) if off else None
        )
        result.append(
            Target(
                "user creation, welcome mail on a queued task: nothing rendered or sent",
                "0 templates, 0 mails",
                f"{templates} templates, {mails} mails; +{extra_queries} queries, "
                f"{_x(ratio(groups, USERS, 'welcome mail, queued task', 'welcome mail off'))} "
                "mail off",
                mails == 0 and templates == 0,
            )
        )
    timed(HIT, HIT_TAGGED, "a `cached()` hit with 2 tags, against a plain GET (client)", 1.2)
    hit = groups.get(HIT, {}).get(HIT_TAGGED)
    server = None if hit is None else hit.extra.get("server_cpu_ratio")
    result.append(
        Target(
            "a `cached()` hit with 2 tags, against a plain GET (Redis server CPU per call)",
            "≤ 1.50×",
            _x(server),
            None if server is None else server <= 1.5,
        )
    )
    return result


def _verdict(target: Target) -> str:
    return {None: "not measured", True: "met", False: "**missed**"}[target.met]


# -- chart -------------------------------------------------------------------------------

SERIES = [(UPDATE, "update save"), (CREATE, "create save"), (DELETE, "delete")]
LOAD_SERIES = [("time", "load time"), ("memory", "load memory (peak)")]
GREEN = ["#1b5e20", "#43a047", "#a5d6a7"]
GREY = ["#37474f", "#78909c", "#cfd8dc"]


def _overheads(groups: Groups) -> tuple[list[str], dict[str, dict[str, float]]]:
    variants = [v for v in groups.get(UPDATE, {}) if v != "plain"]
    values: dict[str, dict[str, float]] = {}
    for variant in variants:
        values[variant] = {}
        for group, _ in SERIES:
            r = ratio(groups, group, variant)
            if r is not None:
                values[variant][group] = (r - 1) * 100
    return variants, values


def _load_overheads(groups: Groups) -> tuple[list[str], dict[str, dict[str, float]]]:
    loads = groups.get(LOAD, {})
    if "plain" not in loads:
        return [], {}
    variants = [v for v in loads if v != "plain"]
    plain_peak = loads["plain"].extra["peak_bytes"]
    values = {
        v: {
            "time": ((ratio(groups, LOAD, v) or 1.0) - 1) * 100,
            "memory": (loads[v].extra["peak_bytes"] / plain_peak - 1) * 100,
        }
        for v in variants
    }
    return variants, values


def _panel(
    parts: list[str],
    top: int,
    title: str,
    variants: list[str],
    values: dict[str, dict[str, float]],
    series: list[tuple[str, str]],
    limits: list[tuple[float, str]],
) -> int:
    """Draw one panel of grouped horizontal bars; return the y below it."""
    width, left, right = 820, 260, 80
    bar, gap = 11, 9
    largest = max([1.0, *(v for row in values.values() for v in row.values())])
    scale = (width - left - right) / largest
    parts.append(f"<text x='10' y='{top + 18}' font-weight='bold'>{escape(title)}</text>")
    # legend
    x = left
    for i, (_, label) in enumerate(series):
        parts.append(
            f"<rect x='{x}' y='{top + 28}' width='10' height='10' fill='{GREEN[i]}'/>"
            f"<rect x='{x + 11}' y='{top + 28}' width='10' height='10' fill='{GREY[i]}'/>"
            f"<text x='{x + 26}' y='{top + 37}' font-size='11'>{escape(label)}</text>"
        )
        x += 40 + 7 * len(label)
    y = top + 48
    height = len(variants) * (bar * len(series) + gap)
    for value, label in limits:
        lx = left + value * scale
        if lx <= width - right:
            parts.append(
                f"<line x1='{lx:.1f}' y1='{y - 4}' x2='{lx:.1f}' y2='{y + height}' "
                "stroke='#c62828' stroke-dasharray='4 3'/>"
                f"<text x='{lx + 3:.1f}' y='{y + height + 12}' font-size='10' "
                f"fill='#c62828'>{escape(label)}</text>"
            )
    parts.append(f"<line x1='{left}' y1='{y - 4}' x2='{left}' y2='{y + height}' stroke='#555'/>")
    for variant in variants:
        ours = variant.startswith("signalhooks")
        palette = GREEN if ours else GREY
        mid = y + bar * len(series) / 2 + 4
        weight = " font-weight='bold'" if ours else ""
        parts.append(
            f"<text x='{left - 8}' y='{mid:.1f}' text-anchor='end'{weight}>{escape(variant)}</text>"
        )
        for i, (key, _) in enumerate(series):
            value = values[variant].get(key)
            if value is None:
                continue
            w = max(value, 0) * scale
            parts.append(
                f"<rect x='{left}' y='{y}' width='{w:.1f}' height='{bar - 1}' fill='{palette[i]}'/>"
                f"<text x='{left + w + 4:.1f}' y='{y + bar - 2}' font-size='10'>"
                f"{value:+.1f}%</text>"
            )
            y += bar
        y += gap
    return y + 24


def svg(groups: Groups) -> str:
    """Return the chart: overhead over plain per save (update, create, delete) and per load."""
    parts: list[str] = []
    variants, values = _overheads(groups)
    y = 0
    if variants:
        y = _panel(
            parts,
            y,
            "Overhead per save over a plain model (timed in turns with plain; lower is better)",
            variants,
            values,
            SERIES,
            [(5.0, "+5%")],
        )
    load_variants, load_values = _load_overheads(groups)
    if load_variants:
        y = _panel(
            parts,
            y,
            "Overhead of loading 10,000 rows over a plain model: time and peak memory",
            load_variants,
            load_values,
            LOAD_SERIES,
            [(10.0, "+10%"), (15.0, "+15%")],
        )
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='820' height='{y}' "
        "font-family='Helvetica, Arial, sans-serif' font-size='12'>"
        f"<rect width='820' height='{y}' fill='white'/>"
    )
    return "\n".join([head, *parts, "</svg>"]) + "\n"


# -- report ------------------------------------------------------------------------------


def _environment(data: dict[str, Any], path: Path) -> list[str]:
    info = data.get("machine_info", {})
    env = info.get("signalhooks_environment", {})
    cpu = info.get("cpu", {})
    versions = ", ".join(
        f"{name} {env[name]}"
        for name in (
            "signalhooks",
            "django-redis",
            "redis",
            "django-lifecycle",
            "django-lifecycle-hooks",
            "django-model-utils",
            "django-dirtyfields",
            "pytest-benchmark",
        )
        if name in env
    )
    return [
        f"Run `{path.name}` of {data.get('datetime', '')[:16].replace('T', ' ')} UTC"
        f" (commit {data.get('commit_info', {}).get('id', '?')[:9]}"
        f"{', with uncommitted changes' if data.get('commit_info', {}).get('dirty') else ''}).",
        "",
        f"* Machine: {cpu.get('brand_raw', 'unknown CPU')}, {cpu.get('count', '?')} cores, "
        f"{info.get('system', '')} {info.get('release', '')}",
        f"* Python {info.get('python_version', '?')} ({info.get('python_implementation', '')}), "
        f"Django {env.get('django', '?')}, {env.get('database', '?')}, "
        f"Redis server {env.get('redis server', '?')}",
        f"* {versions}",
    ]


def report(path: Path) -> str:
    groups, data = load(path)
    instr = load_instructions(path)
    lines = [
        "# signalhooks benchmark report",
        "",
        *_environment(data, path),
        "",
        "How to read it: every group has a `plain` variant (no receivers), measured in the",
        "same run. *Median* is pytest-benchmark's median round. *Interleaved* is the ratio",
        "that the targets use: the variant and plain timed in turns, best batch of each, so",
        "load from other processes slows both alike; the `plain` row's interleaved figure is",
        "plain against itself, the noise floor of its group."
        + (
            " *CPU instructions* (callgrind, deterministic, `python -m benchmarks.instructions`)"
            " count the work itself, without any noise; they leave out time spent waiting for"
            " the database or Redis."
            if instr
            else ""
        ),
        "",
        "![Overhead per save and per load, by variant](overhead.svg)",
        "",
        "## Targets",
        "",
        "| target | limit | measured | verdict | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for target in targets(groups, instr):
        lines.append(
            f"| {target.text} | {target.limit} | {target.measured} | {_verdict(target)} "
            f"| {target.note} |"
        )
    lines += instruction_goals(path)
    lines += ["", "## All groups"]
    for group, rows in groups.items():
        base = "plain" if "plain" in rows else next(iter(rows))
        has_cpu = bool(instr.get(group))
        lines += [
            "",
            f"### {group}",
            "",
            f"| variant | median | ratio of medians | interleaved with plain |"
            f"{' CPU instructions |' if has_cpu else ''} notes |",
            f"| --- | ---: | ---: | ---: |{' ---: |' if has_cpu else ''} --- |",
        ]
        for variant, row in rows.items():
            extra = {k: v for k, v in row.extra.items() if k != "interleaved_ratio"}
            notes = ", ".join(
                f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k} {v}"
                for k, v in extra.items()
            )
            cpu = ""
            if has_cpu:
                count = instr[group].get(variant)
                share = instr_ratio(instr, group, variant)
                cpu = (
                    " — |"
                    if count is None
                    else f" {count / 1000:,.0f}k ({_x(share) if share else '—'}) |"
                )
            median = row.median * 1e6
            shown = f"{median / 1000:,.2f} ms" if median >= 10_000 else f"{median:,.1f} µs"
            lines.append(
                f"| {variant} | {shown} | {row.median / rows[base].median:.3f}× "
                f"| {_x(row.interleaved) if row.interleaved is not None else ''} |{cpu} {notes} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    path = Path(argv[1])
    groups, _ = load(path)
    (RESULTS / "REPORT.md").write_text(report(path))
    (RESULTS / "overhead.svg").write_text(svg(groups))
    print(f"wrote {RESULTS / 'REPORT.md'} and {RESULTS / 'overhead.svg'}")


if __name__ == "__main__":
    main(sys.argv)
