"""Named building blocks: a name maps to a small builder, and one error lists the choices.

Path kinds (:mod:`~lapace_plugin.paths`), searches (:mod:`~lapace_plugin.search`), strategies
(:mod:`~lapace_plugin.strategies`) and refiners (:mod:`~lapace_plugin.refine`) each keep one ``Registry``.
Adding one is a class in its module plus one line in that module's registry.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Tuple

from .errors import InvalidParameterError


class Registry:
    """An ordered mapping from names to builders, for one kind of building block.

    Parameters
    ----------
    kind
        What the names are names of (used in error messages, e.g. ``"path"``).
    entries
        ``(name, builder)`` pairs; ``builder(**settings)`` returns the building block.
    """

    def __init__(self, kind: str, *entries: Tuple[str, Callable[..., Any]]) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable[..., Any]] = dict(entries)

    def check(self, name: Any) -> str:
        """``name`` if it is registered, else ``InvalidParameterError`` listing the choices."""
        if not isinstance(name, str) or name not in self._entries:
            raise InvalidParameterError("%s must be one of %s, got %r" % (self.kind, ", ".join(repr(n) for n in self._entries), name))
        return name

    def build(self, name: Any, **settings: Any) -> Any:
        """The building block registered as ``name``, built with ``settings``."""
        return self._entries[self.check(name)](**settings)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return "Registry(%r: %s)" % (self.kind, ", ".join(self._entries))
