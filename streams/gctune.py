"""The garbage collector of a worker process.

A worker allocates a few container objects per evaluation point and lets them go when the batch
is sent; almost none of them lives long. With Python's default thresholds (700, 10, 10) the
young generation is collected every 700 allocations, which catches a batch's points alive and
promotes them, and every full collection walks the whole heap — the catalogue, the rules'
tables, every source's state. Measured in the worker (bench/bench_worker.py, "gc" lines), that
was the largest cost after the evaluation itself.

:func:`tune` therefore, once the process has built everything it keeps (catalogue, topics,
agents):

* ``gc.freeze()`` moves every object alive then into the permanent generation: collections no
  longer walk them (they are never freed anyway);
* raises the young-generation threshold to ``gen0`` allocations, so a batch's short-lived
  objects die by reference counting before any collection looks at them. The older
  generations keep Python's ratios. Reference cycles are still collected, later.

``gen0 = 0`` leaves the collector as Python sets it. The figure is envwatch's choice [MEM]
(``ENVWATCH_GC_THRESHOLD``, docs/configuration.md).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune(gen0: int) -> None:
    """Freeze what exists now and collect the young generation every ``gen0`` allocations."""
    if gen0 <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0, gen1, gen2)
    log.info(
        "gc: %d start-up objects frozen, young generation every %d", gc.get_freeze_count(), gen0
    )
