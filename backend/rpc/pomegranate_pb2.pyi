from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddonSpec(_message.Message):
    __slots__ = ("name", "kind", "image", "password", "memory_mb", "projects", "alias")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    image: str
    password: str
    memory_mb: int
    projects: _containers.RepeatedScalarFieldContainer[str]
    alias: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., image: _Optional[str] = ..., password: _Optional[str] = ..., memory_mb: _Optional[int] = ..., projects: _Optional[_Iterable[str]] = ..., alias: _Optional[str] = ...) -> None: ...

class AddonRef(_message.Message):
    __slots__ = ("name", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class AddonState(_message.Message):
    __slots__ = ("state", "running", "health", "projects", "started_at", "restart_count")
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    state: str
    running: bool
    health: str
    projects: _containers.RepeatedScalarFieldContainer[str]
    started_at: str
    restart_count: int
    def __init__(self, state: _Optional[str] = ..., running: _Optional[bool] = ..., health: _Optional[str] = ..., projects: _Optional[_Iterable[str]] = ..., started_at: _Optional[str] = ..., restart_count: _Optional[int] = ...) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class RestoreChunk(_message.Message):
    __slots__ = ("ref", "data")
    REF_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ref: AddonRef
    data: bytes
    def __init__(self, ref: _Optional[_Union[AddonRef, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProjectRef(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: str
    def __init__(self, project: _Optional[str] = ...) -> None: ...

class BuildChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: BuildHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[BuildHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class BuildHeader(_message.Message):
    __slots__ = ("project", "application")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    project: str
    application: int
    def __init__(self, project: _Optional[str] = ..., application: _Optional[int] = ...) -> None: ...

class BuildEvent(_message.Message):
    __slots__ = ("log", "result", "failure")
    LOG_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    log: str
    result: BuildResult
    failure: Failure
    def __init__(self, log: _Optional[str] = ..., result: _Optional[_Union[BuildResult, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class BuildResult(_message.Message):
    __slots__ = ("image", "stack", "processes", "exposed_port", "image_bytes")
    class ProcessesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STACK_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_PORT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    image: str
    stack: str
    processes: _containers.ScalarMap[str, str]
    exposed_port: int
    image_bytes: int
    def __init__(self, image: _Optional[str] = ..., stack: _Optional[str] = ..., processes: _Optional[_Mapping[str, str]] = ..., exposed_port: _Optional[int] = ..., image_bytes: _Optional[int] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("reason", "last_lines")
    REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_LINES_FIELD_NUMBER: _ClassVar[int]
    reason: str
    last_lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[str] = ..., last_lines: _Optional[_Iterable[str]] = ...) -> None: ...

class Process(_message.Message):
    __slots__ = ("type", "command", "replicas")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    type: str
    command: str
    replicas: int
    def __init__(self, type: _Optional[str] = ..., command: _Optional[str] = ..., replicas: _Optional[int] = ...) -> None: ...

class ReleaseSpec(_message.Message):
    __slots__ = ("project", "application", "image", "processes", "env", "port", "hostnames", "memory_mb", "cpu", "health_path", "health_timeout", "hsts_seconds", "volumes")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    HOSTNAMES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    HEALTH_PATH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HSTS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    project: str
    application: int
    image: str
    processes: _containers.RepeatedCompositeFieldContainer[Process]
    env: _containers.ScalarMap[str, str]
    port: int
    hostnames: _containers.RepeatedScalarFieldContainer[str]
    memory_mb: int
    cpu: float
    health_path: str
    health_timeout: float
    hsts_seconds: int
    volumes: _containers.RepeatedCompositeFieldContainer[VolumeMount]
    def __init__(self, project: _Optional[str] = ..., application: _Optional[int] = ..., image: _Optional[str] = ..., processes: _Optional[_Iterable[_Union[Process, _Mapping]]] = ..., env: _Optional[_Mapping[str, str]] = ..., port: _Optional[int] = ..., hostnames: _Optional[_Iterable[str]] = ..., memory_mb: _Optional[int] = ..., cpu: _Optional[float] = ..., health_path: _Optional[str] = ..., health_timeout: _Optional[float] = ..., hsts_seconds: _Optional[int] = ..., volumes: _Optional[_Iterable[_Union[VolumeMount, _Mapping]]] = ...) -> None: ...

class VolumeMount(_message.Message):
    __slots__ = ("name", "key", "path", "processes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    key: str
    path: str
    processes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., key: _Optional[str] = ..., path: _Optional[str] = ..., processes: _Optional[_Iterable[str]] = ...) -> None: ...

class VolumesRequest(_message.Message):
    __slots__ = ("projects", "sizes")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedScalarFieldContainer[str]
    sizes: bool
    def __init__(self, projects: _Optional[_Iterable[str]] = ..., sizes: _Optional[bool] = ...) -> None: ...

class VolumeInfo(_message.Message):
    __slots__ = ("project", "name", "docker_name", "size_bytes", "created_at")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCKER_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    project: str
    name: str
    docker_name: str
    size_bytes: int
    created_at: str
    def __init__(self, project: _Optional[str] = ..., name: _Optional[str] = ..., docker_name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., created_at: _Optional[str] = ...) -> None: ...

class VolumeList(_message.Message):
    __slots__ = ("volumes",)
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[VolumeInfo]
    def __init__(self, volumes: _Optional[_Iterable[_Union[VolumeInfo, _Mapping]]] = ...) -> None: ...

class VolumeRef(_message.Message):
    __slots__ = ("project", "docker_name")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    DOCKER_NAME_FIELD_NUMBER: _ClassVar[int]
    project: str
    docker_name: str
    def __init__(self, project: _Optional[str] = ..., docker_name: _Optional[str] = ...) -> None: ...

class ReleaseEvent(_message.Message):
    __slots__ = ("log", "failure", "done")
    LOG_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    log: str
    failure: Failure
    done: ReleaseDone
    def __init__(self, log: _Optional[str] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., done: _Optional[_Union[ReleaseDone, _Mapping]] = ...) -> None: ...

class ReleaseDone(_message.Message):
    __slots__ = ("containers", "stopped_applications")
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[Container]
    stopped_applications: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, containers: _Optional[_Iterable[_Union[Container, _Mapping]]] = ..., stopped_applications: _Optional[_Iterable[int]] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("id", "name", "project", "application", "process", "replica", "state", "running", "host_port", "exit_code", "oom_killed", "started_at", "restart_count", "one_off")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    ONE_OFF_FIELD_NUMBER: _ClassVar[int]
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
    started_at: str
    restart_count: int
    one_off: bool
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., project: _Optional[str] = ..., application: _Optional[int] = ..., process: _Optional[str] = ..., replica: _Optional[int] = ..., state: _Optional[str] = ..., running: _Optional[bool] = ..., host_port: _Optional[int] = ..., exit_code: _Optional[int] = ..., oom_killed: _Optional[bool] = ..., started_at: _Optional[str] = ..., restart_count: _Optional[int] = ..., one_off: _Optional[bool] = ...) -> None: ...

class ProcessList(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[Container]
    def __init__(self, containers: _Optional[_Iterable[_Union[Container, _Mapping]]] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("project", "tail", "follow")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    project: str
    tail: int
    follow: bool
    def __init__(self, project: _Optional[str] = ..., tail: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("process", "replica", "application", "line")
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    process: str
    replica: int
    application: int
    line: str
    def __init__(self, process: _Optional[str] = ..., replica: _Optional[int] = ..., application: _Optional[int] = ..., line: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RuntimeEvent(_message.Message):
    __slots__ = ("kind", "project", "application", "process", "replica", "exit_code", "oom_killed", "container_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    OOM_KILLED_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    kind: str
    project: str
    application: int
    process: str
    replica: int
    exit_code: int
    oom_killed: bool
    container_id: str
    def __init__(self, kind: _Optional[str] = ..., project: _Optional[str] = ..., application: _Optional[int] = ..., process: _Optional[str] = ..., replica: _Optional[int] = ..., exit_code: _Optional[int] = ..., oom_killed: _Optional[bool] = ..., container_id: _Optional[str] = ...) -> None: ...

class DesiredProject(_message.Message):
    __slots__ = ("project", "live", "in_flight")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    project: str
    live: ReleaseSpec
    in_flight: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, project: _Optional[str] = ..., live: _Optional[_Union[ReleaseSpec, _Mapping]] = ..., in_flight: _Optional[_Iterable[int]] = ...) -> None: ...

class DesiredState(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[DesiredProject]
    def __init__(self, projects: _Optional[_Iterable[_Union[DesiredProject, _Mapping]]] = ...) -> None: ...

class ReconcileReport(_message.Message):
    __slots__ = ("adopted", "started", "removed")
    ADOPTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    adopted: _containers.RepeatedScalarFieldContainer[str]
    started: _containers.RepeatedScalarFieldContainer[str]
    removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, adopted: _Optional[_Iterable[str]] = ..., started: _Optional[_Iterable[str]] = ..., removed: _Optional[_Iterable[str]] = ...) -> None: ...

class PruneRequest(_message.Message):
    __slots__ = ("project", "keep")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIELD_NUMBER: _ClassVar[int]
    project: str
    keep: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project: _Optional[str] = ..., keep: _Optional[_Iterable[str]] = ...) -> None: ...

class PruneReply(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, removed: _Optional[_Iterable[str]] = ...) -> None: ...

class RestartRequest(_message.Message):
    __slots__ = ("project", "application", "process", "replica", "health_timeout")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    HEALTH_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    project: str
    application: int
    process: str
    replica: int
    health_timeout: float
    def __init__(self, project: _Optional[str] = ..., application: _Optional[int] = ..., process: _Optional[str] = ..., replica: _Optional[int] = ..., health_timeout: _Optional[float] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("rows", "cols")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class RunStart(_message.Message):
    __slots__ = ("spec", "command", "tty", "detach", "timeout_seconds", "size", "addon")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    DETACH_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ADDON_FIELD_NUMBER: _ClassVar[int]
    spec: ReleaseSpec
    command: _containers.RepeatedScalarFieldContainer[str]
    tty: bool
    detach: bool
    timeout_seconds: int
    size: TerminalSize
    addon: str
    def __init__(self, spec: _Optional[_Union[ReleaseSpec, _Mapping]] = ..., command: _Optional[_Iterable[str]] = ..., tty: _Optional[bool] = ..., detach: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ..., size: _Optional[_Union[TerminalSize, _Mapping]] = ..., addon: _Optional[str] = ...) -> None: ...

class RunInput(_message.Message):
    __slots__ = ("start", "stdin", "stdin_closed", "resize")
    START_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    STDIN_CLOSED_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    start: RunStart
    stdin: bytes
    stdin_closed: bool
    resize: TerminalSize
    def __init__(self, start: _Optional[_Union[RunStart, _Mapping]] = ..., stdin: _Optional[bytes] = ..., stdin_closed: _Optional[bool] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class RunExit(_message.Message):
    __slots__ = ("code", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RunOutput(_message.Message):
    __slots__ = ("started", "stdout", "stderr", "exit", "failure")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    started: str
    stdout: bytes
    stderr: bytes
    exit: RunExit
    failure: Failure
    def __init__(self, started: _Optional[str] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exit: _Optional[_Union[RunExit, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class NodeRef(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: str
    def __init__(self, node: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "hostname", "role", "state", "availability", "address", "leader", "tasks", "nano_cpus", "memory_bytes", "engine_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    hostname: str
    role: str
    state: str
    availability: str
    address: str
    leader: bool
    tasks: int
    nano_cpus: int
    memory_bytes: int
    engine_version: str
    def __init__(self, id: _Optional[str] = ..., hostname: _Optional[str] = ..., role: _Optional[str] = ..., state: _Optional[str] = ..., availability: _Optional[str] = ..., address: _Optional[str] = ..., leader: _Optional[bool] = ..., tasks: _Optional[int] = ..., nano_cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., engine_version: _Optional[str] = ...) -> None: ...

class NodeList(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ...) -> None: ...

class JoinCommand(_message.Message):
    __slots__ = ("command",)
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    command: str
    def __init__(self, command: _Optional[str] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ContainerStats(_message.Message):
    __slots__ = ("project", "process", "cpu_cores", "memory_bytes", "memory_limit_bytes", "net_rx_bytes_per_second", "net_tx_bytes_per_second", "restarts")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    NET_RX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    NET_TX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    project: str
    process: str
    cpu_cores: float
    memory_bytes: int
    memory_limit_bytes: int
    net_rx_bytes_per_second: float
    net_tx_bytes_per_second: float
    restarts: int
    def __init__(self, project: _Optional[str] = ..., process: _Optional[str] = ..., cpu_cores: _Optional[float] = ..., memory_bytes: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., net_rx_bytes_per_second: _Optional[float] = ..., net_tx_bytes_per_second: _Optional[float] = ..., restarts: _Optional[int] = ...) -> None: ...

class StatsSample(_message.Message):
    __slots__ = ("containers",)
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    containers: _containers.RepeatedCompositeFieldContainer[ContainerStats]
    def __init__(self, containers: _Optional[_Iterable[_Union[ContainerStats, _Mapping]]] = ...) -> None: ...

class AddonLogsRequest(_message.Message):
    __slots__ = ("ref", "tail", "follow")
    REF_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    ref: AddonRef
    tail: int
    follow: bool
    def __init__(self, ref: _Optional[_Union[AddonRef, _Mapping]] = ..., tail: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class AddonVolumesRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class AddonVolumeSize(_message.Message):
    __slots__ = ("name", "size_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    size_bytes: int
    def __init__(self, name: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class AddonVolumeSizeList(_message.Message):
    __slots__ = ("volumes",)
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[AddonVolumeSize]
    def __init__(self, volumes: _Optional[_Iterable[_Union[AddonVolumeSize, _Mapping]]] = ...) -> None: ...
