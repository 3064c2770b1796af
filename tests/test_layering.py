"""Import direction (architecture.md §3), checked on the source of every module.

rules  ← alerts ← (streams, ingest);  ingest may use streams' wire contract only
(records, topics, settings). rules/ is pure: stdlib + pydantic, no I/O, no clock, no env.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"rules", "alerts", "ingest", "streams"}
STDLIB_IO = {
    "socket",
    "asyncio",
    "subprocess",
    "sqlite3",
    "urllib",
    "http",
    "smtplib",
    "ssl",
    "threading",
}


def imports_of(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in FIRST_PARTY:  # "from streams import topics" means streams.topics
                found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((node.module, node.lineno))
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("rules"), ids=lambda p: str(p.relative_to(ROOT)))
def test_rules_imports_only_stdlib_and_pydantic(path: Path) -> None:
    allowed_third_party = {"pydantic", "pydantic_core", "typing_extensions", "yaml"}
    for name, line in imports_of(path):
        top = name.split(".")[0]
        if top == "rules":
            continue
        assert top not in FIRST_PARTY, f"{path}:{line}: rules/ imports {name}"
        assert top not in STDLIB_IO, f"{path}:{line}: rules/ is pure but imports {name}"
        assert top in sys.stdlib_module_names or top in allowed_third_party, (
            f"{path}:{line}: rules/ imports third-party {name}"
        )


@pytest.mark.parametrize("path", modules("rules"), ids=lambda p: str(p.relative_to(ROOT)))
def test_rules_reads_no_clock_and_no_environment(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for banned in (
        "datetime.now(",
        "date.today(",
        "time.time(",
        "os.environ",
        "getenv(",
        "utcnow(",
    ):
        assert banned not in source, f"{path}: rules/ must not call {banned}"


@pytest.mark.parametrize("path", modules("alerts"), ids=lambda p: str(p.relative_to(ROOT)))
def test_alerts_imports_rules_only(path: Path) -> None:
    for name, line in imports_of(path):
        top = name.split(".")[0]
        assert top not in {"ingest", "streams"}, f"{path}:{line}: alerts/ imports {name}"
        assert top != "faust", f"{path}:{line}: alerts/ is framework-free"


@pytest.mark.parametrize("path", modules("ingest"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ingest_uses_only_the_wire_contract_of_streams(path: Path) -> None:
    contract = {"streams.records", "streams.topics", "streams.settings", "streams.kafkasecurity"}
    for name, line in imports_of(path):
        if name.split(".")[0] == "streams":
            assert name in contract, (
                f"{path}:{line}: ingest/ imports {name} (only {sorted(contract)})"
            )
        assert name.split(".")[0] != "alerts", f"{path}:{line}: ingest/ imports alerts"


def test_nothing_imports_the_agents() -> None:
    for package in FIRST_PARTY:
        for path in modules(package):
            if "streams/agents" in str(path) or path.name == "app.py":
                continue
            for name, line in imports_of(path):
                assert not name.startswith("streams.agents"), f"{path}:{line}: imports {name}"
