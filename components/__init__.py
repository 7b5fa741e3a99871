"""The parts a user wires into a topology. Each is a ``playground.Node``.

This module is the one place the components' public names are listed.
"""
from __future__ import annotations

from .app_server import AppServer as AppServer
from .app_server import Context as Context
from .app_server import current_context as current_context
