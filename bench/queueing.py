"""Queueing theory for the validation scripts: the engine's own closed forms (``playground._queueing``).

``bench/validate.py`` and ``tests/test_theory.py`` import this module by file name; the
formulas live in the engine so that ``report.theory()`` uses the very same code.
"""
from playground._queueing import *  # noqa: F401,F403
from playground._queueing import __all__  # noqa: F401
