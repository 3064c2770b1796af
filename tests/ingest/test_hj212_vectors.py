"""HJ 212 codec against independent vectors.

* ``/work/shared/data/hj212/packets.jsonl`` (../shared/data from the checkout): 33 packets other
  HJ 212 implementations accept, with the header fields and raw CP their sources state, and 8
  whose CRC is not the HJ 212 附录A CRC (the file records the declared and recomputed CRC).
* standards.md §4.3: the HJ 212-2017 附录A example, a guocay sample, a packet constructed from
  表C.17 and a constructed data acknowledgement, each with its CRC recomputed by hand there.
* period labels and unit conversions, with the arithmetic written next to each expectation.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest import hj212
from ingest.errors import (
    CrcError,
    EmptySampleError,
    FieldError,
    LengthError,
    MissingFieldError,
    SplitError,
    UnknownCodeError,
    UnsupportedCommandError,
)
from ingest.schemas import Flag, Interval
from rules.factors import Kind

BJ = ZoneInfo("Asia/Shanghai")
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hj212" / "packets.jsonl"


def _records() -> list[dict[str, object]]:
    if not DATA.exists():
        return []
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


RECORDS = _records()
needs_data = pytest.mark.skipif(not RECORDS, reason=f"reference data absent: {DATA}")
VALID = [r for r in RECORDS if r["status"] == "VALID"]
INVALID = [r for r in RECORDS if r["status"] != "VALID"]


def _split_cp(raw: str) -> dict[str, str]:
    # The reference file gives the raw CP text; flatten it the way the standard defines it
    # (items split by ';', one item's fields by ',', name=value) — written independently of
    # the codec so a parsing mistake there shows up here.
    out: dict[str, str] = {}
    for item in filter(None, raw.split(";")):
        for part in item.split(","):
            name, _, value = part.partition("=")
            out[name] = value
    return out


@needs_data
def test_reference_file_has_33_valid_and_8_invalid_packets() -> None:
    assert (len(VALID), len(INVALID)) == (33, 8)


@needs_data
@pytest.mark.parametrize("rec", VALID, ids=[str(r["id"]) for r in VALID])
def test_valid_reference_packet_parses_with_the_stated_fields(rec: dict) -> None:
    packet = hj212.parse(rec["packet"])
    header = rec["header"]
    assert packet.st == header["ST"]
    assert packet.cn == header["CN"]
    assert packet.pw == header["PW"]
    assert packet.mn == header["MN"]
    assert packet.qn == header.get("QN")
    assert packet.flag == (int(header["Flag"]) if "Flag" in header else None)
    assert packet.pnum == (int(header["PNUM"]) if "PNUM" in header else None)
    assert packet.pno == (int(header["PNO"]) if "PNO" in header else None)
    assert dict(packet.cp) == _split_cp(rec["cp"])


@needs_data
@pytest.mark.parametrize("rec", VALID, ids=[str(r["id"]) for r in VALID])
def test_valid_reference_packet_parses_with_crlf_and_as_bytes(rec: dict) -> None:
    text = rec["packet"] + "\r\n"
    assert hj212.parse(text.encode("ascii")).mn == rec["header"]["MN"]


@needs_data
@pytest.mark.parametrize("rec", INVALID, ids=[str(r["id"]) for r in INVALID])
def test_invalid_reference_packet_raises_crc_error_with_both_crcs(rec: dict) -> None:
    with pytest.raises(CrcError) as info:
        hj212.parse(rec["packet"])
    assert info.value.declared == rec["declared_crc"]
    assert f"{info.value.computed:04X}" == rec["crc_hj212_appA"]


@needs_data
@pytest.mark.parametrize("rec", RECORDS, ids=[str(r["id"]) for r in RECORDS])
def test_crc16_matches_the_recomputed_appendix_a_crc(rec: dict) -> None:
    packet = rec["packet"].encode("utf-8")
    segment = packet[6:-4]
    assert len(segment) == rec["data_segment_bytes"]
    assert f"{hj212.crc16(segment):04X}" == rec["crc_hj212_appA"]


@needs_data
def test_modbus_variant_devices_are_refused() -> None:
    # X06: real traffic whose CRC is the byte-swapped CRC-16/MODBUS (ECA6 → A6EC).
    rec = next(r for r in RECORDS if r["id"] == "X06")
    assert rec["crc_modbus"] == "ECA6"
    with pytest.raises(CrcError):
        hj212.parse(rec["packet"])


# ----------------------------------------------------------------- standards.md §4.3 vectors

SPEC_EXAMPLE = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&RtdInterval=30&&1C80\r\n"
)
GUOCAY = (
    "##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;"
    "CP=&&DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;"
    "a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,"
    "a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n"
)
HOURLY_C17 = (
    "##0325QN=20160801090000001;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
    "CP=&&DataTime=20160801080000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,"
    "w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;"
    "w01018-Cou=63.0,w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&B7C1\r\n"
)
ACK = (
    "##0087QN=20160801090000001;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;"
    "CP=&&&&FF01\r\n"
)


def test_crc_of_the_standard_example_is_1c80_not_modbus_0759() -> None:
    segment = SPEC_EXAMPLE[6:-6].encode()
    assert len(segment) == 101
    assert hj212.crc16(segment) == 0x1C80
    assert hj212.crc16(segment) != 0x0759  # CRC-16/MODBUS of the same bytes


def test_standard_example_fields() -> None:
    p = hj212.parse(SPEC_EXAMPLE)
    assert (p.qn, p.st, p.cn, p.pw, p.mn, p.flag) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
        5,
    )
    assert dict(p.cp) == {"RtdInterval": "30"}
    # Flag 5 = 0b000001_0_1: version bits 000001 → 2017, D=0, A=1 → an ack is wanted.
    assert p.version is hj212.Version.HJ212_2017
    assert p.needs_ack
    assert not p.is_split


def test_lowercase_crc_is_accepted() -> None:
    assert hj212.parse(GUOCAY).cp["a21002-Rtd"] == "49.20"


def test_hourly_c17_packet_and_its_acknowledgement() -> None:
    p = hj212.parse(HOURLY_C17)
    assert p.cp["w01018-Avg"] == "40.1"
    # The ack standards.md §4.3 constructs for this packet: same QN/PW/MN, ST=91, CN=9014,
    # Flag=4 (2017, no ack wanted), empty CP, CRC FF01.
    assert hj212.data_ack(p) == ACK.encode()
    ack = hj212.parse(ACK)
    assert (ack.cn, ack.st, ack.flag, dict(ack.cp)) == ("9014", "91", 4, {})


def test_qn_rtn_reply_is_a_valid_9011_packet() -> None:
    p = hj212.parse(HOURLY_C17)
    reply = hj212.qn_rtn(p, hj212.QnRtn.BAD_CRC)
    # QN=20160801090000001;ST=91;CN=9011;PW=123456;MN=010000A8900016F000169DC0;Flag=4;
    # CP=&&QnRtn=9&&: "QN=…;" 21 + "ST=91;" 6 + "CN=9011;" 8 + "PW=123456;" 10 + "MN=…;" 28
    # + "Flag=4;" 7 + "CP=&&QnRtn=9&&" 14 = 94 characters (V13 of the reference file: 0094)
    assert reply.startswith(b"##0094QN=20160801090000001;ST=91;CN=9011;")
    back = hj212.parse(reply)
    assert (back.cn, back.qn, back.cp["QnRtn"]) == ("9011", p.qn, "9")


def test_version_bits() -> None:
    # Flag = V5..V0 D A: 000001 → 2017 (4..7), 000010 → 2025 (8..11), no Flag → 2005.
    def with_flag(flag: int | None) -> hj212.Packet:
        return hj212.parse(hj212.build(st="32", cn="9014", mn="M", flag=flag))

    assert with_flag(None).version is hj212.Version.HJT212_2005
    assert with_flag(1).version is hj212.Version.HJT212_2005
    assert with_flag(4).version is hj212.Version.HJ212_2017
    assert with_flag(7).version is hj212.Version.HJ212_2017
    assert with_flag(8).version is hj212.Version.HJ212_2025
    assert with_flag(9).needs_ack
    assert with_flag(9).version is hj212.Version.HJ212_2025
    assert not with_flag(8).needs_ack
    assert not with_flag(None).needs_ack
    with pytest.raises(FieldError) as info:
        with_flag(12)  # version bits 000011: no edition defines them
    assert info.value.field == "Flag"


def test_make_flag() -> None:
    assert hj212.make_flag() == 4
    assert hj212.make_flag(ack=True) == 5
    assert hj212.make_flag(ack=True, split=True) == 7
    assert hj212.make_flag(hj212.Version.HJ212_2025) == 8
    assert hj212.make_flag(hj212.Version.HJT212_2005, ack=True) == 1


def test_ack_of_a_2025_packet_keeps_the_2025_version_bits() -> None:
    p = hj212.parse(hj212.build(st="31", cn="2011", mn="M1", qn="20260101000000000", flag=9))
    assert hj212.parse(hj212.data_ack(p)).flag == 8


# ----------------------------------------------------------------- samples


def test_hourly_packet_is_labelled_by_the_end_of_its_hour() -> None:
    p = hj212.parse(HOURLY_C17)
    time, interval, values = hj212.decode_data(p, Kind.EMISSION)
    # DataTime 2016-08-01 08:00 is the hour 08:00–09:00 (HJ 212 §4.9) → envwatch label 09:00.
    assert time == datetime(2016, 8, 1, 9, 0, tzinfo=BJ)
    assert interval is Interval.HOUR
    # w00000-Avg 17.5 L/s × 3.6 = 63.0 m³/h; pH 7.5; COD 40.1 mg/L
    assert values["flow"] == (pytest.approx(63.0), Flag.N)
    assert values["ph"] == (7.5, Flag.N)
    assert values["cod"] == (40.1, Flag.N)
    assert set(values) == {"flow", "ph", "cod"}


def _data(cn: str, cp: dict[str, str], st: str = "31") -> hj212.Packet:
    return hj212.parse(hj212.build(st=st, cn=cn, mn="MN1", qn="20260101000000000", flag=5, cp=cp))


def test_realtime_packet_keeps_its_instant_and_uses_rtd() -> None:
    p = _data("2011", {"DataTime": "20260115103000", "a21026-Rtd": "35.2", "a21026-Avg": "99"})
    time, interval, values = hj212.decode_data(p, Kind.EMISSION)
    assert time == datetime(2026, 1, 15, 10, 30, tzinfo=BJ)
    assert interval is Interval.RT
    assert values == {"so2": (35.2, Flag.N)}


def test_minute_and_day_labels() -> None:
    cp = {"DataTime": "20160801084000", "a21002-Avg": "50"}
    # 10-minute data 08:40–08:50 → label 08:50 (default MinInterval 10 min)
    assert hj212.decode_data(_data("2051", cp), Kind.EMISSION).time == datetime(
        2016, 8, 1, 8, 50, tzinfo=BJ
    )
    # with a logger configured for 5-minute data: 08:40–08:45 → 08:45
    five = hj212.decode_data(_data("2051", cp), Kind.EMISSION, minute_interval=timedelta(minutes=5))
    assert five.time == datetime(2016, 8, 1, 8, 45, tzinfo=BJ)
    # daily data: DataTime 2016-08-01 00:00 is the day 08-01 → label 2016-08-02 00:00 Beijing
    day = _data("2031", {"DataTime": "20160801000000", "a21002-Avg": "50"})
    assert hj212.decode_data(day, Kind.EMISSION).time == datetime(2016, 8, 2, 0, 0, tzinfo=BJ)
    # the label is an instant: 2016-08-02 00:00 +08:00 = 2016-08-01 16:00 UTC
    assert hj212.decode_data(day, Kind.EMISSION).time.utcoffset() == timedelta(hours=8)


def test_flue_gas_flow_is_converted_from_m3_per_s_to_m3_per_h() -> None:
    p = _data("2061", {"DataTime": "20240122170000", "a00000-Avg": "5.331"})
    # 5.331 m³/s × 3600 s/h = 19191.6 m³/h
    assert hj212.decode_data(p, Kind.EMISSION).values["flow"][0] == pytest.approx(19191.6)


def test_heavy_metals_in_ug_per_l_become_mg_per_l() -> None:
    p = _data("2061", {"DataTime": "20240122170000", "w20111-Avg": "0.05"}, st="21")
    # Hg 0.05 µg/L × 0.001 = 0.00005 mg/L (GB 3838 class I limit is 0.00005 mg/L)
    assert hj212.decode_data(p, Kind.WATER).values["hg"][0] == pytest.approx(0.00005)


def test_2005_codes_map_like_their_2017_equivalents() -> None:
    # standards.md §4.10: 011 = w01018 COD, 060 = w21003 NH3-N, B01 = w00000 flow (L/s)
    p = _data(
        "2011",
        {"DataTime": "20160824003817", "011-Rtd": "231.0", "060-Rtd": "1.803", "B01-Rtd": "36.91"},
        st="32",
    )
    values = hj212.decode_data(p, Kind.EMISSION).values
    assert values["cod"] == (231.0, Flag.N)
    assert values["nh3n"] == (1.803, Flag.N)
    # 36.91 L/s × 3.6 = 132.876 m³/h
    assert values["flow"][0] == pytest.approx(132.876)


def test_zs_value_preferred_when_asked() -> None:
    cp = {
        "DataTime": "20260101080000",
        "a21026-Avg": "80",
        "a21026-ZsAvg": "95",
        "a21026-Flag": "N",
    }
    assert hj212.decode_data(_data("2061", cp), Kind.EMISSION).values["so2"][0] == 80.0
    corrected = hj212.decode_data(_data("2061", cp), Kind.EMISSION, corrected=True)
    assert corrected.values["so2"][0] == 95.0
    # no -ZsAvg → the raw -Avg is used
    cp2 = {"DataTime": "20260101080000", "a21002-Avg": "120"}
    assert hj212.decode_data(_data("2061", cp2), Kind.EMISSION, corrected=True).values == {
        "nox": (120.0, Flag.N)
    }


def test_data_flags_are_carried_and_unknown_flags_count_as_fault() -> None:
    cp = {
        "DataTime": "20260101080000",
        "a21026-Avg": "1",
        "a21026-Flag": "M",
        "a21002-Avg": "2",
        "a21002-Flag": "P",
        "a34013-Avg": "3",
    }
    values = hj212.decode_data(_data("2061", cp), Kind.EMISSION).values
    assert values["so2"][1] is Flag.M  # 维护 maintenance
    assert values["nox"][1] is Flag.D  # "P" is not in 表8 → abnormal
    assert values["pm"][1] is Flag.N  # no flag given → normal


def test_air_station_minute_packet_from_the_reference_file() -> None:
    rec = next((r for r in RECORDS if r["id"] == "V10"), None)
    if rec is None:
        pytest.skip(f"reference data absent: {DATA}")
    time, interval, values = hj212.decode_data(hj212.parse(rec["packet"]), Kind.AIR)
    # DataTime 2022-05-13 16:26 + 10 min → 16:36; values as sent (µg/m³, CO mg/m³);
    # meteorology (a01001/2/6/7/8) is dropped.
    assert time == datetime(2022, 5, 13, 16, 36, tzinfo=BJ)
    assert interval is Interval.MIN
    assert values == {
        "no2": (4.0, Flag.N),
        "o3": (63.0, Flag.N),
        "so2": (6.0, Flag.N),
        "co": (0.427, Flag.N),
        "pm25": (14.0, Flag.N),
        "pm10": (31.0, Flag.N),
    }


def test_unknown_codes_are_listed() -> None:
    cp = {"DataTime": "20260101080000", "a21026-Avg": "1", "zz999-Avg": "2", "a2101-Avg": "3"}
    with pytest.raises(UnknownCodeError) as info:
        hj212.decode_data(_data("2061", cp), Kind.EMISSION)
    assert info.value.codes == ["a2101", "zz999"]
    # an operator may choose to drop codes they know are harmless
    values = hj212.decode_data(_data("2061", cp), Kind.EMISSION, ignore_codes={"zz999", "a2101"})
    assert values.values == {"so2": (1.0, Flag.N)}


def test_decode_refusals_are_typed() -> None:
    with pytest.raises(UnsupportedCommandError):
        hj212.decode_data(hj212.parse(ACK), Kind.EMISSION)
    with pytest.raises(MissingFieldError) as missing:
        hj212.decode_data(_data("2061", {"a21026-Avg": "1"}), Kind.EMISSION)
    assert missing.value.field == "DataTime"
    with pytest.raises(FieldError) as bad_time:
        hj212.decode_data(
            _data("2061", {"DataTime": "20261301000000", "a21026-Avg": "1"}), Kind.EMISSION
        )
    assert bad_time.value.field == "DataTime"
    with pytest.raises(FieldError) as bad_value:
        hj212.decode_data(
            _data("2061", {"DataTime": "20260101000000", "a21026-Avg": "1.2.3"}), Kind.EMISSION
        )
    assert bad_value.value.field is not None
    assert bad_value.value.field.startswith("a21026")
    with pytest.raises(FieldError):
        hj212.decode_data(
            _data("2061", {"DataTime": "20260101000000", "a21026-Avg": "nan"}), Kind.EMISSION
        )
    with pytest.raises(EmptySampleError):  # only meteorology: nothing for an emission source
        hj212.decode_data(
            _data("2061", {"DataTime": "20260101000000", "a01007-Avg": "3"}), Kind.EMISSION
        )


def test_length_error_names_declared_and_actual() -> None:
    bad = "##0102" + SPEC_EXAMPLE[6:]
    with pytest.raises(LengthError) as info:
        hj212.parse(bad)
    assert (info.value.declared, info.value.actual) == ("0102", 101)


# ----------------------------------------------------------------- split packets


def _part(pno: int, cp: dict[str, str], pnum: int = 2) -> hj212.Packet:
    return hj212.parse(
        hj212.build(
            st="31",
            cn="2061",
            mn="MN9",
            qn="20260101090000000",
            flag=hj212.make_flag(split=True, ack=True),
            pnum=pnum,
            pno=pno,
            cp=cp,
        )
    )


def test_split_parts_join_in_pno_order_whatever_the_arrival_order() -> None:
    joiner = hj212.SplitAssembler(timeout=60)
    second = _part(2, {"DataTime": "20260101080000", "a21002-Avg": "40"})
    first = _part(1, {"DataTime": "20260101080000", "a21026-Avg": "12"})
    assert first.pnum_pno == (2, 1)
    assert first.is_split
    assert joiner.add(second, now=0.0) is None
    whole = joiner.add(first, now=1.0)
    assert whole is not None
    assert not whole.is_split
    assert dict(whole.cp) == {"DataTime": "20260101080000", "a21026-Avg": "12", "a21002-Avg": "40"}
    assert len(joiner) == 0
    assert hj212.decode_data(whole, Kind.EMISSION).values == {
        "so2": (12.0, Flag.N),
        "nox": (40.0, Flag.N),
    }


def test_incomplete_split_expires_and_contradicting_parts_fail() -> None:
    joiner = hj212.SplitAssembler(timeout=60)
    joiner.add(_part(1, {"DataTime": "20260101080000"}), now=0.0)
    assert joiner.expire(now=30.0) == []
    dropped = joiner.expire(now=61.0)
    assert [[p.pno for p in parts] for parts in dropped] == [[1]]
    joiner.add(_part(1, {"DataTime": "20260101080000"}), now=100.0)
    with pytest.raises(SplitError):
        joiner.add(_part(2, {"DataTime": "20260101090000"}), now=101.0)


def test_unsplit_packet_passes_through_the_assembler() -> None:
    p = hj212.parse(HOURLY_C17)
    assert hj212.SplitAssembler().add(p, now=0.0) is p


def test_encode_values_round_trips_through_decode() -> None:
    start = datetime(2026, 1, 1, 8, 0, tzinfo=BJ)
    cp = hj212.encode_values(
        Kind.EMISSION,
        Interval.HOUR,
        {"so2": (35.0, Flag.N), "flow": (7200.0, "N")},
        data_time=start,
    )
    # flow 7200 m³/h ÷ 3600 = 2 m³/s on the wire
    assert cp["a00000-Avg"] == "2"
    back = hj212.decode_data(_data("2061", cp), Kind.EMISSION)
    assert back.time == start + timedelta(hours=1)
    assert back.values == {"so2": (35.0, Flag.N), "flow": (7200.0, Flag.N)}
