"""playground: an in-process architecture playground on trio.

Layers (imports run one way, top to bottom):

* ``playground`` (this package, less ``tools``) - the engine: virtual clock
  and scheduler, simulated network and faults, hosts, loads, metrics,
  reports, and what is computed from runs of a ``Sim`` (sweeps, SLO checks,
  cost, queueing theory). It imports no component.
* ``components`` - the parts a user wires: app servers, balancers, cache,
  database, CDN, DNS. They import the engine, never the reverse.
* ``playground.tools`` - what is built *from* components: the scaling
  ladder, the live server and dashboard, the command line. Nothing in the
  engine or in ``components`` imports it.

This module is the one place the engine's public names are listed.
"""

from ._capacity import CapacityResult as CapacityResult
from ._capacity import breaking_point as breaking_point
from ._capacity import capacity_search as capacity_search
from ._clock import RealtimeScheduler as RealtimeScheduler
from ._clock import Scheduler as Scheduler
from ._clock import VirtualClock as VirtualClock
from ._cost import CostBreakdown as CostBreakdown
from ._cost import Footprint as Footprint
from ._cost import Prices as Prices
from ._cost import pareto_front as pareto_front
from ._distributions import Constant as Constant
from ._distributions import Distribution as Distribution
from ._distributions import Empirical as Empirical
from ._distributions import Exponential as Exponential
from ._distributions import LogNormal as LogNormal
from ._distributions import Uniform as Uniform
from ._distributions import as_distribution as as_distribution
from ._errors import ConfigError as ConfigError
from ._errors import Dropped as Dropped
from ._errors import PlaygroundError as PlaygroundError
from ._errors import Refused as Refused
from ._errors import RequestError as RequestError
from ._errors import Reset as Reset
from ._errors import Timeout as Timeout
from ._errors import WiringError as WiringError
from ._errortable import ErrorRecord as ErrorRecord
from ._load import ClosedLoop as ClosedLoop
from ._load import Load as Load
from ._load import OpenLoop as OpenLoop
from ._load import Population as Population
from ._messages import Connection as Connection
from ._messages import Request as Request
from ._messages import Response as Response
from ._messages import call_asgi as call_asgi
from ._messages import to_asgi_scope as to_asgi_scope
from ._metrics import ClientStats as ClientStats
from ._metrics import LatencyHistogram as LatencyHistogram
from ._metrics import LatencySummary as LatencySummary
from ._metrics import TimeWeighted as TimeWeighted
from ._network import Network as Network
from ._node import Node as Node
from ._node import NodeStats as NodeStats
from ._report import Comparison as Comparison
from ._report import Report as Report
from ._resources import Resource as Resource
from ._series import HostSeries as HostSeries
from ._series import HostSeriesRow as HostSeriesRow
from ._series import LatencySketch as LatencySketch
from ._sim import Client as Client
from ._sim import Sim as Sim
from ._slo import SLO as SLO
from ._slo import SLOCheck as SLOCheck
from ._slo import assert_slo as assert_slo
from ._stats import Estimate as Estimate
from ._sweep import sweep as sweep
from ._sweep_result import SweepPoint as SweepPoint
from ._sweep_result import SweepResult as SweepResult
from ._workload import Ramp as Ramp
from ._workload import Shape as Shape
from ._workload import Spike as Spike
from ._workload import Steady as Steady
from ._workload import Steps as Steps
from ._workload import Workload as Workload
from ._workload import Zipf as Zipf

__version__ = "0.1.0"
