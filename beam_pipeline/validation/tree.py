"""A snapshot's flat element list as a tree: each element with its children and, apart, its slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    element: dict[str, Any]
    children: list[Node] = field(default_factory=list)
    slices: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The last step of the element's path (`value[x]`, `system`)."""
        return self.element["path"].rsplit(".", 1)[-1]

    @property
    def slice_name(self) -> str | None:
        return self.element.get("sliceName")

    def child(self, name: str) -> Node | None:
        for node in self.children:
            if node.name == name:
                return node
        return None


def _steps(element_id: str) -> list[str]:
    # Ids are dotted steps; a slice step is `name:slice` (slice names carry no dots in R4 packages).
    return element_id.split(".")


def build(snapshot: list[dict[str, Any]]) -> tuple[Node, dict[str, Node]]:
    """The root node and every node by element id."""
    nodes: dict[str, Node] = {}
    root: Node | None = None
    for element in snapshot:
        element_id = element.get("id") or element["path"]
        node = Node(element)
        nodes[element_id] = node
        steps = _steps(element_id)
        if len(steps) == 1:
            root = root or node
            continue
        last = steps[-1]
        parent_id = ".".join(steps[:-1])
        if ":" in last:
            # A slice of the element named before the colon, under the same parent.
            base_id = f"{parent_id}.{last.split(':', 1)[0]}"
            owner = nodes.get(base_id)
            if owner is not None:
                owner.slices.append(node)
                continue
        parent = nodes.get(parent_id)
        if parent is not None:
            parent.children.append(node)
    if root is None:
        raise ValueError("a snapshot without a root element")
    return root, nodes
