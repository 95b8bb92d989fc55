"""Public names of a package imported on first use (PEP 562), so importing the package stays quick."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, namespace: dict, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names load lazily.

    Args:
        package: the package's name, for the AttributeError of an unknown name.
        namespace: the package's ``globals()``; a name, once imported, is kept there.
        exports: public name -> the module that defines it.

    Use: ``__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)``.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
