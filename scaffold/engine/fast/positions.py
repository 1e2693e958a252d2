"""``PositionProvider``'s positions for a few nodes, without paying for every node's.

LibCST's ``PositionProvider`` regenerates the module and records a range for each of its tens
of thousands of nodes (a context manager and two range objects per node), when a codemod
needs the positions of the handful of sites it records. ``positions(module, nodes)``
regenerates the module once, tracking lines and columns as LibCST does, but records ranges
only inside the requested nodes (a node's range may be hoisted from its children's, so their
subtrees are recorded in full). The ranges are LibCST's, exactly:
tests/engine/test_metadata_and_dispatch.py compares them on every node of real files.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import libcst as cst
from libcst._add_slots import add_slots
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from scaffold.engine.fast._mode import is_plain

_NOTHING: AbstractContextManager[None] = nullcontext()


class _Ranges:
    """Where the codegen state writes ranges (it expects a provider's ``_computed``)."""

    def __init__(self) -> None:
        self._computed: dict[cst.CSTNode, CodeRange] = {}


@add_slots
@dataclass(frozen=False)
class _SomePositions(PositionProvidingCodegenState):
    wanted: frozenset[cst.CSTNode] = frozenset()
    depth: int = 0  # > 0 while generating inside a wanted node
    entered: list[bool] = field(default_factory=list)

    def before_codegen(self, node: cst.CSTNode) -> None:
        entering = node in self.wanted
        self.entered.append(entering)
        if entering:
            self.depth += 1
        if self.depth:
            PositionProvidingCodegenState.before_codegen(self, node)

    def after_codegen(self, node: cst.CSTNode) -> None:
        if self.depth:
            PositionProvidingCodegenState.after_codegen(self, node)
        if self.entered.pop():
            self.depth -= 1

    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Any:
        if not self.depth:
            return _NOTHING
        return self._record(node, start_node=start_node, end_node=end_node)

    @contextmanager
    def _record(self, node: cst.CSTNode, **hoisted: cst.CSTNode | None) -> Iterator[None]:
        with PositionProvidingCodegenState.record_syntactic_position(self, node, **hoisted):
            yield


def positions(module: cst.Module, nodes: Collection[cst.CSTNode]) -> dict[cst.CSTNode, CodeRange]:
    """``PositionProvider``'s range of each of ``nodes`` (all in ``module``)."""
    if is_plain():
        every = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        return {node: every[node] for node in nodes}
    ranges = _Ranges()
    state = _SomePositions(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        provider=ranges,  # type: ignore[arg-type]  # only its _computed is used
        wanted=frozenset(nodes),
    )
    module._codegen(state)
    return {node: ranges._computed[node] for node in nodes}


class SiteRecorder(Protocol):
    """A rule holding sites it recorded on a tree, to be positioned later (a codemod)."""

    @property
    def unplaced(self) -> tuple[cst.Module | None, set[cst.CSTNode]]: ...

    def place(self, ranges: Mapping[cst.CSTNode, CodeRange]) -> None: ...


def place_sites(recorders: Sequence[SiteRecorder]) -> None:
    """Position the sites rules recorded on one same tree, in a single pass over it."""
    waiting = [(recorder, *recorder.unplaced) for recorder in recorders if recorder.unplaced[1]]
    if not waiting:
        return
    tree = waiting[0][1]
    assert tree is not None and all(visited is tree for _, visited, _ in waiting)
    ranges = positions(tree, set().union(*(nodes for _, _, nodes in waiting)))
    for recorder, _, _ in waiting:
        recorder.place(ranges)
