"""Report the health of a pipeline component, so the locality stage raises or clears its operator
alert (alerts/pipeline.py; docs/alerts.md §10).

:func:`report` sends one ``pipeline_health`` point to ``aggregates`` (key ``pipeline``: the locality
stage judges it with the ``pipeline`` rule) and to ``evaluations`` (the store writes it: the
component's health history on the data-quality dashboard). :class:`HealthReporter` remembers
what it last said per condition and sends a change of state at once, anything else at most every
``repeat`` seconds (so a restarted locality stage never leaves an alert in the wrong state long).

Usage from any agent or task of the worker::

    reporter = HealthReporter(pipeline, "receiver:ent-a")
    await reporter.update("delivery", problem=True, reason="HTTP 400: bad payload", count=3)
    …
    await reporter.update("delivery", problem=False)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alerts.pipeline import PIPELINE_LOCALITY, health_point
from rules.evaluate import Point
from streams import topics
from streams.wire import points_bytes

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)


async def report(p: Pipeline, point: Point) -> None:
    """Send one health point to the locality stage and to the store."""
    key = PIPELINE_LOCALITY.encode()
    value = points_bytes([point])
    prefix = p.settings.topic_prefix
    for topic in (topics.AGGREGATES, topics.EVALUATIONS):
        await p.app.producer.send(topics.name(topic, prefix), key, value, None, None, None)


class HealthReporter:
    """One component's conditions; :meth:`update` sends a point when a condition changed."""

    def __init__(
        self,
        p: Pipeline,
        component: str,
        *,
        repeat: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.p = p
        self.component = component
        self.repeat = repeat
        self._clock = clock
        self._now = now
        #: condition → (problem, reason, count, when sent (clock))
        self._said: dict[str, tuple[bool, str, int, float]] = {}

    async def update(
        self, condition: str, *, problem: bool, reason: str = "", count: int = 0
    ) -> bool:
        """State a condition; True when a point was sent. A change of ``problem`` is sent at
        once; otherwise (a new reason or count included) once every ``repeat`` seconds."""
        said = self._said.get(condition)
        t = self._clock()
        if said is not None and said[0] == problem and t - said[3] < self.repeat:
            return False
        point = health_point(
            self.component, condition, problem=problem, at=self._now(), reason=reason, count=count
        )
        await report(self.p, point)
        if said is None or said[0] != problem:
            (log.warning if problem else log.info)(
                "pipeline health: %s %s %s%s",
                self.component,
                condition,
                "failing" if problem else "ok",
                f" ({count} held back): {reason}" if problem else "",
            )
        self._said[condition] = (problem, reason, count, t)
        return True
