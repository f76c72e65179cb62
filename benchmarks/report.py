"""Turn a pytest-benchmark JSON file into REPORT.md and overhead.svg.

Usage: python -m benchmarks.report benchmarks/results/<name>.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import django

RESULTS = Path(__file__).parent / "results"

# (group, variant, limit as a ratio to plain, what the target says)
TARGETS = [
    ("update save", "signalhooks hook", 1.05, "one post_save hook ≤ 1.05× a plain update save"),
    ("update save", "signalhooks changed=", 1.06, "one changed= hook ≤ 1.06×"),
    (
        "load 10,000 rows",
        "signalhooks 2 tracked fields",
        1.10,
        "10k rows, two tracked fields ≤ 1.10× time",
    ),
]


def load(path: Path) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, Any]]:
    data = json.loads(path.read_text())
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in data["benchmarks"]:
        variant = bench["params"]["variant"]
        groups.setdefault(bench["group"], {})[variant] = {
            "median": bench["stats"]["min"],  # the least disturbed round: robust to a busy machine
            "extra": bench.get("extra_info", {}),
        }
    return groups, data


def ratio(groups: dict[str, Any], group: str, variant: str, base: str = "plain") -> float | None:
    """Prefer the interleaved ratio (both timed in turns); else divide the two runs."""
    rows = groups.get(group, {})
    if variant not in rows or base not in rows:
        return None
    interleaved = rows[variant]["extra"].get("interleaved_ratio")
    if interleaved is not None and base == "plain":
        return float(interleaved)
    return float(rows[variant]["median"] / rows[base]["median"])


def targets(groups: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return ``(target, measured, verdict)`` rows."""
    rows = []
    for group, variant, limit, text in TARGETS:
        measured = ratio(groups, group, variant)
        if measured is None:
            rows.append((text, "not measured", "—"))
            continue
        rows.append((text, f"{measured:.3f}×", "met" if measured <= limit else "**missed**"))
    load_rows = groups.get("load 10,000 rows", {})
    plain_mem = load_rows.get("plain", {}).get("extra", {}).get("peak_bytes")
    tracked_mem = (
        load_rows.get("signalhooks 2 tracked fields", {}).get("extra", {}).get("peak_bytes")
    )
    if plain_mem and tracked_mem:
        mem = tracked_mem / plain_mem
        rows.append(
            (
                "10k rows, two tracked fields ≤ 1.15× memory",
                f"{mem:.3f}×",
                "met" if mem <= 1.15 else "**missed**",
            )
        )
    tx = groups.get("100 saves in one transaction", {})
    trips = tx.get("signalhooks rule (keys+tags)", {}).get("extra", {}).get("redis_round_trips")
    if trips is not None:
        rows.append(
            (
                "one Redis round trip per transaction",
                f"{trips}",
                "met" if trips == 1 else "**missed**",
            )
        )
        if "plain" in tx and "autocommit save with a rule" in groups:
            auto = groups["autocommit save with a rule"]
            auto_ratio = ratio(
                groups, "autocommit save with a rule", "signalhooks rule (keys+tags)"
            )
            one_trip = auto["plain"]["median"] * ((auto_ratio or 1.0) - 1)
            block = tx["signalhooks rule (keys+tags)"]["median"]
            allowed = 1.10 * tx["plain"]["median"] + max(one_trip, 0)
            block = tx["plain"]["median"] * (
                ratio(groups, "100 saves in one transaction", "signalhooks rule (keys+tags)")
                or block / tx["plain"]["median"]
            )
            rows.append(
                (
                    "100 saves + rule ≤ 1.10× plain block + one round trip",
                    f"{block / tx['plain']['median']:.3f}× "
                    f"(allowance {allowed / tx['plain']['median']:.3f}×)",
                    "met" if block <= allowed else "**missed**",
                )
            )
    counter = groups.get("comment create", {}).get("signalhooks counter + touch", {})
    queries = counter.get("extra", {}).get("queries")
    if queries is not None:
        rows.append(
            (
                "comment create with counter + touch ≤ plain create + one UPDATE",
                f"{queries} queries "
                f"({ratio(groups, 'comment create', 'signalhooks counter + touch'):.2f}× time)",
                "met" if queries == 2 else "**missed**",
            )
        )
    users = groups.get("user creation", {})
    queued = users.get("welcome mail, queued task")
    if queued and "welcome mail off" in users:
        r = ratio(groups, "user creation", "welcome mail, queued task", "welcome mail off")
        mails = queued["extra"].get("mails_in_request")
        extra = queued["extra"].get("queries", 0) - users["welcome mail off"]["extra"].get(
            "queries", 0
        )
        rows.append(
            (
                "user creation with a queued mail task renders and sends nothing in the request",
                f"{mails} mails in the request, +{extra} queries "
                f"(delivery row, queued task), {r:.2f}× mail off",
                "met" if mails == 0 else "**missed**",
            )
        )
    return rows


