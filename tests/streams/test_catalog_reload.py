"""Configuration reload (issue [C]/[E]): a YAML edit reaches a running worker's catalogue view;
a broken edit is refused and the running catalogue stays."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from streams.catalog import CatalogView, locality_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(ROOT / "deploy" / "config", target)
    return target


def _touch_later(path: Path) -> None:
    """Give the edited file a modification time the view can tell from the old one."""
    later = time.time() + 5
    os.utime(path, (later, later))


def test_a_changed_target_class_reaches_the_running_view(config: Path) -> None:
    view = CatalogView(config)
    # 早朝 section of the Laixi plan: target class III (003_021375295357aa36.txt, deploy/config)
    before = view.context("ws-lx-zaochao")
    assert before is not None
    assert before.target_class == 3
    laixi = config / "laixi.yaml"
    text = laixi.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "id: ws-lx-zaochao" in ln)
    assert "target_class: III," in line
    laixi.write_text(
        text.replace(line, line.replace("target_class: III,", "target_class: II,")),
        encoding="utf-8",
    )
    _touch_later(laixi)
    assert view.maybe_reload() is True
    after = view.context("ws-lx-zaochao")
    assert after is not None
    assert after.target_class == 2
    assert view.reloads == 1
    assert view.maybe_reload() is False  # nothing changed since


def test_a_broken_edit_is_refused_and_the_running_catalogue_stays(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    view = CatalogView(config)
    stations = len(view.catalog.stations)
    weifang = config / "weifang.yaml"
    weifang.write_text(weifang.read_text(encoding="utf-8") + "\n  - {broken\n", encoding="utf-8")
    _touch_later(weifang)
    assert view.maybe_reload() is False
    assert len(view.catalog.stations) == stations
    assert "weifang.yaml" in caplog.text  # the problem names the file
    assert view.context("ws-lx-zaochao") is not None


def test_a_new_station_is_known_after_reload(config: Path) -> None:
    view = CatalogView(config)
    assert view.context("aq-wf-new") is None  # unknown: the worker dead-letters its samples
    weifang = config / "weifang.yaml"
    text = weifang.read_text(encoding="utf-8")
    i = text.index("stations:")
    entry = (
        "stations:\n"
        "  - id: aq-wf-new\n"
        "    name: 新站点 New station\n"
        "    locality: weifang\n"
        "    control: 市控\n"
        "    example: true\n"
    )
    weifang.write_text(text[:i] + entry + text[i + len("stations:\n") :], encoding="utf-8")
    _touch_later(weifang)
    assert view.maybe_reload() is True
    assert view.context("aq-wf-new") is not None
    assert "aq-wf-new" in locality_context(view, "weifang").stations
