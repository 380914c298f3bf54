"""What the API sends to and gets from Pomegranate, as plain dataclasses.

The services build and read these; only backend/rpc/pomegranate_client.py turns them into
protobuf messages and back (the gRPC edge), so no service imports grpc or the generated code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    type: str
    command: str  # empty: the image's CMD
    replicas: int


@dataclass(frozen=True, slots=True)
class VolumeMount:
    name: str  # the project's name for it
    key: str  # random, part of the Docker volume's name
    path: str  # absolute mount path inside the containers
    processes: tuple[str, ...]  # process types it is mounted into


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """Everything a release runs with, every value given (spec.py applies the defaults;
    Pomegranate refuses a zero port, memory, CPU or health timeout)."""

    project: str
    application: int
    image: str
    processes: tuple[ProcessSpec, ...]
    env: dict[str, str]
    port: int
    hostnames: tuple[str, ...]
    memory_mb: int
    cpu: float
    health_path: str  # empty: a TCP check
    health_timeout: float
    hsts_seconds: int = 0
    volumes: tuple[VolumeMount, ...] = ()


@dataclass(frozen=True, slots=True)
class Container:
    id: str
    name: str
    project: str
    application: int
    process: str
    replica: int
    state: str
    running: bool
    host_port: int
    exit_code: int
    oom_killed: bool
    started_at: str  # ISO 8601, empty when never started
    restart_count: int
    one_off: bool


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    project: str
    name: str
    docker_name: str
    size_bytes: int  # -1: unknown
    created_at: str  # ISO 8601


@dataclass(frozen=True, slots=True)
class LogLine:
    process: str
    replica: int
    application: int
    line: str


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    kind: str  # start, die, oom, restart, ...
    project: str
    application: int
    process: str
    replica: int
    exit_code: int
    oom_killed: bool


@dataclass(frozen=True, slots=True)
class DesiredProject:
    project: str
    live: ReleaseSpec | None
    in_flight: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AddonSpec:
    name: str
    kind: str  # postgres | redis
    image: str
    password: str
    memory_mb: int
    projects: tuple[str, ...]  # the attached projects: their networks, nobody else's
    alias: str  # the DNS name on those networks


@dataclass(frozen=True, slots=True)
class AddonState:
    state: str  # the engine's state, "missing" when there is no container
    running: bool
    health: str  # healthy, starting, unhealthy, "" (none)
    projects: tuple[str, ...]
    started_at: str
    restart_count: int


@dataclass(frozen=True, slots=True)
class TerminalSize:
    rows: int
    cols: int


@dataclass(frozen=True, slots=True)
class RunStart:
    spec: ReleaseSpec  # the live release: image, env, memory, cpu (processes ignored)
    command: list[str]  # argv, run as it is (no shell)
    tty: bool
    detach: bool
    timeout_seconds: int  # > 0: killed and removed after this long
    size: TerminalSize | None = None
    addon: str = ""  # the add-on whose client tool this is (pg:psql, redis:cli)


@dataclass(frozen=True, slots=True)
class RunInput:
    """One message up a one-off command's stream: exactly one field is set."""

    stdin: bytes | None = None
    stdin_closed: bool = False
    resize: TerminalSize | None = None


@dataclass(frozen=True, slots=True)
class RunOutput:
    """One event of a one-off command: ``kind`` names the field that is set."""

    kind: str  # started, stdout, stderr, exit, failure
    started: str = ""  # the container's name
    data: bytes = b""  # stdout or stderr
    exit_code: int = 0
    reason: str = ""  # exit: why it ended other than by itself; failure: what went wrong


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """One stats reading of a running app container (issue 18)."""

    project: str
    process: str
    cpu_cores: float = 0.0  # cores in use (1.0: one full core)
    memory_bytes: int = 0  # without the page cache, as `docker stats` shows it
    memory_limit_bytes: int = 0
    net_rx_bytes_per_second: float = 0.0
    net_tx_bytes_per_second: float = 0.0
    restarts: int = 0  # restarts seen by this Pomegranate since it started


@dataclass(frozen=True, slots=True)
class Node:
    """A Swarm node (issue 16)."""

    id: str
    hostname: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    address: str
    leader: bool
    tasks: int  # running tasks of the platform's services on it
    nano_cpus: int
    memory_bytes: int
    engine_version: str
