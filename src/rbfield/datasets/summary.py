"""A dataset's results as one table, a plot, and (for comparisons) each field's mean and spread over the inputs.

The table is written as CSV and JSON lines: both are read by every tool (pandas, DuckDB, a spreadsheet, ``jq``)
and need no dependency beyond the standard library, where Parquet would need pyarrow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from rbfield.io import atomic_write_bytes

#: Columns that open every row, in this order: who, what became of it, and how long it took (wall seconds).
LEADING = ("name", "input_name", "field", "input", "status", "error", "seconds")
#: Report entries that repeat a leading column, renamed or dropped: the report's training seconds become
#: ``train_seconds``; its field and input are the row's.
RENAMED = {"seconds": "train_seconds", "field": None, "input": None, "image": None}
#: Per task: the metrics a comparison summarises, the first being the plotted one, with labels and whether
#: higher is better.
METRICS = {
    "sdf": (
        ("iou", "IoU", True),
        ("iou_inside", "IoU insides", True),
        ("chamfer_l1", "Chamfer L1", False),
        ("nae_deg", "NAE (deg)", False),
        ("fscore", "F-score", True),
    ),
    "image": (("psnr", "PSNR (dB)", True), ("ssim", "SSIM", True)),
}


def summary_rows(outcomes) -> list[dict]:
    """One flat row per outcome: :data:`LEADING` columns, then the run's report entries (scalars only)."""
    rows = []
    for outcome in outcomes:
        row = {key: getattr(outcome, key) for key in LEADING}
        for key, value in outcome.report.items():
            column = RENAMED.get(key, key)
            if column is not None and not isinstance(value, (dict, list)):
                row[column] = value
        rows.append(row)
    return rows


def _columns(rows: list[dict]) -> list[str]:
    columns = list(LEADING)
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    return columns


def write_table(rows: list[dict], out: str | Path) -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.jsonl`` in ``out`` (every row, every column; empty where a row has none)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, jsonl_path = out / "summary.csv", out / "summary.jsonl"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())
    atomic_write_bytes(jsonl_path, "".join(json.dumps(row) + "\n" for row in rows).encode())
    return csv_path, jsonl_path


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def field_statistics(rows: list[dict], metric: str) -> dict[str, dict]:
    """Per field: mean, sample standard deviation (None for one input), min, max and count of ``metric`` over
    the inputs that have it, and how many of the field's inputs failed."""
    statistics = {}
    for field in dict.fromkeys(row["field"] for row in rows):
        values = [v for row in rows if row["field"] == field and (v := _number(row.get(metric))) is not None]
        failed = sum(row["field"] == field and row["status"] == "failed" for row in rows)
        n = len(values)
        mean = sum(values) / n if n else None
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
        statistics[field] = {
            "mean": mean,
            "std": std,
            "min": min(values, default=None),
            "max": max(values, default=None),
            "n": n,
            "failed": failed,
        }
    return statistics


def _format(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def comparison_markdown(rows: list[dict], task: str, params) -> str:
    """Each field's mean +- standard deviation of every compared metric over all inputs, then one row per input
    with each field's headline metric."""
    metrics = METRICS[task]
    fields = list(dict.fromkeys(row["field"] for row in rows))
    lines = [
        f"Budget: {params} trainable parameters. Mean +- sample standard deviation over the inputs each field "
        "fitted (n); failed fits are counted, not averaged.",
        "",
        "| field | n | failed | " + " | ".join(label for _, label, _ in metrics) + " | train seconds |",
        "| --- | ---: | ---: | " + " | ".join("---:" for _ in metrics) + " | ---: |",
    ]
    stats = {metric: field_statistics(rows, metric) for metric, _, _ in metrics + (("train_seconds", "", False),)}
    for field in fields:
        cells = []
        for metric, _, _ in metrics + (("train_seconds", "", False),):
            s = stats[metric][field]
            digits = 1 if metric == "train_seconds" else 4
            spread = "" if s["std"] is None else f" +- {s['std']:.{digits}f}"
            cells.append(f"{_format(s['mean'], digits)}{spread}")
        first = stats[metrics[0][0]][field]
        lines.append(f"| {field} | {first['n']} | {first['failed']} | " + " | ".join(cells) + " |")
    headline, label, _ = metrics[0]
    lines += ["", f"{label} per input:", "", "| input | " + " | ".join(fields) + " |"]
    lines.append("| --- | " + " | ".join("---:" for _ in fields) + " |")
    by_input: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_input.setdefault(row["input_name"], {})[row["field"]] = row
    for name, runs in by_input.items():
        cells = []
        for field in fields:
            row = runs.get(field)
            cells.append("failed" if row is None or row["status"] == "failed" else _format(_number(row.get(headline))))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(rows: list[dict], task: str, params, out: str | Path) -> tuple[Path, Path]:
    """``compare.md`` (:func:`comparison_markdown`) and ``compare.json`` (per-field statistics of every compared
    metric, and the rows) in ``out``."""
    out = Path(out)
    statistics = {metric: field_statistics(rows, metric) for metric, _, _ in METRICS[task]}
    markdown_path, json_path = out / "compare.md", out / "compare.json"
    atomic_write_bytes(markdown_path, comparison_markdown(rows, task, params).encode())
    document = {"params": params, "statistics": statistics, "runs": rows}
    atomic_write_bytes(json_path, (json.dumps(document, indent=2) + "\n").encode())
    return markdown_path, json_path


def plot_summary(rows: list[dict], task: str, path: str | Path) -> Path:
    """A PNG of the headline metric (IoU or PSNR): left, per input with one marker per field; right, each field's
    mean with its standard deviation as an error bar over the individual inputs. Failed fits are left out and
    counted in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, label, higher_better = METRICS[task][0]
    fields = list(dict.fromkeys(row["field"] for row in rows))
    inputs = list(dict.fromkeys(row["input_name"] for row in rows))
    failed = sum(row["status"] == "failed" for row in rows)
    figure, (per_input, per_field) = plt.subplots(
        1, 2, figsize=(max(8.0, 4.0 + 0.35 * len(inputs)), 4.5), gridspec_kw={"width_ratios": [3, 1]}
    )
    for index, field in enumerate(fields):
        points = [
            (inputs.index(row["input_name"]), v)
            for row in rows
            if row["field"] == field and (v := _number(row.get(metric))) is not None
        ]
        if points:
            x, y = zip(*points)
            per_input.plot(x, y, "o", label=field, alpha=0.8)
            per_field.plot([index] * len(y), y, ".", color="grey", alpha=0.5)
        stats = field_statistics(rows, metric)[field]
        if stats["mean"] is not None:
            per_field.errorbar(index, stats["mean"], yerr=stats["std"] or 0.0, fmt="s", capsize=6, markersize=8)
    per_input.set_xticks(range(len(inputs)))
    per_input.set_xticklabels(inputs if len(inputs) <= 60 else [], rotation=60, ha="right", fontsize=8)
    per_input.set_ylabel(f"{label} ({'higher' if higher_better else 'lower'} is better)")
    per_input.set_title(f"{label} per input" + (f" ({failed} failed fits not shown)" if failed else ""))
    per_input.grid(alpha=0.3)
    if len(fields) > 1:
        per_input.legend(fontsize=8)
    per_field.set_xticks(range(len(fields)))
    per_field.set_xticklabels(fields, rotation=30, ha="right")
    per_field.set_xlim(-0.5, len(fields) - 0.5)
    per_field.set_title("mean +- std per field")
    per_field.grid(alpha=0.3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
