"""The engine's hot-path shortcuts give exactly what the general functions give.

rules.evaluate computes the hourly AQI point, the GB 3095 exceedances and a few roundings without
going through rules.aqi.realtime_aqi / rules.ambient.exceedance / ``round`` for every sample
(bench/bench_engine.py). These tests hold the shortcuts equal to the general path, value for
value and type for type (the points are compared as their JSON text).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rules import aqi, beijing
from rules.ambient import exceedance
from rules.evaluate import air, common, quality
from rules.standards.gb3095 import Grade, Period

BJ = beijing.BEIJING
HOURS = {
    2012: datetime(2026, 2, 28, 23, tzinfo=BJ),
    2026: datetime(2026, 3, 1, 0, tzinfo=BJ),  # the first hour of HJ 633-2026
}

value = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=1300, allow_nan=False),
    st.integers(min_value=0, max_value=1300).map(float),
    st.integers(min_value=0, max_value=13000).map(lambda n: n / 10),
    st.sampled_from([0.0, 35.0, 75.0, 115.0, 150.0, 250.0, 500.0, 800.0, 800.5, 1200.0]),
)
co = st.one_of(st.none(), st.floats(min_value=0, max_value=170, allow_nan=False))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([2012, 2026]),
    st.tuples(value, value, value, value, co, value),
)
@example(2026, (0.25, 0.35, 2.5, 3.5, 0.05, 0.15))  # GB/T 8170 ties
@example(2012, (35.0, 50.0, 150.0, 100.0, 5.0, 160.0))  # breakpoints exactly
def test_realtime_iaqis_and_fields_equal_realtime_aqi(
    edition: int, row: tuple[float | None, ...]
) -> None:
    at = HOURS[edition]
    conc = dict(zip(aqi.REALTIME_TABLE, row, strict=True))
    ref = aqi.realtime_aqi(conc, at=at)
    fast = aqi.realtime_iaqis(list(row), edition_2026=edition == 2026)
    if fast is None:
        # only what the general path must handle: a value missing or above its table
        assert ref.missing or ref.above_top
        return
    assert not ref.missing
    assert not ref.above_top
    assert fast == [ref.iaqi[k] for k in aqi.REALTIME_TABLE]
    expected = air.aqi_point(ref, {}, at).fields
    got = air.realtime_fields(fast, ref.edition)
    assert list(got.items()) == list(expected.items())
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-10, max_value=2e6, allow_nan=False, allow_infinity=False),
        st.integers(min_value=0, max_value=10**8).map(lambda n: n / 2000),
        st.integers(min_value=0, max_value=10**7).map(lambda n: n / 16),
        st.integers(min_value=1, max_value=10**6).map(lambda n: n / 7),
    )
)
@example(0.0625)  # an exact tie (62.5 thousandths): half to even
@example(0.0)
@example(-0.0)
@example(2.0005)
def test_round3_is_round_to_3_digits(x: float) -> None:
    assert repr(air.round3(x)) == repr(round(x, 3))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=1, max_value=3000))
def test_rate_is_the_rounded_share(n: int, of: int) -> None:
    assert repr(quality.rate(n, of)) == repr(round(min(1.0, n / of), 4))


def test_precomputed_gb3095_limits_are_rules_ambient_judgements() -> None:
    """Hourly and daily limit rows against rules.ambient.exceedance around both switches."""
    for grade in Grade:
        for start in (
            datetime(2026, 2, 28, 22, tzinfo=BJ),
            datetime(2030, 12, 31, 22, tzinfo=BJ),
        ):
            for k in range(4):
                at = start + timedelta(hours=k)
                h = common.epoch_hours(at)
                # the edition in force for the hour (the switches are whole hours)
                e = 0 if h < air.SWITCH_2026_H else 1 if h < air.SWITCH_FINAL_H else 2
                for _idx, f, limit, edition, clause in air.HOURLY_LIMITS[e][grade]:
                    ex = exceedance(f, limit * 1.5, period=Period.HOURLY, at=at, grade=grade)
                    assert (ex.limit, ex.edition, ex.source) == (limit, edition, clause)
        for day in (date(2026, 2, 28), date(2026, 3, 1), date(2030, 12, 31), date(2031, 1, 1)):
            d = day.toordinal() - date(1970, 1, 1).toordinal()
            h0 = beijing.first_hour_of_day(d) - 1
            e = 0 if h0 < air.SWITCH_2026_H else 1 if h0 < air.SWITCH_FINAL_H else 2
            for key, f, period, limit, edition, clause in air.DAILY_LIMITS[e][grade]:
                assert key == ("o3_8h" if f == "o3" else f)
                ex = exceedance(f, limit * 2, period=Period(period), at=day, grade=grade)
                assert (ex.limit, ex.edition, ex.source) == (limit, edition, clause)
                assert round(ex.multiple or 0.0, 4) == round((limit * 2 - limit) / limit, 4)


_conc = st.floats(min_value=0, max_value=1000, allow_nan=False)
#: an hour's value: mostly a concentration, sometimes 0 or missing (both must count right)
slot = st.one_of(_conc, _conc, _conc, _conc, st.just(0.0), st.none())


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.large_base_example, HealthCheck.data_too_large],
)
@given(st.lists(st.lists(slot, min_size=air.RING, max_size=air.RING), min_size=6, max_size=6),
       st.integers(min_value=0, max_value=air.RING - 1))  # fmt: skip
@example(  # zeros and missing hours in full and partial windows, across the ring's end
    [
        [0.0] * air.RING,
        [None, 0.0, 0.0, 12.5] * (air.RING // 4),
        [0.0, 3.25, 0.0, 7.0, None, 1.0] * (air.RING // 6),
        [1.0] * air.RING,
        [0.5] * air.RING,
        [None, 0.0, 40.0, 80.5] * (air.RING // 4),
    ],
    5,
)
def test_moving_means_count_present_values_and_sum_in_hour_order(
    cols: list[list[float | None]], end: int
) -> None:
    """The moving means of air._air_hour (present values counted as non-zero ones plus zeros)
    against the plain definition: count(None), sum(filter(None, …)) in hour order, round 3."""
    h = 494_000 - 494_000 % air.RING + end  # ring index ``end``
    out: list[common.Point] = []
    tags = air._air_tags("loc", "src")
    air._air_hour(cols, h, tags, common.SourceContext(), out, full=False)
    got = out[0].fields if out and out[0].measurement == "aggregate" else {}
    want: dict[str, float] = {}
    for name, col, n, need in (
        ("pm25_24h", cols[0], 24, 20),
        ("pm10_24h", cols[1], 24, 20),
        ("so2_24h", cols[2], 24, 20),
        ("o3_8h", cols[5], 8, 6),
    ):
        w = [col[(h - k) % air.RING] for k in range(n - 1, -1, -1)]
        count = n - w.count(None)
        if count >= need:
            want[name] = round(sum(filter(None, w)) / count, 3)
    assert got == want
    assert [type(v) for v in got.values()] == [float] * len(got)
