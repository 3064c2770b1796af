"""Catalogue reload cost and progress speed, measured side by side.

* ``load_catalog`` (parse with line marks + validate + cross-check) vs. plain
  ``yaml.safe_load`` of the same files: the price of line-numbered, all-at-once checking.
* ``AirYear`` over a whole year of daily values vs. a bare Python mean over the same list.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import yaml

from rules.catalog import ALERT_RULES_FILES, catalog_from_texts
from rules.progress import AirYear, DailyAir

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "config"


def _best(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def main(quick: bool) -> None:
    texts = {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(CONFIG.glob("*.yaml"))
        if p.name not in ALERT_RULES_FILES
    }
    repeat = 3 if quick else 10
    t_cat = _best(lambda: catalog_from_texts(texts), repeat)
    t_yaml = _best(lambda: [yaml.safe_load(t) for t in texts.values()], repeat)
    fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    t_c = _best(lambda: [yaml.load(t, Loader=fast) for t in texts.values()], repeat)
    print(
        f"catalogue: {len(texts)} files, load_catalog {t_cat * 1e3:.1f} ms; plain parse "
        f"{fast.__name__} {t_c * 1e3:.1f} ms (ratio {t_cat / t_c:.2f}x), "
        f"pure-Python safe_load {t_yaml * 1e3:.1f} ms (ratio {t_cat / t_yaml:.2f}x)"
    )

    years = 5 if quick else 50
    days = [
        DailyAir(date(2025, 1, 1) + timedelta(days=i), 30.0 + i % 40, 50 + i % 120, "2012")
        for i in range(365)
    ]

    def progress() -> None:
        for _ in range(years):
            AirYear(2025).extend(days).result(date(2025, 12, 31))

    def bare() -> None:
        for _ in range(years):
            vals = [d.pm25 for d in days if d.pm25 is not None]
            sum(vals) / len(vals)

    t_p = _best(progress, 3)
    t_b = _best(bare, 3)
    n = years * 365
    print(
        f"progress: {n / t_p:,.0f} days/s through AirYear, {n / t_b:,.0f} days/s bare mean, "
        f"ratio {t_p / t_b:.1f}x (a year of one locality in {t_p / years * 1e3:.2f} ms)"
    )
