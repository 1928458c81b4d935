"""YAML text -> plain Python values plus the line of every value, so a mapping error can name its line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor

Path = tuple[Any, ...]


class YamlError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def load(text: str) -> tuple[Any, dict[Path, int]]:
    """The document's value and {path from the root (keys and list indexes): 1-based line}."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlError(f"not valid YAML: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"not valid YAML: {type(exc).__name__}", 1) from None
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    constructor = SafeConstructor()
    return _value(node, (), lines, constructor), lines


def _value(node: yaml.Node, path: Path, lines: dict[Path, int], constructor: SafeConstructor) -> Any:  # noqa: ANN401
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise YamlError("keys must be text", key_node.start_mark.line + 1)
            if key in out:
                raise YamlError(f"'{key}' appears twice in the same object", key_node.start_mark.line + 1)
            out[key] = _value(value_node, (*path, key), lines, constructor)
            # An element is where its key is: a block value starts on the line after it.
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(item, (*path, i), lines, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node)


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of `path`, or of its nearest enclosing value that has one."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
