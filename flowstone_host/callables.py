"""Resolve ``"module:function"`` references from manifests, under the host's allow-list.

Every callable a manifest names (asset ``compute``, scatter ``item`` and ``gather``,
parallel branches and ``join``, routing ``router``, and any plugin config value the plugin
marks as a callable) goes through :meth:`CallablePolicy.resolve`, at validation and where
it is imported: a module outside ``callables.allow`` is refused before anything is
imported, and the error names the allow-list.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, PermissionDenied

__all__ = ["CallablePolicy", "matches"]


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Return whether ``name`` matches one of the shell-style ``patterns`` (case-sensitive)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class CallablePolicy:
    """The host config's ``callables.allow``: module patterns whose functions may be named.

    An empty policy allows nothing: a callable given as a string cannot be resolved
    without one that names its module.
    """

    allow: tuple[str, ...] = ()

    def allows(self, module: str) -> bool:
        """Return whether functions of ``module`` may be named."""
        return matches(module, self.allow)

    def check(self, ref: str) -> str:
        """Return the module of ``ref`` after checking its form and the allow-list.

        Raises:
            ConfigError: ``ref`` is not ``"module:function"``.
            PermissionDenied: its module is not allowed; the message lists the patterns.
        """
        if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.partition(":")[::2]):
            raise ConfigError(f"Expected 'module:function', got {ref!r}.")
        module = ref.partition(":")[0]
        if not self.allows(module):
            raise PermissionDenied(
                f"Callables from module {module!r} are not allowed by the host config "
                f"(callables.allow: {', '.join(self.allow) or 'nothing'}); add a pattern "
                "there or move the function.",
                details={"module": module, "allow": list(self.allow)},
            )
        return module

    def resolve(self, ref: str | Callable[..., Any]) -> Callable[..., Any]:
        """Return the callable ``ref`` names (``"package.module:attr.path"``), or ``ref``
        itself when it already is one (a plugin built in Python, not from a manifest).

        Raises:
            ConfigError: ``ref`` is malformed, its module cannot be imported, the attribute
                is missing, or it is not callable.
            PermissionDenied: its module is not allowed.
        """
        if callable(ref):
            return ref
        module_name = self.check(ref)
        attr_path = ref.partition(":")[2]
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"Cannot import module {module_name!r} for {ref!r}: {type(exc).__name__}: {exc}"
            ) from exc
        for attr in attr_path.split("."):
            try:
                target = getattr(target, attr)
            except AttributeError:
                raise ConfigError(
                    f"Module {module_name!r} has no attribute {attr_path!r}."
                ) from None
        if not callable(target):
            raise ConfigError(f"{ref!r} is not callable.")
        function: Callable[..., Any] = target
        return function
