"""Named building blocks: a name maps to a small builder, and one error lists the choices.

Path kinds (:mod:`~lapace_plugin.paths`), searches (:mod:`~lapace_plugin.search`), strategies
(:mod:`~lapace_plugin.strategies`) and refiners (:mod:`~lapace_plugin.refine`) each keep one ``Registry``, typed by
their contract in :mod:`~lapace_plugin.contracts`. Adding one is a class plus one registry line (an entry of the
module's ``Registry(...)``, or ``REGISTRY.register(name, Class)`` from a file of its own).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Generic, Iterator, Tuple, TypeVar

from .errors import InvalidParameterError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping from names to builders, for one kind of building block.

    Parameters
    ----------
    kind
        What the names are names of (used in error messages, e.g. ``"path"``).
    entries
        ``(name, builder)`` pairs; ``builder(**settings)`` returns the building block (an instance of ``T``).
    """

    def __init__(self, kind: str, *entries: Tuple[str, Callable[..., T]]) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., T]] = dict(entries)

    def check(self, name: Any) -> str:
        """``name`` if it is registered, else ``InvalidParameterError`` listing the choices."""
        if not isinstance(name, str) or name not in self._entries:
            raise InvalidParameterError("%s must be one of %s, got %r" % (self.kind, ", ".join(repr(n) for n in self._entries), name))
        return name

    def build(self, name: Any, **settings: Any) -> T:
        """The building block registered as ``name``, built with the ``settings`` its builder's signature names
        (all of them if it takes ``**kwargs``), so an option reaches only the blocks that use it."""
        builder = self._entries[self.check(name)]
        params = inspect.signature(builder).parameters.values()
        if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
            names = {p.name for p in params}
            settings = {k: v for k, v in settings.items() if k in names}
        return builder(**settings)

    def register(self, name: str, builder: Callable[..., T]) -> Callable[..., T]:
        """Add ``builder`` as ``name`` (a new name only); returns the builder, so it also decorates a class."""
        if not isinstance(name, str) or not name or name in self._entries:
            raise InvalidParameterError("%s name %r is empty or already registered (%s)" % (self.kind, name, ", ".join(self._entries)))
        self._entries[name] = builder
        return builder

    def unregister(self, name: str) -> None:
        """Remove the building block registered as ``name``."""
        del self._entries[self.check(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return "Registry(%r: %s)" % (self.kind, ", ".join(self._entries))
