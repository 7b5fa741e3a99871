"""The parts a user wires into a topology. Each is a ``playground.Node``.

This module is the one place the components' public names are listed.
"""

from .aiocache_backend import SimulatedCache as SimulatedCache
from .app_server import AppServer as AppServer
from .app_server import Context as Context
from .app_server import current_context as current_context
from .autoscaler import AutoScaler as AutoScaler
from .balancer import L4Balancer as L4Balancer
from .balancer import L7Balancer as L7Balancer
from .balancer import Route as Route
from .bulkhead import Bulkhead as Bulkhead
from .bulkhead import BulkheadFull as BulkheadFull
from .cache import CacheServer as CacheServer
from .cache import CacheStore as CacheStore
from .cache_aside import CacheAside as CacheAside
from .cdn import CDN as CDN
from .cdn import CDNEdge as CDNEdge
from .connection_pool import ConnectionPool as ConnectionPool
from .connection_pool import PoolStats as PoolStats
from .connection_pool import PoolTimeout as PoolTimeout


from .circuit_breaker import CircuitBreaker as CircuitBreaker
from .circuit_breaker import CircuitOpen as CircuitOpen
from .database import Database as Database
from .database_client import DatabaseClient as DatabaseClient
from .database_client import DatabaseClientStats as DatabaseClientStats
from .database_client import DatabaseError as DatabaseError
from .database_client import DatabaseUnavailable as DatabaseUnavailable
from .database_client import QueryError as QueryError
from .database_client import TooManyConnections as TooManyConnections
from .database_failover import Failover as Failover
from .database_failover import FailoverMonitor as FailoverMonitor
from .database_sharding import ConsistentHashSharding as ConsistentHashSharding
from .database_sharding import HashSharding as HashSharding
from .database_sharding import RangeSharding as RangeSharding
from .database_sharding import ShardRouter as ShardRouter
from .database_sharding import moved_share as moved_share


from .deadline import DeadlineExceeded as DeadlineExceeded
from .dns import DNSServer as DNSServer
from .dns import Resolver as Resolver
from .gateway import APIGateway as APIGateway
from .health import HealthCheck as HealthCheck
from .health import OutlierDetection as OutlierDetection
from .health import RetryBudget as RetryBudget
from .message_queue import Message as Message
from .message_queue import MessageQueue as MessageQueue
from .message_queue import QueueClient as QueueClient
from .message_queue import QueueFull as QueueFull
from .policies import BackendState as BackendState
from .policies import ConsistentHash as ConsistentHash
from .policies import LeastConnections as LeastConnections
from .policies import PowerOfTwoChoices as PowerOfTwoChoices
from .policies import Random as Random
from .policies import RoundRobin as RoundRobin
from .policies import SourceIPHash as SourceIPHash
from .policies import WeightedRoundRobin as WeightedRoundRobin
from .queue_discipline import CoDel as CoDel
from .queue_discipline import FIFO as FIFO
from .queue_discipline import LIFO as LIFO
from .rate_limit import RateLimit as RateLimit
from .rate_limit import SlidingWindow as SlidingWindow
from .rate_limit import TokenBucket as TokenBucket
from .scaling import FleetMetrics as FleetMetrics
from .scaling import QueueDepth as QueueDepth
from .scaling import StepScaling as StepScaling
from .scaling import TargetTracking as TargetTracking
from .worker_pool import WorkerPool as WorkerPool
