"""Errors raised by the ingest edge (HJ 212 codec, gateway, bridge).

Hierarchy::

    IngestError                         root; never raised itself
    ├── Hj212Error                      any HJ 212 packet the codec refuses (reason, field)
    │   ├── FramingError                not a packet: no ``##``, too short, bad terminator
    │   ├── LengthError                 the 4-digit length is not digits / too big / ≠ data bytes
    │   ├── CrcError                    declared CRC ≠ HJ 212 附录A CRC of the data segment
    │   ├── EncodingError               data segment is not UTF-8
    │   ├── FieldError                  a header or CP field is malformed (field names it)
    │   │   ├── MissingFieldError       a required field is absent
    │   │   ├── UnsupportedCommandError the CN is not the kind of packet asked for
    │   │   └── EmptySampleError        a data packet carries no factor envwatch uses
    │   ├── UnknownCodeError            pollutant codes outside the HJ 212 code tables (codes)
    │   └── SplitError                  PNUM/PNO parts that do not fit together
    └── UnknownSourceError              a well-formed packet from an MN the catalogue lacks (mn)

Every :class:`Hj212Error` subclass has a class attribute ``code``: a short stable identifier
(``"crc"``, ``"length"`` …) that the gateway uses as the dead-letter reason and counter name, so
callers never parse messages. Data about the failure lives on the exception (``field``,
``declared``, ``computed``, ``codes`` …).
"""

from __future__ import annotations

from typing import ClassVar


class IngestError(Exception):
    """Root of every error raised by ``ingest``."""


class Hj212Error(IngestError):
    """A packet the HJ 212 codec refuses; ``reason`` says why, ``field`` where (when known)."""

    code: ClassVar[str] = "invalid"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        where = f" [{field}]" if field is not None else ""
        super().__init__(f"HJ 212 {self.code}{where}: {reason}")


class FramingError(Hj212Error):
    """The bytes are not an HJ 212 packet frame (``##`` dddd data CRC CRLF)."""

    code = "framing"


class LengthError(Hj212Error):
    """The declared data-segment length is malformed, too large, or differs from the data."""

    code = "length"

    def __init__(self, reason: str, *, declared: str, actual: int | None = None) -> None:
        self.declared = declared
        self.actual = actual
        super().__init__(reason, field="length")


class CrcError(Hj212Error):
    """The declared CRC does not match the HJ 212 附录A CRC-16 of the data segment."""

    code = "crc"

    def __init__(self, *, declared: str, computed: int) -> None:
        self.declared = declared
        self.computed = computed
        super().__init__(f"declared {declared!r}, computed {computed:04X}", field="CRC")


class EncodingError(Hj212Error):
    """The data segment is not valid UTF-8 (HJ 212: ASCII; Chinese allowed as UTF-8)."""

    code = "encoding"


class FieldError(Hj212Error):
    """A header or CP field is malformed; ``field`` names it."""

    code = "field"

    def __init__(self, field: str, reason: str, *, value: str | None = None) -> None:
        self.value = value
        super().__init__(reason, field=field)


class MissingFieldError(FieldError):
    """A required field is absent."""

    code = "missing_field"

    def __init__(self, field: str) -> None:
        super().__init__(field, "required field is missing")


class UnsupportedCommandError(FieldError):
    """The packet's CN is not what the caller can handle (e.g. decoding a 9014 as data)."""

    code = "unsupported_cn"

    def __init__(self, cn: str, reason: str) -> None:
        self.cn = cn
        super().__init__("CN", reason, value=cn)


class EmptySampleError(FieldError):
    """A data packet with no factor that envwatch uses for the source's kind."""

    code = "no_values"

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__("CP", f"no factor of kind {kind!r} in the packet")


class UnknownCodeError(Hj212Error):
    """Pollutant codes outside the HJ 212 code tables (``codes``, sorted)."""

    code = "unknown_code"

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        super().__init__(f"unknown pollutant code(s): {', '.join(codes)}", field="CP")


class SplitError(Hj212Error):
    """Parts of a split packet (PNUM/PNO) that contradict each other."""

    code = "split"


class UnknownSourceError(IngestError):
    """A well-formed HJ 212 packet from a data logger (MN) the catalogue does not know."""

    code: ClassVar[str] = "unknown_mn"

    def __init__(self, mn: str) -> None:
        self.mn = mn
        super().__init__(f"unknown MN {mn!r}")
