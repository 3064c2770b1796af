"""Run every benchmark module ``bench/bench_*.py`` (or those named on the command line).

Contract for a benchmark module: it defines ``main(quick: bool) -> None`` that measures the
thing and its baseline *side by side in the same run* and prints figures and ratios. This
machine is shared and has 2 cores: compare, don't trust absolute numbers.

    python -m bench                # all
    python -m bench rules ingest   # bench/bench_rules.py and bench/bench_ingest.py
    python -m bench --quick        # smaller sizes (used by the test that keeps benchmarks runnable)
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def _modules() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(_modules())})"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke runs")
    args = parser.parse_args(argv)
    names = args.names or _modules()
    failed = []
    for name in names:
        print(f"\n=== bench {name} " + "=" * max(0, 60 - len(name)), flush=True)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            module.main(quick=args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - started:.1f}s wall", flush=True)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
