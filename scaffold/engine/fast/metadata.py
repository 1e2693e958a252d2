"""LibCST metadata, resolved on demand and without LibCST's redundant walks of the tree.

``MetadataWrapper.resolve_many`` walks the whole tree once per round of batchable providers,
even when the round is empty or its providers do all their work in ``visit_Module`` (scope,
expression context, qualified names each run their own visitor from there): resolving
positions, or qualified names, walked every node two to three times more than needed.
``Metadata`` computes the same mappings, caching them per tree as LibCST does: a provider
whose only visitor method is ``visit_Module`` is called there directly, a non-batchable one
(positions) is generated directly, and anything else goes through LibCST unchanged.

Scope, expression context, qualified names and parents run LibCST's own visitors without
the rebuild of every node ``CSTNode.visit`` does (``without_rebuild``): the checks, which
read parents and qualified names on every file they see, paid that rebuild twice a file.

``OnDemand`` is the mapping a rule's ``get_metadata`` reads: a provider is resolved the first
time the rule asks for it, so a codemod that records nothing never pays for positions, and
one that the syntax gate let through but finds nothing to resolve never pays for scopes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import libcst as cst
from libcst.metadata import (
    BatchableMetadataProvider,
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    ProviderT,
    QualifiedNameProvider,
    ScopeProvider,
)
from libcst.metadata.expression_context_provider import (
    ExpressionContext,
    ExpressionContextVisitor,
)
from libcst.metadata.name_provider import QualifiedNameVisitor
from libcst.metadata.parent_node_provider import ParentNodeVisitor
from libcst.metadata.scope_provider import ScopeVisitor

from scaffold.engine.fast._mode import is_plain
from scaffold.engine.fast.dispatch import without_rebuild


def _scopes(provider: ScopeProvider, module: cst.Module) -> None:
    """``ScopeProvider.visit_Module``, walking without rebuilding."""
    visitor = without_rebuild(ScopeVisitor)(provider)
    module.visit(visitor)
    visitor.infer_accesses()


def _expression_contexts(provider: ExpressionContextProvider, module: cst.Module) -> None:
    """``ExpressionContextProvider.visit_Module``, walking without rebuilding."""
    module.visit(without_rebuild(ExpressionContextVisitor)(provider, ExpressionContext.LOAD))


def _parents(provider: ParentNodeProvider, module: cst.Module) -> None:
    """``ParentNodeProvider.visit_Module``, walking without rebuilding."""
    module.visit(without_rebuild(ParentNodeVisitor)(provider))


def _qualified_names(provider: QualifiedNameProvider, module: cst.Module) -> None:
    """``QualifiedNameProvider.visit_Module``, walking without rebuilding."""
    module.visit(without_rebuild(QualifiedNameVisitor)(provider))


_WALKS: dict[Any, Callable[[Any, cst.Module], None]] = {
    ScopeProvider: _scopes,
    ExpressionContextProvider: _expression_contexts,
    ParentNodeProvider: _parents,
    QualifiedNameProvider: _qualified_names,
}


class Metadata(MetadataWrapper):
    """A ``MetadataWrapper`` (same results, same caching) that skips empty tree walks."""

    def resolve_many(self, providers: Collection[ProviderT]) -> Mapping[ProviderT, Any]:
        if is_plain():
            return super().resolve_many(providers)
        for provider in providers:
            self._resolve_directly(provider)
        return super().resolve_many(providers)  # whatever is left, the LibCST way

    def _resolve_directly(self, provider: ProviderT) -> None:
        if provider in self._metadata:
            return
        for dependency in provider.METADATA_DEPENDENCIES:
            self._resolve_directly(dependency)
        if not set(provider.METADATA_DEPENDENCIES) <= self._metadata.keys():
            return
        instance = provider(self._cache.get(provider)) if provider.gen_cache else provider()
        if not isinstance(instance, BatchableMetadataProvider):
            self._metadata[provider] = instance._gen(self)
        elif set(instance.get_visitors()) == {"visit_Module"}:
            with instance.resolve(self):
                _WALKS.get(provider, type(instance).visit_Module)(instance, self.module)
            self._metadata[provider] = MappingProxyType(dict(instance._computed))


class OnDemand(Mapping[ProviderT, Mapping[Any, Any]]):
    """A rule's metadata: each declared provider resolved on ``wrapper`` when first read."""

    def __init__(self, wrapper: MetadataWrapper, declared: Collection[ProviderT]) -> None:
        self._wrapper = wrapper
        self._declared = frozenset(declared)

    def __getitem__(self, provider: ProviderT) -> Mapping[Any, Any]:
        if provider not in self._declared:
            raise KeyError(provider)
        return self._wrapper.resolve(provider)

    def __iter__(self) -> Iterator[ProviderT]:
        return iter(self._declared)

    def __len__(self) -> int:
        return len(self._declared)
