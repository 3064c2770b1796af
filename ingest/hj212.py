"""HJ 212 codec (pure): framing, CRC, header and CP parsing, packet building, replies, samples.

Covers HJ 212-2017 (污染物在线监控（监测）系统数据传输标准), packets with HJ/T 212-2005 headers and
pollutant codes, and the HJ 212-2025 version bits of ``Flag``. Sources: standards.md §4 (the
standard's text, cited by table/appendix below). No clock, no I/O: times are passed in.

Packet (HJ 212-2017 表2)::

    ##  dddd  QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&  XXXX  \\r\\n
    head len  data segment (dddd bytes, ≤ 1024)                        CRC   tail

Public API:

* :func:`parse` — a whole packet (``str`` or ``bytes``, CRLF optional) → :class:`Packet`.
* :func:`crc16` — HJ 212 附录A CRC-16 (NOT CRC-16/MODBUS).
* :func:`build`, :func:`build_segment`, :func:`make_flag`, :func:`qn_for`, :func:`format_data_time`,
  :func:`encode_values` — building packets (simulators, tests).
* :func:`data_ack` (CN 9014), :func:`qn_rtn` (CN 9011), :func:`exe_rtn` (CN 9012) — replies.
* :class:`SplitAssembler` — joins PNUM/PNO parts into one packet.
* :func:`decode_data` — a CN 2011/2051/2061/2031 packet → ``(time, interval, {factor: (value,
  flag)})`` with envwatch factor names, canonical units and envwatch period labels (END of the
  period, architecture.md §5).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from rules.beijing import BEIJING
from rules.factors import Kind

from ingest import hj212_codes
from ingest.errors import (
    CrcError,
    EmptySampleError,
    EncodingError,
    FieldError,
    FramingError,
    Hj212Error,
    LengthError,
    MissingFieldError,
    SplitError,
    UnknownCodeError,
    UnsupportedCommandError,
)
from ingest.schemas import Flag, Interval

__all__ = [
    "BEIJING",
    "DEFAULT_MINUTE_INTERVAL",
    "MAX_DATA_LEN",
    "Cn",
    "DataSample",
    "ExeRtn",
    "Hj212Error",
    "Packet",
    "QnRtn",
    "SplitAssembler",
    "Version",
    "build",
    "build_segment",
    "crc16",
    "data_ack",
    "decode_data",
    "encode_values",
    "exe_rtn",
    "format_cp",
    "format_data_time",
    "make_flag",
    "parse",
    "parse_data_time",
    "parse_segment",
    "qn_for",
    "qn_rtn",
]


#: Maximum data-segment length, HJ 212-2017 表2 (数据段 0–1024 chars).
MAX_DATA_LEN: Final = 1024

#: The minute-data period when the logger's MinInterval is not configured. HJ 212-2017 表4 allows
#: MinInterval ∈ {1,2,3,4,5,6,10,12,15,20,30} min (standards.md §4.8); 10 min is the example of
#: standards.md §4.9. [MEM] a configuration default an operator overrides per logger.
DEFAULT_MINUTE_INTERVAL: Final = timedelta(minutes=10)

_HEAD = b"##"
_TAIL = b"\r\n"
_OVERHEAD = 2 + 4 + 4  # "##" + dddd + CRC (HJ 212-2017 表2)

# Flag bits (HJ 212-2017 表3 note; standards.md §4.2): V5 V4 V3 V2 V1 V0 D A.
_FLAG_ACK = 0b01  # A: the receiver must answer (数据应答)
_FLAG_SPLIT = 0b10  # D: the packet carries PNUM/PNO
_FLAG_VERSION_SHIFT = 2


class Version(IntEnum):
    """Protocol edition, from the Flag version bits (standards.md §4.2)."""

    HJT212_2005 = 2005  # V=000000, or no Flag field at all (2005 headers)
    HJ212_2017 = 2017  # V=000001 (Flag 4–7)
    HJ212_2025 = 2025  # V=000010 (Flag 8–11) [2+]


_VERSION_BITS: Final[dict[int, Version]] = {
    0: Version.HJT212_2005,
    1: Version.HJ212_2017,
    2: Version.HJ212_2025,
}
_BITS_OF_VERSION: Final[dict[Version, int]] = {v: k for k, v in _VERSION_BITS.items()}


class Cn(StrEnum):
    """Command codes used here (HJ 212-2017 表9; standards.md §4.4)."""

    RTD_DATA = "2011"  # 实时数据
    MINUTE_DATA = "2051"  # 分钟数据
    HOUR_DATA = "2061"  # 小时数据
    DAY_DATA = "2031"  # 日历史数据
    QN_RTN = "9011"  # 请求应答
    EXE_RTN = "9012"  # 执行结果
    NOTIFY_RTN = "9013"  # 通知应答
    DATA_ACK = "9014"  # 数据应答
    HEARTBEAT = "9015"  # 心跳包 (HJ 212-2025 [1])


#: CN → envwatch interval for the data uploads envwatch turns into samples.
DATA_COMMANDS: Final[Mapping[str, Interval]] = MappingProxyType(
    {
        Cn.RTD_DATA.value: Interval.RT,
        Cn.MINUTE_DATA.value: Interval.MIN,
        Cn.HOUR_DATA.value: Interval.HOUR,
        Cn.DAY_DATA.value: Interval.DAY,
    }
)


class QnRtn(IntEnum):
    """请求回应 QnRtn (HJ 212-2017 表7)."""

    READY = 1  # 准备执行请求
    REJECTED = 2  # 请求被拒绝
    BAD_PW = 3  # PW 错误
    BAD_MN = 4  # MN 错误
    BAD_ST = 5  # ST 错误
    BAD_FLAG = 6  # Flag 错误
    BAD_QN = 7  # QN 错误
    BAD_CN = 8  # CN 错误
    BAD_CRC = 9  # CRC 校验错误
    UNKNOWN = 100  # 未知错误


class ExeRtn(IntEnum):
    """执行结果 ExeRtn (HJ 212-2017 表6)."""

    SUCCESS = 1
    FAILED = 2  # 失败原因不明
    BAD_CONDITION = 3  # 命令请求条件错误
    TIMEOUT = 4  # 通讯超时
    BUSY = 5  # 系统繁忙
    FAULT = 6  # 系统故障
    NO_DATA = 100  # 没有数据


#: ST used for replies: 91 系统交互 (HJ 212-2017 表5; the ack example in standards.md §4.3).
ST_SYSTEM: Final = "91"

# ------------------------------------------------------------------------------------ CRC


def _crc_table() -> tuple[int, ...]:
    # HJ 212-2017 附录A: crc = (crc >> 8) ^ byte, then 8 × {lsb = crc & 1; crc >>= 1;
    # if lsb: crc ^= 0xA001}. After the XOR the register holds one byte only, so the 8 shifts
    # are a function of that byte: precompute them.
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
        table.append(reg)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes) -> int:
    """HJ 212 CRC-16 of ``data`` (附录A: init 0xFFFF, ``crc = (crc >> 8) ^ byte``, poly 0xA001).

    This is NOT CRC-16/MODBUS. Covers the data segment only; print it with ``f"{crc:04X}"``.
    """
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


# ------------------------------------------------------------------------------------ packet


@dataclass(frozen=True, slots=True)
class Packet:
    """One parsed HJ 212 packet. ``cp`` maps every CP key to its raw string value."""

    st: str
    cn: str
    pw: str
    mn: str
    qn: str | None
    flag: int | None
    pnum: int | None
    pno: int | None
    cp: Mapping[str, str]
    #: The data segment as received (without ``##``, length, CRC and CRLF).
    segment: str = ""

    @property
    def version(self) -> Version:
        """2005 when there is no Flag or its version bits are 0; 2017 for 1; 2025 for 2."""
        if self.flag is None:
            return Version.HJT212_2005
        return _VERSION_BITS[self.flag >> _FLAG_VERSION_SHIFT]

    @property
    def needs_ack(self) -> bool:
        """Flag bit A: the sender waits for a data acknowledgement (CN 9014)."""
        return self.flag is not None and bool(self.flag & _FLAG_ACK)

    @property
    def is_split(self) -> bool:
        """The packet is one part of a split upload (carries PNUM/PNO)."""
        return self.pnum is not None

    @property
    def pnum_pno(self) -> tuple[int, int] | None:
        """``(PNUM, PNO)`` for a split part, else None."""
        if self.pnum is None or self.pno is None:
            return None
        return self.pnum, self.pno


_RE_LEN = re.compile(rb"[0-9]{4}")
_RE_CRC = re.compile(rb"[0-9A-Fa-f]{4}")
# Header field formats (HJ 212-2017 表3, widened where real devices differ; standards.md §4.2).
_HEADER_FORMATS: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "QN": (re.compile(r"[0-9]{14,20}"), "14–20 digits (YYYYMMDDhhmmss[zzz])"),
    "ST": (re.compile(r"[A-Za-z0-9]{2,3}"), "2–3 letters or digits"),
    "CN": (re.compile(r"[0-9]{4}"), "4 digits"),
    "PW": (re.compile(r"[!-~]{1,64}"), "1–64 printable ASCII characters"),
    "MN": (re.compile(r"[A-Za-z0-9_.:\-]{1,64}"), "1–64 letters, digits, _ . : -"),
    "Flag": (re.compile(r"[0-9]{1,3}"), "an integer 0–255"),
    "PNUM": (re.compile(r"[0-9]{1,4}"), "1–4 digits"),
    "PNO": (re.compile(r"[0-9]{1,4}"), "1–4 digits"),
}
_REQUIRED: Final = ("ST", "CN", "PW", "MN")
_CP_OPEN = "CP=&&"
_CP_CLOSE = "&&"


def parse(
    packet: str | bytes | bytearray | memoryview,
    *,
    verify_crc: bool = True,
    max_data_len: int = MAX_DATA_LEN,
) -> Packet:
    """Parse a whole packet (``##`` … CRC, optionally followed by CRLF).

    Raises :class:`Hj212Error` (a subclass saying why) for anything that is not a valid packet;
    never another exception type.
    """
    if isinstance(packet, str):
        try:
            raw = packet.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise EncodingError(f"text cannot be encoded as UTF-8: {exc.reason}") from exc
    elif isinstance(packet, bytes | bytearray | memoryview):
        raw = bytes(packet)
    else:
        raise FramingError(f"expected str or bytes, got {type(packet).__name__}")
    if raw.endswith(_TAIL):
        raw = raw[: -len(_TAIL)]
    if not raw.startswith(_HEAD):
        raise FramingError("packet does not start with '##'")
    if len(raw) < _OVERHEAD:
        raise FramingError(f"{len(raw)} bytes is shorter than '##', length and CRC")
    length_field = raw[2:6]
    if not _RE_LEN.fullmatch(length_field):
        raise LengthError("length is not 4 decimal digits", declared=length_field.decode("latin-1"))
    declared = int(length_field)
    segment = raw[6:-4]
    if len(segment) != declared:
        raise LengthError(
            f"declared length {declared} but the data segment has {len(segment)} bytes",
            declared=length_field.decode("ascii"),
            actual=len(segment),
        )
    crc_field = raw[-4:]
    computed = crc16(segment)
    if not _RE_CRC.fullmatch(crc_field):
        raise CrcError(declared=crc_field.decode("latin-1"), computed=computed)
    if verify_crc and int(crc_field, 16) != computed:
        raise CrcError(declared=crc_field.decode("ascii"), computed=computed)
    if declared > max_data_len:
        raise LengthError(
            f"declared length {declared} exceeds the maximum {max_data_len}",
            declared=length_field.decode("ascii"),
            actual=len(segment),
        )
    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"data segment is not UTF-8 at byte {exc.start}") from exc
    return parse_segment(text)


def parse_segment(segment: str) -> Packet:
    """Parse a data segment (``QN=…;…;CP=&&…&&``) without framing or CRC."""
    cp_at = segment.find(_CP_OPEN)
    if cp_at < 0:
        raise MissingFieldError("CP")
    if cp_at > 0 and segment[cp_at - 1] != ";":
        raise FieldError("CP", "CP must follow a ';'")
    body_start = cp_at + len(_CP_OPEN)
    if len(segment) < body_start + len(_CP_CLOSE) or not segment.endswith(_CP_CLOSE):
        raise FieldError("CP", "CP does not end with '&&' at the end of the data segment")
    header = _parse_header(segment[: max(cp_at - 1, 0)])
    cp = parse_cp(segment[body_start : len(segment) - len(_CP_CLOSE)])
    flag = _int_or_none(header.get("Flag"))
    if flag is not None:
        if flag > 0xFF:
            raise FieldError("Flag", "Flag must be 0–255", value=header["Flag"])
        if (flag >> _FLAG_VERSION_SHIFT) not in _VERSION_BITS:
            raise FieldError(
                "Flag",
                f"unknown protocol version bits {flag >> _FLAG_VERSION_SHIFT:06b}",
                value=header["Flag"],
            )
    pnum = _int_or_none(header.get("PNUM"))
    pno = _int_or_none(header.get("PNO"))
    if (pnum is None) != (pno is None):
        raise MissingFieldError("PNO" if pno is None else "PNUM")
    if pnum is not None and pno is not None and not 1 <= pno <= pnum:
        raise FieldError("PNO", f"PNO {pno} outside 1..PNUM ({pnum})", value=header["PNO"])
    return Packet(
        st=header["ST"],
        cn=header["CN"],
        pw=header["PW"],
        mn=header["MN"],
        qn=header.get("QN"),
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=MappingProxyType(cp),
        segment=segment,
    )


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else int(text)


def _parse_header(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    if text:
        for part in text.split(";"):
            key, eq, value = part.partition("=")
            if not eq:
                raise FieldError(key or "header", "header field without '='", value=part)
            fmt = _HEADER_FORMATS.get(key)
            if fmt is None:
                raise FieldError(key, "unknown header field", value=value)
            if key in fields:
                raise FieldError(key, "header field given twice", value=value)
            if not fmt[0].fullmatch(value):
                raise FieldError(key, f"must be {fmt[1]}", value=value)
            fields[key] = value
    for key in _REQUIRED:
        if key not in fields:
            raise MissingFieldError(key)
    return fields


def parse_cp(body: str) -> dict[str, str]:
    """The CP body (between ``CP=&&`` and ``&&``) → {key: raw value}, keys in order.

    Items are separated by ``;`` and one item's fields by ``,`` (HJ 212-2017 §6.3.3); the
    mapping is flat. Empty items are skipped; a field without ``=`` or a repeated key is an error.
    """
    cp: dict[str, str] = {}
    if not body:
        return cp
    for item in body.split(";"):
        if not item:
            continue
        for part in item.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise FieldError("CP", "CP field must be name=value", value=part)
            if key in cp:
                raise FieldError(key, "CP field given twice", value=value)
            cp[key] = value
    return cp


# ------------------------------------------------------------------------------------ building


def make_flag(
    version: Version = Version.HJ212_2017, *, ack: bool = False, split: bool = False
) -> int:
    """The Flag value: version bits, D (split) and A (ack wanted). 2017+ack → 5, 2025 → 8."""
    return (
        (_BITS_OF_VERSION[version] << _FLAG_VERSION_SHIFT)
        | (_FLAG_SPLIT if split else 0)
        | (_FLAG_ACK if ack else 0)
    )


def qn_for(at: datetime) -> str:
    """A QN (request id, ``YYYYMMDDhhmmsszzz``, HJ 212-2017 表3) for the aware time ``at``."""
    local = at.astimezone(BEIJING)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def format_data_time(at: datetime) -> str:
    """A DataTime value (``YYYYMMDDhhmmss``, Beijing time) for the aware time ``at``."""
    return at.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def format_cp(cp: Mapping[str, str]) -> str:
    """Serialise a flat CP mapping: fields of one code joined by ``,``, items by ``;``.

    Consecutive keys sharing the code before ``-`` (``a21026-Rtd``, ``a21026-Flag``) form one item.
    """
    items: list[str] = []
    current: list[str] = []
    current_code: str | None = None
    for key, value in cp.items():
        code, dash, _ = key.partition("-")
        this = code if dash else None
        if current and (this is None or this != current_code):
            items.append(",".join(current))
            current = []
        current.append(f"{key}={value}")
        current_code = this
    if current:
        items.append(",".join(current))
    return ";".join(items)


def build_segment(
    *,
    st: str,
    cn: str,
    mn: str,
    cp: Mapping[str, str] | str = "",
    pw: str = "123456",
    qn: str | None = None,
    flag: int | None = None,
    pnum: int | None = None,
    pno: int | None = None,
) -> str:
    """The data segment ``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&``.

    Fields that are None are left out (2005 headers have no QN and no Flag).
    """
    parts = []
    if qn is not None:
        parts.append(f"QN={qn}")
    parts += [f"ST={st}", f"CN={cn}", f"PW={pw}", f"MN={mn}"]
    if flag is not None:
        parts.append(f"Flag={flag}")
    if pnum is not None:
        parts.append(f"PNUM={pnum}")
    if pno is not None:
        parts.append(f"PNO={pno}")
    body = cp if isinstance(cp, str) else format_cp(cp)
    parts.append(f"CP=&&{body}&&")
    return ";".join(parts)


def frame(segment: str | bytes, *, crlf: bool = True) -> bytes:
    """Wrap a data segment: ``##`` + 4-digit byte length + segment + CRC (``%04X``) + CRLF."""
    data = segment.encode("utf-8") if isinstance(segment, str) else segment
    if len(data) > 9999:
        raise ValueError(f"data segment of {len(data)} bytes does not fit a 4-digit length")
    tail = _TAIL if crlf else b""
    return b"%s%04d%s%04X%s" % (_HEAD, len(data), data, crc16(data), tail)


def build(
    *,
    st: str,
    cn: str,
    mn: str,
    cp: Mapping[str, str] | str = "",
    pw: str = "123456",
    qn: str | None = None,
    flag: int | None = None,
    pnum: int | None = None,
    pno: int | None = None,
    crlf: bool = True,
) -> bytes:
    """A complete packet as bytes (see :func:`build_segment` for the fields).

    Example — an hourly SO2 upload of a 2017 logger that wants an acknowledgement::

        build(st="31", cn="2061", mn="MN01", qn=qn_for(sent_at), flag=make_flag(ack=True),
              cp={"DataTime": "20260101080000", "a21026-Avg": "12.5", "a21026-Flag": "N"})
    """
    return frame(
        build_segment(st=st, cn=cn, mn=mn, cp=cp, pw=pw, qn=qn, flag=flag, pnum=pnum, pno=pno),
        crlf=crlf,
    )


def encode_values(
    kind: Kind,
    interval: Interval,
    values: Mapping[str, tuple[float, Flag | str]],
    *,
    data_time: datetime,
) -> dict[str, str]:
    """CP fields for envwatch factors (canonical units) — the inverse of :func:`decode_data`.

    ``data_time`` is the HJ 212 DataTime (for minute/hour/day data the START of the period).
    """
    suffix = "Rtd" if interval is Interval.RT else "Avg"
    cp = {"DataTime": format_data_time(data_time)}
    for factor, (value, flag) in values.items():
        code, scale = hj212_codes.code_for(kind, factor)
        cp[f"{code}-{suffix}"] = f"{value / scale:.10g}"
        cp[f"{code}-Flag"] = str(flag)
    return cp


# ------------------------------------------------------------------------------------ replies


def _reply(request: Packet, cn: Cn, cp: str) -> bytes:
    flag = None
    if request.flag is not None:
        flag = make_flag(request.version)  # same edition, no ack wanted, not split
    return build(
        st=ST_SYSTEM, cn=cn.value, mn=request.mn, pw=request.pw, qn=request.qn, flag=flag, cp=cp
    )


def data_ack(request: Packet) -> bytes:
    """数据应答 (CN 9014) for a packet whose Flag asks for it: same QN/PW/MN, ST 91, empty CP."""
    return _reply(request, Cn.DATA_ACK, "")


def qn_rtn(request: Packet, code: QnRtn = QnRtn.READY) -> bytes:
    """请求应答 (CN 9011) with ``QnRtn=code`` (HJ 212-2017 表7)."""
    return _reply(request, Cn.QN_RTN, f"QnRtn={int(code)}")


def exe_rtn(request: Packet, code: ExeRtn = ExeRtn.SUCCESS) -> bytes:
    """执行结果 (CN 9012) with ``ExeRtn=code`` (HJ 212-2017 表6)."""
    return _reply(request, Cn.EXE_RTN, f"ExeRtn={int(code)}")


# ------------------------------------------------------------------------------------ split


@dataclass(slots=True)
class _Pending:
    first_seen: float
    parts: dict[int, Packet] = field(default_factory=dict)


class SplitAssembler:
    """Joins the parts of a split upload (PNUM/PNO, HJ 212-2017 表3) into one packet.

    ``add(part, now)`` returns the joined packet once every PNO 1..PNUM arrived (any order;
    a repeated PNO replaces the earlier one), else None. ``expire(now)`` drops uploads older
    than ``timeout`` seconds and returns their parts. At most ``max_pending`` uploads are kept;
    the oldest is dropped (and returned by the next ``expire``) beyond that. ``now`` is any
    monotonic clock in seconds, passed in.
    """

    def __init__(self, *, timeout: float = 120.0, max_pending: int = 1024) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: dict[tuple[str, str, str, int], _Pending] = {}
        self._evicted: list[list[Packet]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, part: Packet, now: float) -> Packet | None:
        if part.pnum is None or part.pno is None:
            return part
        key = (part.mn, part.qn or "", part.cn, part.pnum)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].first_seen)
                self._evicted.append(list(self._pending.pop(oldest).parts.values()))
            pending = self._pending[key] = _Pending(first_seen=now)
        pending.parts[part.pno] = part
        if len(pending.parts) < part.pnum:
            return None
        del self._pending[key]
        return _join([pending.parts[i] for i in range(1, part.pnum + 1)])

    def expire(self, now: float) -> list[list[Packet]]:
        dropped, self._evicted = self._evicted, []
        for key in [k for k, p in self._pending.items() if now - p.first_seen > self.timeout]:
            dropped.append(list(self._pending.pop(key).parts.values()))
        return dropped


