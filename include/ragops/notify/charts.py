"""Small PNG charts for Slack reports (matplotlib, headless)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on workers
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, path: Path, title: str) -> Path:
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def trend_chart(points: list[tuple[datetime, dict]], metrics: list[str], path: Path, title: str) -> Path:
    """One line per metric over evaluation runs, oldest first."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    for name in metrics:
        xs = [t for t, m in points if name in m]
        ys = [m[name] for t, m in points if name in m]
        if ys:
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower left", fontsize=8)
    return _save(plt, fig, ax, path, title)


def latency_error_chart(buckets: list[dict], path: Path, title: str) -> Path:
    """Hourly p95 latency (line) and error count (bars) over a window."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    hours = [b["hour"] for b in buckets]
    ax.plot(hours, [b["p95_ms"] for b in buckets], color="tab:blue", marker=".", label="p95 latency (ms)")
    ax.set_ylabel("p95 ms")
    ax2 = ax.twinx()
    ax2.bar(hours, [b["errors"] for b in buckets], width=0.03, color="tab:red", alpha=0.5, label="errors")
    ax2.set_ylabel("errors")
    return _save(plt, fig, ax, path, title)
