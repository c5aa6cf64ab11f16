"""The PNG chart: rows/s per contender and group, min..max whiskers, ratios to the baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .report import ratio
from .rounds import Group


def chart(
    groups: Sequence[Group],
    path: Path,
    title: str,
    baseline: str,
    colors: dict[str, str],
    log_scale: bool = False,
) -> None:
    """Rows/s per contender (bars; median, whiskers min..max), one cluster per group (of its own
    contenders: groups may differ), the ratio to the baseline above each bar. A contender first
    met on other rows than the first group's says so in the legend."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slots = max(len(g.series) for g in groups)
    fig, ax = plt.subplots(figsize=(min(16.0, 3.0 + 0.9 * slots * len(groups)), 4.8), dpi=100)
    rows = max(s.rows for s in groups[0].series.values())
    top, bottom = 0.0, float("inf")
    labelled: set[str] = set()
    for i, g in enumerate(groups):  # each group's own contenders, side by side
        width = 0.8 / len(g.series)
        for j, (name, s) in enumerate(g.series.items()):
            x, y, (lo, hi) = i + (j - (len(g.series) - 1) / 2) * width, s.rps(), s.spread()
            top, bottom = max(top, hi), min(bottom, lo)
            label = name if s.rows == rows else f"{name}, {s.rows:,} rows"
            ax.bar(
                [x],
                [y],
                width * 0.92,
                label=None if name in labelled else label,
                color=colors.get(name, "grey"),
                yerr=np.array([[y - lo], [hi - y]]),
                capsize=2,
                error_kw={"elinewidth": 0.8, "ecolor": "#444"},
            )
            labelled.add(name)
            text = f"{y / 1e3:,.0f}k"
            if name != baseline and baseline in g.series:
                text += f"\n{ratio(g.series, name, baseline):.2f}x"
            ax.annotate(text, (x, hi), xytext=(0, 3), textcoords="offset points", ha="center")
    _decorate(ax, groups, title, baseline, log_scale, (bottom, top))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"Chart: {path}")


def _decorate(
    ax: Any,
    groups: Sequence[Group],
    title: str,
    baseline: str,
    log_scale: bool,
    span: tuple[float, float],
) -> None:
    for t in ax.texts:  # the value labels above the whiskers
        t.set_fontsize(7.5)
    if log_scale:
        ax.set_yscale("log")
        ax.set_ylim(span[0] / 2, span[1] * 4)
    else:
        ax.set_ylim(0, span[1] * 1.35)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.label for g in groups])
    scale = "log scale; " if log_scale else ""
    ax.set_ylabel(f"rows / s ({scale}median, whiskers = min..max)")
    ax.set_title(f"{title}\n(ratio under each value = contender / {baseline})", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.grid(axis="y", which="both", alpha=0.25)
