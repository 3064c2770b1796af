"""Run the bridge and a Faust worker inside the current asyncio loop (demo, tests).

    async with Runtime(settings) as rt:      # topics created, bridge connected, worker joined
        ...                                   # publish over MQTT; rt.pipeline.observers see results
    # everything stopped

This is the documented way to run one worker in-process; production runs ``envwatch bridge``
and ``envwatch worker`` as separate processes.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from ingest.bridge import Bridge
from streams import topics
from streams.app import Pipeline, build
from streams.settings import Settings
from streams.sink import Sink


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        sink: Sink | None = None,
        bridge: bool = True,
        alerts_settings: Any = None,
    ) -> None:
        self.settings = settings
        self._sink = sink
        self._alerts_settings = alerts_settings
        self._with_bridge = bridge
        self.pipeline: Pipeline | None = None
        self.bridge: Bridge | None = None
        self._bridge_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Runtime:
        s = self.settings
        await topics.ensure_topics(s.kafka, s.partitions, s.topic_prefix, security=s)
        self.pipeline = build(s, sink=self._sink, alerts_settings=self._alerts_settings)
        if self._with_bridge:
            self.bridge = Bridge(s)
            ready = asyncio.Event()
            self._bridge_task = asyncio.create_task(self.bridge.run(ready=ready))
            done, _ = await asyncio.wait(
                [asyncio.ensure_future(ready.wait()), self._bridge_task],
                timeout=60,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if self._bridge_task in done:
                self._bridge_task.result()  # raises the bridge's error
            if not ready.is_set():
                raise TimeoutError("bridge did not connect within 60 s")
        await self.pipeline.app.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.pipeline is not None:
            await self.pipeline.app.stop()
            self.pipeline.sink.close()
        if self.bridge is not None and self._bridge_task is not None:
            self.bridge.stop()
            await asyncio.wait_for(self._bridge_task, 30)