def _join(parts: list[Packet]) -> Packet:
    cp: dict[str, str] = {}
    for part in parts:
        for key, value in part.cp.items():
            if key in cp and cp[key] != value:
                raise SplitError(
                    f"PNO {part.pno} gives {key}={value!r}, an earlier part {cp[key]!r}",
                    field=key,
                )
            cp[key] = value
    first = parts[0]
    return Packet(
        st=first.st,
        cn=first.cn,
        pw=first.pw,
        mn=first.mn,
        qn=first.qn,
        flag=first.flag,
        pnum=None,
        pno=None,
        cp=MappingProxyType(cp),
        segment=first.segment,
    )


# ------------------------------------------------------------------------------------ samples


class DataSample(NamedTuple):
    """A decoded data packet: envwatch label time, interval and ``{factor: (value, flag)}``."""

    time: datetime
    interval: Interval
    values: dict[str, tuple[float, Flag]]


_RE_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_FLAGS: Final[dict[str, Flag]] = {f.value: f for f in Flag}


def parse_data_time(text: str, *, tz: ZoneInfo = BEIJING, field_name: str = "DataTime") -> datetime:
    """``YYYYMMDDhhmmss`` (optionally + ``zzz`` ms, as some loggers send) → aware datetime."""
    if not (len(text) in (14, 17) and text.isascii() and text.isdigit()):
        raise FieldError(field_name, "must be YYYYMMDDhhmmss[zzz]", value=text)
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            int(text[14:17] or 0) * 1000,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise FieldError(field_name, f"not a valid time: {exc}", value=text) from exc


