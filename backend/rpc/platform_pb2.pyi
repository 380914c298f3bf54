from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowRequest(_message.Message):
    __slots__ = ("project", "client_id", "application", "skip_lines")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    SKIP_LINES_FIELD_NUMBER: _ClassVar[int]
    project: str
    client_id: int
    application: int
    skip_lines: int
    def __init__(self, project: _Optional[str] = ..., client_id: _Optional[int] = ..., application: _Optional[int] = ..., skip_lines: _Optional[int] = ...) -> None: ...

class DeployChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: DeployHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[DeployHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class DeployHeader(_message.Message):
    __slots__ = ("project", "client_id", "commit_sha", "cause", "key_fingerprint")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_SHA_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    project: str
    client_id: int
    commit_sha: str
    cause: str
    key_fingerprint: str
    def __init__(self, project: _Optional[str] = ..., client_id: _Optional[int] = ..., commit_sha: _Optional[str] = ..., cause: _Optional[str] = ..., key_fingerprint: _Optional[str] = ...) -> None: ...

class DeployEvent(_message.Message):
    __slots__ = ("log", "status", "finished", "deployed")
    LOG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    log: str
    status: StatusChange
    finished: Finished
    deployed: Deployed
    def __init__(self, log: _Optional[str] = ..., status: _Optional[_Union[StatusChange, _Mapping]] = ..., finished: _Optional[_Union[Finished, _Mapping]] = ..., deployed: _Optional[_Union[Deployed, _Mapping]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("application", "status")
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    application: int
    status: str
    def __init__(self, application: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class Finished(_message.Message):
    __slots__ = ("ok", "application", "url", "reason", "code")
    OK_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    application: int
    url: str
    reason: str
    code: str
    def __init__(self, ok: _Optional[bool] = ..., application: _Optional[int] = ..., url: _Optional[str] = ..., reason: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class KeyRequest(_message.Message):
    __slots__ = ("fingerprint",)
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    def __init__(self, fingerprint: _Optional[str] = ...) -> None: ...

class KeyReply(_message.Message):
    __slots__ = ("found", "client_id", "username")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    found: bool
    client_id: int
    username: str
    def __init__(self, found: _Optional[bool] = ..., client_id: _Optional[int] = ..., username: _Optional[str] = ...) -> None: ...

class RepoRequest(_message.Message):
    __slots__ = ("client_id", "project", "write")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    project: str
    write: bool
    def __init__(self, client_id: _Optional[int] = ..., project: _Optional[str] = ..., write: _Optional[bool] = ...) -> None: ...

class RepoReply(_message.Message):
    __slots__ = ("ok", "message", "repo_path", "deploy_branch")
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPO_PATH_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_BRANCH_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    message: str
    repo_path: str
    deploy_branch: str
    def __init__(self, ok: _Optional[bool] = ..., message: _Optional[str] = ..., repo_path: _Optional[str] = ..., deploy_branch: _Optional[str] = ...) -> None: ...

class ClientRef(_message.Message):
    __slots__ = ("client_id",)
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    client_id: int
    def __init__(self, client_id: _Optional[int] = ...) -> None: ...

class WhoamiReply(_message.Message):
    __slots__ = ("username", "projects")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    username: str
    projects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., projects: _Optional[_Iterable[str]] = ...) -> None: ...

class TerminalSize(_message.Message):
    __slots__ = ("rows", "cols")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class RunHeader(_message.Message):
    __slots__ = ("project", "client_id", "command", "tty", "size")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    project: str
    client_id: int
    command: _containers.RepeatedScalarFieldContainer[str]
    tty: bool
    size: TerminalSize
    def __init__(self, project: _Optional[str] = ..., client_id: _Optional[int] = ..., command: _Optional[_Iterable[str]] = ..., tty: _Optional[bool] = ..., size: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class RunChunk(_message.Message):
    __slots__ = ("header", "stdin", "stdin_closed", "resize")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    STDIN_CLOSED_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    header: RunHeader
    stdin: bytes
    stdin_closed: bool
    resize: TerminalSize
    def __init__(self, header: _Optional[_Union[RunHeader, _Mapping]] = ..., stdin: _Optional[bytes] = ..., stdin_closed: _Optional[bool] = ..., resize: _Optional[_Union[TerminalSize, _Mapping]] = ...) -> None: ...

class RunExit(_message.Message):
    __slots__ = ("code", "reason")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    code: int
    reason: str
    def __init__(self, code: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Refusal(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("started", "stdout", "stderr", "exit", "refused")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    EXIT_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    started: str
    stdout: bytes
    stderr: bytes
    exit: RunExit
    refused: Refusal
    def __init__(self, started: _Optional[str] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., exit: _Optional[_Union[RunExit, _Mapping]] = ..., refused: _Optional[_Union[Refusal, _Mapping]] = ...) -> None: ...

class ProjectRequests(_message.Message):
    __slots__ = ("project", "requests", "status_1xx", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "latency_buckets")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_1XX_FIELD_NUMBER: _ClassVar[int]
    STATUS_2XX_FIELD_NUMBER: _ClassVar[int]
    STATUS_3XX_FIELD_NUMBER: _ClassVar[int]
    STATUS_4XX_FIELD_NUMBER: _ClassVar[int]
    STATUS_5XX_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    project: str
    requests: int
    status_1xx: int
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    latency_buckets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, project: _Optional[str] = ..., requests: _Optional[int] = ..., status_1xx: _Optional[int] = ..., status_2xx: _Optional[int] = ..., status_3xx: _Optional[int] = ..., status_4xx: _Optional[int] = ..., status_5xx: _Optional[int] = ..., latency_buckets: _Optional[_Iterable[int]] = ...) -> None: ...

class RequestReport(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[ProjectRequests]
    def __init__(self, projects: _Optional[_Iterable[_Union[ProjectRequests, _Mapping]]] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Deployed(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...
