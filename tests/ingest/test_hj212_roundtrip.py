"""Property tests: whatever ``build`` writes, ``parse`` reads back the same fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ingest import hj212, hj212_codes
from ingest.schemas import Flag, Interval
from rules.factors import Kind

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# CP names and values: anything but the separators ';' ',' (values may hold '=', '&', Chinese).
NAME_CHARS = st.characters(blacklist_characters=";,=", blacklist_categories=("Cs",))
VALUE_CHARS = st.characters(blacklist_characters=";,", blacklist_categories=("Cs",))

headers = st.fixed_dictionaries(
    {
        "st": st.text(ALNUM, min_size=2, max_size=3),
        "cn": st.from_regex(r"[0-9]{4}", fullmatch=True),
        "pw": st.text(ALNUM + "!#$%*+-./:?@_~", min_size=1, max_size=24),
        "mn": st.text(ALNUM + "_.:-", min_size=1, max_size=64),
        "qn": st.none() | st.from_regex(r"[0-9]{17}", fullmatch=True),
        # version bits 0 (2005), 1 (2017), 2 (2025) with any D/A bits; or no Flag at all
        "flag": st.none() | st.integers(0, 11),
    }
)
cps = st.dictionaries(
    st.text(NAME_CHARS, min_size=1, max_size=12), st.text(VALUE_CHARS, max_size=12), max_size=12
)


@st.composite
def split_fields(draw: st.DrawFn) -> tuple[int | None, int | None]:
    if not draw(st.booleans()):
        return None, None
    pnum = draw(st.integers(1, 9999))
    return pnum, draw(st.integers(1, pnum))


@given(headers, cps, split_fields(), st.booleans())
def test_build_then_parse_gives_back_every_field(
    header: dict, cp: dict[str, str], split: tuple[int | None, int | None], crlf: bool
) -> None:
    pnum, pno = split
    packet = hj212.build(**header, cp=cp, pnum=pnum, pno=pno, crlf=crlf)
    if len(packet) - 10 - (2 if crlf else 0) > hj212.MAX_DATA_LEN:
        return  # beyond 表2's 1024 bytes: covered by the malformed tests
    parsed = hj212.parse(packet)
    assert parsed.st == header["st"]
    assert parsed.cn == header["cn"]
    assert parsed.pw == header["pw"]
    assert parsed.mn == header["mn"]
    assert parsed.qn == header["qn"]
    assert parsed.flag == header["flag"]
    assert (parsed.pnum, parsed.pno) == (pnum, pno)
    assert dict(parsed.cp) == cp
    # the same packet as str, and with its CRC in lower case, reads the same
    text = packet.decode("utf-8")
    assert hj212.parse(text) == parsed
    body = text.removesuffix("\r\n")
    assert hj212.parse(body[:-4] + body[-4:].lower()) == parsed


@given(headers, cps)
def test_declared_length_counts_utf8_bytes_and_crc_covers_only_the_segment(
    header: dict, cp: dict[str, str]
) -> None:
    packet = hj212.build(**header, cp=cp, crlf=True)
    segment = packet[6:-6]
    assert packet[:2] == b"##"
    assert packet[-2:] == b"\r\n"
    assert int(packet[2:6]) == len(segment)
    assert int(packet[-6:-2], 16) == hj212.crc16(segment)


BJ = ZoneInfo("Asia/Shanghai")
FACTORS = {
    kind: sorted({t.factor for t in hj212_codes.FACTORS[kind].values()})
    for kind in (Kind.AIR, Kind.WATER, Kind.EMISSION, Kind.MONITOR)
}
VALUES = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
FLAGS = st.sampled_from(list(Flag))


@st.composite
def samples(draw: st.DrawFn) -> tuple[Kind, Interval, datetime, dict[str, tuple[float, Flag]]]:
    kind = draw(st.sampled_from(sorted(FACTORS)))
    interval = draw(st.sampled_from([Interval.RT, Interval.MIN, Interval.HOUR, Interval.DAY]))
    minutes = draw(st.integers(0, 60 * 24 * 365 * 10))
    start = datetime(2020, 1, 1, tzinfo=BJ) + timedelta(minutes=minutes)
    names = draw(st.lists(st.sampled_from(FACTORS[kind]), min_size=1, max_size=8, unique=True))
    return kind, interval, start, {n: (draw(VALUES), draw(FLAGS)) for n in names}


CN_OF = {Interval.RT: "2011", Interval.MIN: "2051", Interval.HOUR: "2061", Interval.DAY: "2031"}
PERIOD = {
    Interval.RT: timedelta(0),
    Interval.MIN: hj212.DEFAULT_MINUTE_INTERVAL,
    Interval.HOUR: timedelta(hours=1),
    Interval.DAY: timedelta(days=1),
}


@given(samples())
def test_factors_encoded_for_a_logger_decode_to_the_same_factors(sample: tuple) -> None:
    kind, interval, start, values = sample
    cp = hj212.encode_values(kind, interval, values, data_time=start)
    packet = hj212.parse(hj212.build(st="31", cn=CN_OF[interval], mn="M", flag=4, cp=cp))
    time, got_interval, got = hj212.decode_data(packet, kind)
    assert got_interval is interval
    assert time == start + PERIOD[interval]
    assert set(got) == set(values)
    for factor, (value, flag) in values.items():
        assert got[factor][1] is flag
        assert abs(got[factor][0] - value) <= 1e-8 * max(1.0, abs(value))
