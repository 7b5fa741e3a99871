"""Deadline propagation: a request's remaining time travels with the calls it makes.

A user who gives up after two seconds does not care about an answer at 2.5 s;
yet without help every tier behind the first goes on working for them - a
database runs the query, an app server spends its CPU - and under overload
that wasted work is what keeps the queues long. gRPC propagates deadlines for
this reason (``grpc-timeout``), and Google's SRE book asks every service to.

Here a load started with ``OpenLoop(..., propagate_deadline=True)`` puts the
absolute simulated time at which its client gives up in the ``x-deadline``
header. An ``AppServer`` skips a request whose deadline has passed before it
runs the handler (504 "deadline exceeded", counted as ``deadline_skipped``);
``ctx.call`` copies the header onto the calls a handler makes, caps their
timeout at the remaining time, and refuses to start one past it
(``DeadlineExceeded``, counted as ``deadline_refused``); a balancer does the
same for the attempts it forwards. Left out: clock skew between hosts (they
share the simulated clock) and deadlines that shrink by a margin per hop.
"""
from __future__ import annotations

from playground import Request, Timeout

__all__ = ["DEADLINE_HEADER", "DeadlineExceeded", "remaining_s", "deadline_of"]

DEADLINE_HEADER = "x-deadline"


class DeadlineExceeded(Timeout):
    """The request's deadline has passed: the call was not started (a timeout, as the client sees it)."""


def deadline_of(request: Request) -> float | None:
    """The absolute simulated time the request's client gives up at, if it carries one."""
    value = request.headers.get(DEADLINE_HEADER)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def remaining_s(request: Request, now: float) -> float | None:
    """Seconds left before the request's deadline (negative once past), or None without one."""
    deadline = deadline_of(request)
    return None if deadline is None else deadline - now
