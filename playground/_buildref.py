"""Naming a build function so that another process can find it.

A sweep runs the user's ``build`` in worker processes: the local pool's, or
Dask workers on other machines. A function cannot travel between processes
as code; it travels as a name - a module and a function in it - and each
worker imports the module. So the build function must be importable where
the runs happen: a module on the workers' ``PYTHONPATH``, or a ``.py`` file
at the same path on every worker (``examples/capacity_planning.py:build``),
which a worker loads by its path, as Python runs a script.

``BuildRef("mymodule", "build")`` or ``BuildRef.parse("path/to/file.py:build")``.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Callable

from ._errors import ConfigError

__all__ = ["BuildRef", "BuildImportError"]

_LOADED: dict[str, str] = {}  # module name given to a file loaded by path -> its absolute path


class BuildImportError(ConfigError):
    """The build function cannot be imported (in this process or on a worker)."""


@dataclass(frozen=True)
class BuildRef:
    """``module:function``, where ``module`` is an importable name or a path to a ``.py`` file."""

    module: str
    function: str

    @classmethod
    def parse(cls, text: str) -> "BuildRef":
        if not isinstance(text, str) or text.count(":") < 1:
            raise ConfigError(f"build must be 'MODULE:FUNCTION' (a module or a .py file), got {text!r}")
        module, _, function = text.rpartition(":")
        if not module or not function.replace(".", "").replace("_", "").isalnum():
            raise ConfigError(f"build must be 'MODULE:FUNCTION' (a module or a .py file), got {text!r}")
        if _is_path(module):
            module = os.path.abspath(module)
        return cls(module, function)

    @classmethod
    def of(cls, fn: Callable, *, main_by_path: bool = True) -> "BuildRef | None":
        """The reference to a module-level function, or None (a lambda, a local function)."""
        module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
        if not module or not qualname or "<" in qualname:
            return None
        if module in _LOADED:
            return cls(_LOADED[module], qualname)
        if module == "__main__":
            path = getattr(sys.modules.get("__main__"), "__file__", None)
            return cls(os.path.abspath(path), qualname) if path and main_by_path else None
        return cls(module, qualname)

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"

    def resolve(self, where: str = "") -> Callable:
        """Import the module (or load the file) and return the function."""
        try:
            mod = _load_path(self.module) if _is_path(self.module) else importlib.import_module(self.module)
        except BaseException as exc:  # SystemExit from a script's top level is a failure to import too
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise BuildImportError(
                f"cannot import {self.module!r}{where}: {type(exc).__name__}: {exc} - the build function must be "
                f"importable (a module on the workers' PYTHONPATH, or a .py file at the same path on each worker)"
            ) from None
        obj = mod
        for part in self.function.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                raise BuildImportError(f"module {self.module!r} has no function {self.function!r}")
        if not callable(obj):
            raise BuildImportError(f"{self} must be a function, got {obj!r}")
        return obj


def _is_path(module: str) -> bool:
    return module.endswith(".py") or os.sep in module or "/" in module


def _load_path(path: str):
    path = os.path.abspath(path)
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in os.path.splitext(os.path.basename(path))[0])
    name = f"_playground_build_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file {path!r}")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:  # its neighbours import as they would when it runs as a script
        sys.path.insert(0, folder)
    sys.modules[name] = mod
    _LOADED[name] = path
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        del _LOADED[name]
        raise
    return mod
