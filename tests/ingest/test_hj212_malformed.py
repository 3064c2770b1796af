"""Malformed input: the codec refuses it with its own error type, never anything else."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import hj212
from ingest.errors import (
    CrcError,
    EncodingError,
    FieldError,
    FramingError,
    Hj212Error,
    IngestError,
    LengthError,
    MissingFieldError,
)

GOOD = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80\r\n"
)
HOURLY = hj212.build(
    st="31",
    cn="2061",
    mn="MN0001",
    qn="20260101090000000",
    flag=5,
    cp={"DataTime": "20260101080000", "a21026-Avg": "12.5", "a21026-Flag": "N"},
)


def _refused(data: object) -> Hj212Error:
    with pytest.raises(Hj212Error) as info:
        hj212.parse(data)  # type: ignore[arg-type]
    return info.value


def _with_segment(segment: bytes) -> bytes:
    """A packet around ``segment`` with a correct length and CRC (to reach the inner checks)."""
    return hj212.frame(segment)


def test_the_error_root_is_importable_from_the_codec_and_is_an_ingest_error() -> None:
    assert hj212.Hj212Error is Hj212Error
    assert issubclass(Hj212Error, IngestError)


@pytest.mark.parametrize("cut", range(len(GOOD) - 2))
def test_every_truncation_is_refused(cut: int) -> None:
    # GOOD[:cut] drops at least the CRLF's predecessor bytes; no prefix is a whole packet.
    _refused(GOOD[:cut])


def test_wrong_length_is_a_length_error() -> None:
    err = _refused(GOOD.replace(b"##0101", b"##0100"))
    assert isinstance(err, LengthError)
    assert (err.declared, err.actual) == ("0100", 101)
    assert isinstance(_refused(GOOD.replace(b"##0101", b"##01x1")), LengthError)
    assert isinstance(_refused(GOOD.replace(b"##0101", b"##-101")), LengthError)


def test_too_long_segment_is_a_length_error_even_with_a_right_crc() -> None:
    big = _with_segment(
        b"ST=32;CN=2011;PW=1;MN=M;CP=&&" + b"".join(b"x%03d=1;" % i for i in range(200)) + b"&&"
    )
    assert int(big[2:6]) > 1024  # 表2: the data segment is at most 1024 characters
    err = _refused(big)
    assert isinstance(err, LengthError)
    assert hj212.parse(big, max_data_len=9999).mn == "M"  # an operator may raise the limit


def test_wrong_crc_is_a_crc_error_with_both_values() -> None:
    err = _refused(GOOD.replace(b"&&1C80", b"&&1C81"))
    assert isinstance(err, CrcError)
    assert (err.declared, err.computed) == ("1C81", 0x1C80)


def test_byte_swapped_crc_is_refused() -> None:
    # devices that print the low byte first send 801C for 1C80
    err = _refused(GOOD.replace(b"&&1C80", b"&&801C"))
    assert isinstance(err, CrcError)


def test_non_hex_crc_is_a_crc_error() -> None:
    assert isinstance(_refused(GOOD.replace(b"&&1C80", b"&&1CG0")), CrcError)


def test_crc_is_not_checked_only_when_the_caller_says_so() -> None:
    bad = GOOD.replace(b"&&1C80", b"&&0000")
    assert hj212.parse(bad, verify_crc=False).cn == "1062"


def test_non_utf8_bytes_with_a_correct_crc_are_an_encoding_error() -> None:
    # GBK "温度" (CE C2 B6 C8) is not UTF-8
    packet = _with_segment(b"ST=32;CN=2011;PW=1;MN=M;CP=&&Note=\xce\xc2\xb6\xc8&&")
    assert isinstance(_refused(packet), EncodingError)


def test_utf8_chinese_in_cp_is_accepted_and_counted_in_bytes() -> None:
    packet = _with_segment("ST=32;CN=2011;PW=1;MN=M;CP=&&Info=温度&&".encode())
    # "ST=32;CN=2011;PW=1;MN=M;CP=&&Info=" is 34 bytes, 温度 6 bytes in UTF-8, "&&" 2 → 42
    assert packet[2:6] == b"0042"
    assert hj212.parse(packet).cp["Info"] == "温度"


def test_non_ascii_in_the_header_is_a_field_error() -> None:
    err = _refused(_with_segment("ST=32;CN=2011;PW=1;MN=监测点;CP=&&&&".encode()))
    assert isinstance(err, FieldError)
    assert err.field == "MN"


def test_non_ascii_text_outside_a_frame_is_refused() -> None:
    _refused("不是 HJ 212")
    _refused("##0101\udcff")  # a lone surrogate cannot even be encoded


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        (b"QN=1;ST=32;CN=2011;PW=1;MN=M;CP=&&&&", "QN"),  # QN too short
        (b"ST=3;CN=2011;PW=1;MN=M;CP=&&&&", "ST"),
        (b"ST=32;CN=20111;PW=1;MN=M;CP=&&&&", "CN"),
        (b"ST=32;CN=2011;PW=1;MN=;CP=&&&&", "MN"),
        (b"ST=32;CN=2011;PW=1;MN=M;Flag=256;CP=&&&&", "Flag"),
        (b"ST=32;CN=2011;PW=1;MN=M;Flag=x;CP=&&&&", "Flag"),
        (b"ST=32;CN=2011;PW=1;MN=M;PNUM=2;PNO=3;CP=&&&&", "PNO"),
        (b"ST=32;CN=2011;PW=1;MN=M;PNUM=2;PNO=0;CP=&&&&", "PNO"),
        (b"ST=32;ST=32;CN=2011;PW=1;MN=M;CP=&&&&", "ST"),
        (b"ST=32;CN=2011;PW=1;MN=M;XX=1;CP=&&&&", "XX"),
        (b"ST=32;CN=2011;PW=1;MN=M;CP=&&a=1;a=2&&", "a"),
        (b"ST=32;CN=2011;PW=1;MN=M;CP=&&novalue&&", "CP"),
        (b"ST=32;CN=2011;PW=1;MN=M;CP=&&=1&&", "CP"),
        (b"ST=32;CN=2011;PW=1;MN=M;CP=&&a=1", "CP"),
        (b"ST=32;CN=2011;PW=1;MN=MCP=&&&&", "CP"),
    ],
)
def test_malformed_fields_name_the_field(segment: bytes, field: str) -> None:
    err = _refused(_with_segment(segment))
    assert isinstance(err, FieldError)
    assert err.field == field


@pytest.mark.parametrize("missing", ["ST", "CN", "PW", "MN"])
def test_missing_required_header_field(missing: str) -> None:
    fields = {"ST": "32", "CN": "2011", "PW": "1", "MN": "M"}
    del fields[missing]
    segment = ";".join(f"{k}={v}" for k, v in fields.items()) + ";CP=&&&&"
    err = _refused(_with_segment(segment.encode()))
    assert isinstance(err, MissingFieldError)
    assert err.field == missing


def test_missing_cp_and_lone_pnum_are_missing_fields() -> None:
    assert _refused(_with_segment(b"ST=32;CN=2011;PW=1;MN=M")).field == "CP"
    err = _refused(_with_segment(b"ST=32;CN=2011;PW=1;MN=M;PNUM=2;CP=&&&&"))
    assert isinstance(err, MissingFieldError)
    assert err.field == "PNO"


@pytest.mark.parametrize(
    "data",
    [b"", b"#", b"##", b"##0000", b"\r\n", b"##0000\r\n", b"0101QN=", b"##0004ABCD1234", 42, None],
)
def test_degenerate_inputs(data: object) -> None:
    err = _refused(data)
    assert isinstance(err, FramingError | LengthError | CrcError | FieldError)


def test_10_kb_of_random_noise() -> None:
    rng = random.Random(212)  # seeded: the same noise every run
    noise = bytes(rng.randrange(256) for _ in range(10 * 1024))
    _refused(noise)
    _refused(b"##" + noise)
    _refused(b"##1024" + noise[:1024] + b"ABCD\r\n")
    # noise around a good packet is not a packet either (framing is the gateway's job)
    _refused(noise[:100] + GOOD)
    _refused(GOOD + noise[:100])


def _parse_or_refuse(data: bytes | str) -> None:
    # only the codec's own error is suppressed: anything else propagates and fails the test
    with contextlib.suppress(Hj212Error):
        hj212.parse(data)


@settings(max_examples=500)
@given(st.binary(max_size=2048))
def test_fuzz_binary(data: bytes) -> None:
    _parse_or_refuse(data)


@settings(max_examples=300)
@given(st.binary(max_size=1100))
def test_fuzz_binary_inside_a_valid_frame(segment: bytes) -> None:
    # a correct length and CRC around random bytes reaches the header and CP parsers
    _parse_or_refuse(_with_segment(segment))


@settings(max_examples=300)
@given(st.text(max_size=600))
def test_fuzz_text_inside_a_valid_frame(segment: str) -> None:
    _parse_or_refuse(_with_segment(segment.encode("utf-8", "surrogatepass")))
    _parse_or_refuse("##" + segment)


@settings(max_examples=500)
@given(st.integers(0, len(HOURLY) - 1), st.integers(0, 255))
def test_fuzz_one_byte_changed_in_a_valid_packet(at: int, value: int) -> None:
    mutated = bytearray(HOURLY)
    mutated[at] = value
    _parse_or_refuse(bytes(mutated))


@settings(max_examples=200)
@given(
    st.lists(
        st.sampled_from(
            [
                "QN=",
                "ST=",
                "CN=",
                "PW=",
                "MN=",
                "Flag=",
                "PNUM=",
                "PNO=",
                "CP=&&",
                "&&",
                ";",
                ",",
                "=",
                "2011",
                "99999",
                "-",
                "a21026",
                "Rtd",
                "DataTime",
            ]
        ),
        max_size=40,
    )
)
def test_fuzz_packet_like_tokens(tokens: list[str]) -> None:
    _parse_or_refuse(_with_segment("".join(tokens).encode()))