def svg(groups: dict[str, Any]) -> str:
    """Return a bar chart of the overhead per save (update save group), in percent."""
    rows = groups.get("update save", {})
    plain = rows.get("plain", {}).get("median")
    if not plain:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    bars = sorted(
        ((v, ((ratio(groups, "update save", v) or 1.0) - 1) * 100) for v in rows if v != "plain"),
        key=lambda item: item[1],
    )
    width, left, row = 760, 250, 26
    scale = (width - left - 70) / max(max(p for _, p in bars), 1)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{row * len(bars) + 50}' "
        "font-family='sans-serif' font-size='13'>",
        "<text x='10' y='20' font-weight='bold'>Overhead per update save vs a plain model "
        "(median, lower is better)</text>",
    ]
    for i, (variant, percent) in enumerate(bars):
        y = 35 + i * row
        colour = "#2b7a3d" if variant.startswith("signalhooks") else "#8a8a8a"
        w = max(percent, 0) * scale
        parts.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end'>{variant}</text>")
        parts.append(f"<rect x='{left}' y='{y + 3}' width='{w:.1f}' height='16' fill='{colour}'/>")
        parts.append(f"<text x='{left + w + 6:.1f}' y='{y + 15}'>{percent:+.1f}%</text>")
    parts.append("</svg>")
    return "\n".join(parts)


def report(path: Path) -> str:
    groups, data = load(path)
    info = data.get("machine_info", {})
    lines = [
        "# signalhooks benchmark report",
        "",
        f"Source: `{path.name}`, {data.get('datetime', '')[:19]}. Machine: "
        f"{info.get('cpu', {}).get('brand_raw', platform.processor() or 'unknown CPU')}, "
        f"Python {info.get('python_version', platform.python_version())}, "
        f"Django {django.get_version()}, "
        f"{'PostgreSQL' if os.environ.get('DATABASE_URL') else 'SQLite in memory'}.",
        "",
        "Ratios are the fastest round (min: the one least disturbed by other load) divided "
        "by the `plain` variant (or `welcome mail off`) of the same group, measured in the "
        "same run. Where a group also has an *interleaved* ratio, plain and the variant were "
        "timed in turns (15 × 100 operations each, best of each), which a busy machine "
        "disturbs far less; targets use it. The `plain` row's interleaved figure is plain "
        "against itself: the noise floor of that group. ![overhead](overhead.svg)",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        *(f"| {t} | {m} | {v} |" for t, m, v in targets(groups)),
        "",
        "## All groups",
    ]
    for group, rows in groups.items():
        base = "plain" if "plain" in rows else next(iter(rows))
        lines += [
            "",
            f"### {group}",
            "",
            "| variant | fastest round | separate runs | interleaved with plain | notes |",
            "| --- | --- | --- | --- | --- |",
        ]
        for variant, row in sorted(
            rows.items(), key=lambda item: ratio(groups, group, item[0], base) or 1.0
        ):
            extra = dict(row["extra"])
            interleaved = extra.pop("interleaved_ratio", None)
            notes = ", ".join(
                f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in extra.items()
            )
            lines.append(
                f"| {variant} | {row['median'] * 1e6:,.1f} µs | "
                f"{row['median'] / rows[base]['median']:.3f}× | "
                f"{'' if interleaved is None else f'{interleaved:.3f}×'} | {notes} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    path = Path(argv[1])
    (RESULTS / "REPORT.md").write_text(report(path))
    groups, _ = load(path)
    (RESULTS / "overhead.svg").write_text(svg(groups))
    print(f"wrote {RESULTS / 'REPORT.md'} and {RESULTS / 'overhead.svg'}")


if __name__ == "__main__":
    main(sys.argv)
