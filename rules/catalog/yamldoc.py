"""YAML with lines: PyYAML used as a pure parser (text → nodes) so that every value keeps the
line it came from, and every problem names the file, the line, the field path and the reason.

* :func:`parse_located` — ``(file, text, problems)`` → (:class:`LocatedDoc`, plain data); a
  syntax error is added to ``problems`` and the data is None.
* :class:`LocatedDoc` — the line of every node by :data:`FieldPath`; :meth:`LocatedDoc.problem`
  records a :class:`rules.errors.ConfigProblem` at a path (the nearest known line).
* :func:`fmt_path` — ``("rules", 3, "severity")`` → ``rules[3].severity``.

Used by the catalogue (:mod:`rules.catalog.build`) and by the alert rules
(``alerts.rules.alert_rules_from_text``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from rules.errors import ConfigProblem

FieldPath = tuple[str | int, ...]


def fmt_path(path: FieldPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


class LocatedDoc:
    """One parsed YAML file: plain data plus the line of every node (by field path)."""

    def __init__(self, file: str, problems: list[ConfigProblem]) -> None:
        self.file = file
        self.lines: dict[FieldPath, int] = {}
        self.problems = problems
        self.broken_ids: set[str] = set()
        self.broken_items: list[dict[str, Any]] = []  # raw items that failed validation

    def line(self, path: FieldPath) -> int | None:
        p = path
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, path: FieldPath, reason: str) -> None:
        self.problems.append(ConfigProblem(self.file, fmt_path(path), reason, self.line(path)))

    def build(self, loader: Any, node: yaml.Node, path: FieldPath) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # keys are read as their text: YAML 1.1 would turn ``no:`` into False
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(path, "a mapping key must be text")
                    continue
                key = str(key_node.value)
                if key in out:
                    self.lines[(*path, key)] = key_node.start_mark.line + 1
                    self.problem((*path, key), "duplicate key")
                    continue
                out[key] = self.build(loader, value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(loader, n, (*path, i)) for i, n in enumerate(node.value)]
        return loader.construct_object(node, deep=True)


#: libyaml's parser when present (same nodes and marks, several times faster), else pure Python.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_located(file: str, text: str, problems: list[ConfigProblem]) -> tuple[LocatedDoc, Any]:
    doc = LocatedDoc(file, problems)
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else doc.build(loader, node, ())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = str(getattr(exc, "problem", None) or exc)
        problems.append(ConfigProblem(file, "(document)", f"YAML syntax: {reason}", line))
        return doc, None
    finally:
        loader.dispose()
    return doc, data


@dataclass(slots=True)
class Located:
    obj: Any
    doc: LocatedDoc
    path: FieldPath
