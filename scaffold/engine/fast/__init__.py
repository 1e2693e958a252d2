"""LibCST, faster: the engine's shortcuts through LibCST's internals, behind one door.

Rules and the runner import from here only. Every shortcut gives LibCST's own results (same
hooks in the same order, same metadata, same ranges, same imports); ``SCAFFOLD_PLAIN_LIBCST=1``
(or ``plain_libcst()``) turns them all off, and ``tests/engine/test_plain_libcst.py`` runs
the fixtures and real files both ways and compares bytes, findings, sites and lines: that
differential test is what guards this package.

- ``FastVisitor`` / ``FastTransformer`` (``dispatch``): visitor dispatch looked up once per
  class, no rebuild for read-only walks, ``prune_to`` for transformers;
- ``without_rebuild``: LibCST's own visitors (metadata providers, checks) walking without
  rebuilding every node;
- ``Metadata`` / ``OnDemand`` (``metadata``): providers resolved on first read, without
  LibCST's empty tree walks;
- ``positions`` / ``place_sites`` (``positions``): ``PositionProvider``'s ranges for the few
  nodes a rule records;
- ``TopImportsAdder`` (``imports``): ``AddImportsVisitor`` visiting only the leading imports;
  ``place_in_sections`` (isort's order for what it added) is ours, not a shortcut.

LibCST private names used, checked against LibCST 1.9.0 (the version ``pyproject.toml`` pins):

- ``libcst._typed_visitor.CSTTypedVisitorFunctions``, ``CSTTypedTransformerFunctions`` (the
  no-op stubs a visitor method resolves to when not overridden);
- ``libcst.matchers._decorators``: ``CONSTRUCTED_LEAVE_MATCHER_ATTR``,
  ``CONSTRUCTED_VISIT_MATCHER_ATTR``, ``VISIT_NEGATIVE_MATCHER_ATTR``,
  ``VISIT_POSITIVE_MATCHER_ATTR``; ``MatcherDecoratableTransformer._matchers``,
  ``_extra_visit_funcs``, ``_extra_leave_funcs``;
- ``CSTNode._visit_and_replace_children`` (to learn each node type's field order);
- ``MetadataWrapper._metadata``, ``_cache``; a provider's ``_gen``, ``_computed``; the
  provider visitors ``ScopeVisitor`` (and ``infer_accesses``), ``ExpressionContextVisitor``,
  ``ParentNodeVisitor``, ``QualifiedNameVisitor``;
- ``libcst._add_slots.add_slots``, ``PositionProvidingCodegenState`` (``before_codegen``,
  ``after_codegen``, ``record_syntactic_position``), ``Module._codegen``;
- ``libcst.codemod.visitors._add_imports._GatherTopImportsBeforeStatements``, replaced by
  module-global assignment for the length of one ``visit_Module``.

On a LibCST upgrade: run the differential test first; a failure names the shortcut.
"""

from scaffold.engine.fast._mode import is_plain, plain_libcst
from scaffold.engine.fast.dispatch import (
    FastTransformer,
    FastVisitor,
    uses_matcher_decorators,
    without_rebuild,
)
from scaffold.engine.fast.imports import TopImportsAdder, place_in_sections
from scaffold.engine.fast.metadata import Metadata, OnDemand
from scaffold.engine.fast.positions import SiteRecorder, place_sites, positions

__all__ = [
    "FastTransformer",
    "FastVisitor",
    "Metadata",
    "OnDemand",
    "SiteRecorder",
    "TopImportsAdder",
    "is_plain",
    "place_in_sections",
    "place_sites",
    "plain_libcst",
    "positions",
    "uses_matcher_decorators",
    "without_rebuild",
]
