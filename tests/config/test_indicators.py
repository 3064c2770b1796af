"""The loaded indicator tables against the plan digests, row by row (issue 4 acceptance).

Oracles, both independent of the loader:
* the digests' markdown tables (``/work/shared/docs/plans/seed-00N.md``), parsed here;
* the original plan text (``/work/shared/seeds/``): every cited line must contain the row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules.catalog import Catalog, Indicator, Locality, Metric, load_catalog

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared")
PLANS = SHARED / "docs" / "plans"
SEEDS = SHARED / "seeds"

pytestmark = pytest.mark.skipif(not PLANS.is_dir(), reason="plan digests not available")

DIGESTS = {  # locality → (digest, row count stated in the issue)
    "weifang": ("seed-001.md", 23),
    "tianqiao": ("seed-002.md", 20),
    "laixi": ("seed-003.md", 39),
    "zhifu": ("seed-004.md", 20),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(ROOT / "deploy" / "config")


def _table_rows(locality: Locality) -> tuple[Indicator, ...]:
    """The main-indicator table's rows, in the plan's order (the prose targets left out)."""
    return tuple(i for i in locality.indicators if i.origin == "table")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _gloss_free(cell: str) -> str:
    """A digest cell without its English glosses, e.g. '全面消除 (fully eliminated)'."""
    cell = cell.strip()
    if cell.strip("*") in {"(blank)", ""}:
        return ""
    cell = re.sub(r"\s*\((?=[^)]*[a-z])[^)]*\)", "", cell)  # (… lower-case English …)
    cell = re.sub(r"\s*\(\"[^)]*\)", "", cell)  # ("steadily increase", sic; …)
    return cell.strip()


def _name(cell: str) -> str:
    cell = re.split(r" — |: (?=[A-Za-z])", cell)[0]
    return re.sub(r"\s*\((?=[^)]*[a-z])[A-Za-z ]+\)$", "", cell).strip()


def _unit(cell: str) -> str | None:
    cell = _gloss_free(cell)
    return (
        None if cell in {"", "—", "(none)", "(none printed)"} or cell.startswith("(none") else cell
    )


def _digest_rows(file: str) -> list[dict[str, str]]:
    """The rows of the first table under '## 2.' whose first cell is a row number."""
    text = (PLANS / file).read_text(encoding="utf-8")
    section = text.split("\n## 2.", 1)[1].split("\n## 3", 1)[0]
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if cells and cells[0].isdigit():
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def _col(row: dict[str, str], *names: str) -> str | None:
    for key, value in row.items():
        if any(key.startswith(n) for n in names):
            return value
    return None


def _seed_lines(source: str) -> tuple[str, int, int]:
    m = re.fullmatch(r"(?P<f>.+)#L(?P<a>\d+)(?:-L?(?P<b>\d+))?", source)
    assert m is not None
    return m["f"], int(m["a"]), int(m["b"] or m["a"])


def _seed_text(source: str) -> tuple[str, str]:
    """(first cited line, all cited lines joined) of the original plan."""
    file, a, b = _seed_lines(source)
    lines = (SEEDS / file).read_text(encoding="utf-8").splitlines()
    return lines[a - 1], "".join(lines[a - 1 : b])


@pytest.mark.parametrize("locality", sorted(DIGESTS))
def test_row_counts(catalog: Catalog, locality: str) -> None:
    digest, count = DIGESTS[locality]
    assert len(_digest_rows(digest)) == count  # the oracle itself has the stated count
    assert len(_table_rows(catalog.locality(locality))) == count


@pytest.mark.parametrize("locality", sorted(DIGESTS))
def test_rows_match_the_digest(catalog: Catalog, locality: str) -> None:
    rows = _digest_rows(DIGESTS[locality][0])
    loaded = _table_rows(catalog.locality(locality))
    for row, ind in zip(rows, loaded, strict=True):
        where = f"{locality} row {row['#']}"
        assert ind.no == int(row["#"]), where
        assert _squash(ind.name) == _squash(_name(_col(row, "Indicator") or "")), where
        assert _squash(ind.value_2020) == _squash(_gloss_free(_col(row, "2020") or "")), where
        assert _squash(ind.target_2025) == _squash(_gloss_free(_col(row, "2025") or "")), where
        assert ind.attribute is not None
        assert ind.attribute.value == _gloss_free(_col(row, "Attribute", "属性") or ""), where
        unit = _unit(_col(row, "Unit") or "")
        assert (_squash(ind.unit) if ind.unit else None) == (_squash(unit) if unit else None), where
        lines = _col(row, "Line")
        if lines:  # Zhifu's digest has no line column; the seed check below covers it
            nums = [int(n) for n in re.findall(r"\d+", lines)]
            _, a, _ = _seed_lines(ind.source)
            assert min(nums) <= a <= max(nums), where


@pytest.mark.parametrize("locality", sorted(DIGESTS))
def test_rows_are_in_the_cited_plan_lines(catalog: Catalog, locality: str) -> None:
    for ind in _table_rows(catalog.locality(locality)):
        first, joined = _seed_text(ind.source)
        bare = _squash(ind.name).rstrip("*")
        assert bare in _squash(first), (ind.no, ind.name, first)
        for cell in (ind.value_2020, ind.target_2025):
            if cell:
                assert _squash(cell) in _squash(joined), (ind.no, cell)


def test_binding_and_expected_counts() -> None:
    # digests: Weifang 13 约束性 / 10 预期性 (seed-001 §2); Zhifu 13 / 7 (seed-004 §2)
    cat = load_catalog(ROOT / "deploy" / "config")
    for loc, binding, expected in (("weifang", 13, 10), ("zhifu", 13, 7)):
        attrs = [i.attribute.value for i in _table_rows(cat.locality(loc)) if i.attribute]
        assert (attrs.count("约束性"), attrs.count("预期性")) == (binding, expected)


def test_cumulative_markers(catalog: Catalog) -> None:
    # [] = five-year cumulative: Weifang rows 13, 14 (001…#L191 note ①); Zhifu 8, 10, 11 (004…#L193)
    def marked(loc: str) -> list[int | None]:
        return [i.no for i in _table_rows(catalog.locality(loc)) if i.cumulative]

    assert marked("weifang") == [13, 14]
    assert marked("zhifu") == [8, 10, 11]


def test_word_targets_stay_statuses(catalog: Catalog) -> None:
    words: set[str] = set()
    for loc in catalog.localities:
        for ind in _table_rows(loc):
            if ind.target.word:
                words.add(ind.target.word)
                assert ind.target.number is None
    assert {
        "完成市分解任务",
        "全面消除",
        "稳中向好",
        "完成省分解任务",
        "完成省下达目标任务",
    } <= words


# ---------------------------------------------------------------- Liaocheng ETDZ: prose only


def _liaocheng_digest_targets() -> list[tuple[str, str]]:
    """(target as printed, Line) of seed-000 §2b."""
    text = (PLANS / "seed-000.md").read_text(encoding="utf-8")
    section = text.split("### 2b.", 1)[1].split("\n**Not present", 1)[0]
    out = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0].isdigit():
            out.append((cells[4], cells[7]))
    return out


def test_liaocheng_has_no_table_and_its_prose_targets_are_loaded(catalog: Catalog) -> None:
    loc = catalog.locality("liaocheng-etdz")
    assert _table_rows(loc) == ()
    digest = _liaocheng_digest_targets()
    assert len(digest) == 22
    prose: list[Indicator] = [i for i in loc.indicators if i.origin == "prose"]
    for target, line in digest:
        nums = [int(n) for n in re.findall(r"\d+", line)]
        lo, hi = min(nums), max(nums)
        if hi < lo:  # "L187–189"
            hi = lo
        matches = [i for i in prose if lo <= _seed_lines(i.source)[1] <= hi]
        assert matches, (target, line)
        for quote in re.findall(r"「([^」]*)」", target):
            assert any(_squash(quote) in _squash(i.target_2025) for i in matches), quote


def test_liaocheng_prose_quotes_are_verbatim(catalog: Catalog) -> None:
    for ind in catalog.locality("liaocheng-etdz").indicators:
        _, joined = _seed_text(ind.source)
        for cell in (ind.value_2020, ind.target_2025):
            if cell:
                assert cell in joined, (ind.name, cell)


def test_liaocheng_baselines(catalog: Catalog) -> None:
    # 000…#L37: PM2.5 52 µg/m³, 234 good days in 2020
    by_metric = {i.metric: i for i in catalog.locality("liaocheng-etdz").indicators if i.metric}
    assert by_metric[Metric.PM25_ANNUAL_MEAN].baseline_value() == 52
    assert by_metric[Metric.GOOD_DAY_COUNT].baseline_value() == 234
