"""Unit tests of issue 13's broker-fault pieces: the repeat filter, explicit topic creation, the
mosquitto access rendering (no services, no clock assertions)."""

from __future__ import annotations

import logging
from pathlib import Path

from streams import embedded, topics


def _record(msg: str, level: int = logging.ERROR, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, ("x",), None)


def test_repeat_filter_passes_each_template_once_until_reset() -> None:
    f = topics.RepeatFilter(window=3600)
    # the probe's flood: the same template with changing arguments
    assert f.filter(_record("OffsetCommit failed for %s"))
    assert not f.filter(_record("OffsetCommit failed for %s"))
    assert not f.filter(_record("OffsetCommit failed for %s"))
    assert f.filter(_record("Unable connect to node %s"))  # another template: its first line
    assert f.filter(_record("OffsetCommit failed for %s", logging.INFO))  # below WARNING: always
    assert f.reset() == 2  # suppressed since the last reset
    assert f.filter(_record("OffsetCommit failed for %s"))  # a new outage: logged once again


def test_repeat_filter_sits_on_every_aiokafka_logger() -> None:
    topics.quiet_client_logs()
    for name in ("aiokafka", "aiokafka.conn", "aiokafka.consumer.group_coordinator"):
        assert topics.REPEATS in logging.getLogger(name).filters


def test_clients_never_ask_for_auto_creation() -> None:
    from aiokafka.protocol.metadata import MetadataRequest, MetadataRequest_v5

    topics.explicit_topics_only()
    topics.explicit_topics_only()  # idempotent
    built = MetadataRequest(["readings"]).build(MetadataRequest_v5)
    assert built.allow_auto_topic_creation is False
    assert MetadataRequest(["x"], True).build(MetadataRequest_v5).allow_auto_topic_creation


def test_acl_gives_each_account_its_role_block_and_its_marker_topic() -> None:
    acl = embedded.render_mosquitto_acl(
        {"envwatch-bridge-1": "bridge", "gw": "gateway", "net": "publisher"}
    )
    lines = [ln for ln in acl.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "pattern readwrite envwatch/session/%u",
        "user envwatch-bridge-1",
        "topic read env/#",
        "user gw",
        "topic write env/emission/#",
        "user net",
        "topic write env/#",
    ]


def test_auth_conf_ties_client_ids_to_accounts(tmp_path: Path) -> None:
    conf = embedded.render_mosquitto_conf(1883, tmp_path, auth=True).splitlines()
    assert "allow_anonymous false" in conf
    assert "use_username_as_clientid true" in conf
    assert f"password_file {tmp_path}/passwd" in conf
    assert "allow_anonymous true" in embedded.render_mosquitto_conf(1883, tmp_path).splitlines()
    # the production block carries the same access lines
    shipped = embedded.MOSQUITTO_CONF.read_text().splitlines()
    assert "use_username_as_clientid true" in shipped
    assert "allow_anonymous false" in shipped
