"""The examples in the engine's and the components' docstrings run, and print what they say.

A docstring that quotes output is documentation that can go stale; this runs
every ``>>>`` example in ``playground`` and ``components`` (not the CLI tools,
whose module runs the ladder) with ``doctest``.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import components
import playground


def _modules() -> list[str]:
    names = []
    for package in (playground, components):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if not info.ispkg and not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def test_the_modules_with_examples_are_found():
    assert {"playground._metrics", "playground._series", "components.health"} <= set(_modules())


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, (f"{result.failed} of {result.attempted} docstring examples in {name} failed; "
                                f"python -m pytest --doctest-modules {module.__file__} shows them")
