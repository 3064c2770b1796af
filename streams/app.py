"""The Faust application, built from :class:`streams.settings.Settings`.

``build(settings)`` returns a :class:`Pipeline`: the ``faust.App`` with its topics and agents
registered. Run it as a worker process (``envwatch worker``) or in-process (``envwatch demo``,
tests) with ``await pipeline.app.start()`` / ``await pipeline.app.stop()`` — see docs/streams.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust

from streams import brokerwatch, dispatch, kafkasecurity, topics
from streams.alert_rules import RulesView, rules_file
from streams.catalog import CatalogView
from streams.settings import Settings
from streams.sink import Sink, Spool, make_writer

log = logging.getLogger(__name__)

#: events a stream may buffer (Faust's default is 4 096): see create_app
STREAM_BUFFER = 16_384

#: Called for every evaluation the worker emits (the demo prints them).
Observer = Callable[[dict[str, Any]], None]  # a point in its wire form (streams.wire)


@dataclass
class Pipeline:
    settings: Settings
    app: faust.App
    sink: Sink
    catalog: CatalogView = field(default_factory=lambda: CatalogView(None))
    #: the alert rules (streams.alert_rules), hot-reloaded like the catalogue
    alert_rules: RulesView = field(default_factory=lambda: RulesView(None))
    topics: dict[str, Any] = field(default_factory=dict)
    observers: list[Observer] = field(default_factory=list)
    states: dict[str, Any] = field(default_factory=dict)
    #: notification channels (alerts.settings.AlertsSettings); None: from ENVWATCH_ALERTS_* env
    alerts_settings: Any = None
    counters: Counter[str] = field(default_factory=Counter)
    #: streams.brokerwatch.BrokerWatch of this app (set by build)
    broker_watch: Any = None

    def topic(self, name: str) -> Any:
        return self.topics[name]

    transition_observers: list[Callable[[Any], None]] = field(default_factory=list)

    def observe(self, evaluation: dict[str, Any]) -> None:
        for fn in self.observers:
            try:
                fn(evaluation)
            except Exception:  # an observer (the demo's printer) must never stop an agent
                log.exception("observer failed")

    def observe_transition(self, transition: Any) -> None:
        for fn in self.transition_observers:
            try:
                fn(transition)
            except Exception:
                log.exception("transition observer failed")


def create_app(settings: Settings) -> faust.App:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.kafka,
        # TLS and SASL of every client Faust builds (docs/streams.md "Security")
        broker_credentials=kafkasecurity.broker_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        broker_session_timeout=settings.session_timeout,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        # commit often: a restarted worker re-reads little (every consumer is idempotent anyway)
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
        # A stage's merged output records are up to 256 KiB (streams.wire.MERGED_MAX_BYTES):
        # with Faust's default 16 KiB batches each is a produce request of its own, answered
        # one after the other. Three to a batch: the evaluate stage's wait for Kafka's
        # acknowledgements fell by about a fifth (Tansu, 40 000 samples, bench_worker's stream;
        # 0.62–0.80 s → 0.55–0.57 s), and a batch stays below a broker's default
        # message.max.bytes (1 MiB). envwatch's choice [MEM].
        producer_max_batch_size=768 * 1024,
        # Room for what the fetcher already holds when a stream's buffer reaches high pressure
        # (80 % of the size: fetching of the partition pauses, but fetched records are still
        # delivered): a record that meets a *full* buffer takes Faust's slow path, a task
        # per record (streams.dispatch). One fetch is at most consumer_max_fetch_size (1 MiB)
        # per partition, a few thousand samples.
        stream_buffer_maxsize=STREAM_BUFFER,
    )
    # Faust builds its aiokafka consumer with fetch_max_wait_ms=1500 and offers no setting; each
    # hop of the pipeline can wait that long when the broker holds a fetch until the wait
    # expires (measured with Tansu: publish→webhook p99 5.2 s → 0.23 s at 250 samples/s with
    # 100 ms, bench/bench_latency.py). This app's consumer thread uses the setting instead.
    dispatch.install(app, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    return app


def make_sink(settings: Settings) -> Sink:
    return Sink(writer=make_writer(settings), spool=Spool(settings.spool_dir))


def build(settings: Settings, *, sink: Sink | None = None, alerts_settings: Any = None) -> Pipeline:
    app = create_app(settings)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        sink=sink or make_sink(settings),
        catalog=CatalogView(settings.config_dir),
        alert_rules=RulesView(rules_file(settings.alert_rules, settings.config_dir)),
        alerts_settings=alerts_settings,
    )
    for t in topics.EXTERNAL:
        pipeline.topics[t] = app.topic(
            topics.name(t, settings.topic_prefix),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    from streams.agents import deadletter, evaluate, locality, notify, store

    stages = {
        "evaluate": evaluate,
        "locality": locality,
        "store": store,
        "notify": notify,
        "deadletter": deadletter,
    }
    wanted = [a.strip() for a in settings.agents.split(",") if a.strip()]
    unknown = sorted(set(wanted) - set(stages))
    if unknown:
        raise ValueError(
            f"ENVWATCH_AGENTS: unknown stage(s) {', '.join(unknown)}; known: {', '.join(stages)}"
        )
    for name in wanted:
        stages[name].register(pipeline)

    @app.timer(settings.config_poll)  # type: ignore[untyped-decorator]  # faust is untyped
    async def _reload_config() -> None:
        pipeline.catalog.maybe_reload()
        pipeline.alert_rules.maybe_reload()

    # broker faults: aiokafka's repeats logged once, an empty broker restart recovered from
    pipeline.broker_watch = brokerwatch.install(
        app, settings.kafka, settings.partitions, settings.topic_prefix, settings
    )

    return pipeline