def _flag_of(raw: str | None) -> Flag:
    # HJ 212-2017 表8. A missing flag (common in 2005 packets) means normal; an unknown letter
    # (2005 "P" power failure …) is treated as abnormal D, so it never counts as valid data
    # (standards.md §4.12: "accept unknown flags as abnormal").
    if raw is None or raw == "":
        return Flag.N
    return _FLAGS.get(raw.upper(), Flag.D)


def decode_data(
    packet: Packet,
    kind: Kind,
    *,
    corrected: bool = False,
    minute_interval: timedelta = DEFAULT_MINUTE_INTERVAL,
    tz: ZoneInfo = BEIJING,
    ignore_codes: Iterable[str] = (),
    scales: Mapping[str, float] | None = None,
) -> DataSample:
    """Turn a data packet (CN 2011/2051/2061/2031) into envwatch factors.

    * Value field: ``-Rtd`` for real-time (2011), ``-Avg`` for minute/hour/day; with
      ``corrected=True`` the O2-corrected ``-ZsRtd``/``-ZsAvg`` (折算, 表4) when present.
      A code without that field (e.g. only ``-Cou``) is skipped.
    * Flag: ``-Flag`` (表8); missing → N; unknown letter → D.
    * Time: DataTime in ``tz``. HJ 212 labels minute/hour/day data by the period START
      (standards.md §4.9); envwatch labels a period by its END (architecture.md §5), so the
      label is DataTime + ``minute_interval`` / 1 h / 1 day. Real-time data keep DataTime.
    * Codes: mapped by :mod:`ingest.hj212_codes` for ``kind``; codes the tables know but
      ``kind`` does not use (and ``ignore_codes``) are dropped; any other code raises
      :class:`UnknownCodeError` listing them all. ``scales`` overrides a code's unit scale.

    Raises :class:`UnsupportedCommandError` for other CNs, :class:`MissingFieldError` without
    DataTime, :class:`FieldError` for a malformed value, :class:`EmptySampleError` when no
    factor remains.
    """
    interval = DATA_COMMANDS.get(packet.cn)
    if interval is None:
        raise UnsupportedCommandError(packet.cn, "not a data upload (2011/2051/2061/2031)")
    raw_time = packet.cp.get("DataTime")
    if raw_time is None:
        raise MissingFieldError("DataTime")
    start = parse_data_time(raw_time, tz=tz)
    try:
        if interval is Interval.RT:
            label = start
        elif interval is Interval.MIN:
            label = start + minute_interval
        elif interval is Interval.HOUR:
            label = start + timedelta(hours=1)
        else:
            label = start + timedelta(days=1)
        label.astimezone(UTC)  # 0001-01-01 00:00+08:00 has no UTC time
    except OverflowError as exc:  # 9999-12-31: the period's end is past datetime.max
        raise FieldError(
            "DataTime",
            f"{raw_time} starts a period that ends outside years 1–9999 ({exc})",
            value=raw_time,
        ) from exc

    base = "Rtd" if interval is Interval.RT else "Avg"
    wanted: tuple[str, ...] = (f"Zs{base}", base) if corrected else (base,)
    ignored = frozenset(ignore_codes)
    codes: dict[str, None] = {}
    for key in packet.cp:
        code, dash, _ = key.partition("-")
        if dash and code:
            codes[code] = None

    values: dict[str, tuple[float, Flag]] = {}
    source_of: dict[str, str] = {}
    unknown: list[str] = []
    for code in codes:
        if code in ignored:
            continue
        if not hj212_codes.is_known(code):
            unknown.append(code)
            continue
        target = hj212_codes.target(kind, code)
        if target is None:
            continue
        raw_value = None
        for suffix in wanted:
            raw_value = packet.cp.get(f"{code}-{suffix}")
            if raw_value is not None:
                break
        if raw_value is None:
            continue
        value = _number(f"{code}-{wanted[-1]}", raw_value)
        scale = target.scale if scales is None else scales.get(code, target.scale)
        if scale != 1.0:  # drop binary noise of the conversion (17.5 × 3.6 → 63.0, not 63.00…01)
            value = float(f"{value * scale:.12g}")
        if target.factor in values:
            raise FieldError(
                code,
                f"gives factor {target.factor!r} already given by {source_of[target.factor]}",
            )
        source_of[target.factor] = code
        values[target.factor] = (value, _flag_of(packet.cp.get(f"{code}-Flag")))
    if unknown:
        raise UnknownCodeError(sorted(unknown))
    if not values:
        raise EmptySampleError(kind.value)
    return DataSample(label, interval, values)


def _number(key: str, raw: str) -> float:
    if not _RE_NUMBER.fullmatch(raw):
        raise FieldError(key, "not a decimal number", value=raw)
    value = float(raw)
    if not math.isfinite(value):
        raise FieldError(key, "not a finite number", value=raw)
    return value
