"""The wire form of people's commands (alerts.commands) on ``aggregates`` and ``alert-commands``.

A command travels on ``aggregates`` — the locality stage's input, key = the locality id UTF-8 —
as the usual wire points list (:func:`streams.wire.points_bytes`) holding one point::

    [{"measurement": "command", "tags": {"locality": L},
      "fields": {"command": "<Command JSON>"}, "time": "<issued_at ISO>", "ns": <issued_at ns>}]

(its id, ``command|locality=L|<issued_at UTC>``, is derived: :func:`streams.wire.point_id`)

so it is ordered with that locality's data and replayed with it from checkpoints. The locality
stage answers with one :class:`alerts.commands.CommandResult` JSON per command on
``alert-commands`` (key = locality).
"""

from __future__ import annotations

from alerts.commands import Command, CommandResult, command_of, command_point
from streams.wire import decode_points, points_bytes


def encode_command(cmd: Command) -> tuple[bytes, bytes]:
    """(key, value) of a command on ``aggregates``."""
    return cmd.locality.encode(), points_bytes([command_point(cmd)])


def decode_command(value: bytes) -> Command:
    """The command of an ``aggregates`` value written by :func:`encode_command` (the first
    ``command`` point); raises ``ValueError`` when there is none or it is invalid."""
    for point in decode_points(value):
        if isinstance(point, dict) and point.get("measurement") == "command":
            return command_of(point)
    raise ValueError("no command point in the record")


def encode_result(result: CommandResult) -> tuple[bytes, bytes]:
    """(key, value) of a command's result on ``alert-commands``."""
    return result.locality.encode(), result.to_bytes()


def decode_result(value: bytes) -> CommandResult:
    return CommandResult.from_bytes(value)
