"""Every input rule of the platform, in one place (API, gitd and CLI all import these)."""

from __future__ import annotations

import re

from backend.errors import ValidationFailed

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,31}$")
# A lowercase DNS label, 2-40 chars, starting with a letter, not ending with a hyphen.
PROJECT_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
# As Heroku and POSIX shells: letters (either case), digits and "_", not starting with a digit.
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOST_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,199}$")
BRANCH_RE = re.compile(r"^(?![/-])(?!.*//)(?!.*\.\.)(?!.*@\{)[A-Za-z0-9._/-]{1,100}(?<![/.])$")

PASSWORD_MIN = 10
PASSWORD_MAX = 256
ENV_KEY_MAX = 128
ENV_VALUE_MAX = 32 * 1024
ENV_VARS_MAX = 200
API_TOKEN_MAX_DAYS = 3650
RESERVED_ENV_KEYS = frozenset({"PORT"})
RESERVED_ENV_PREFIX = "PAASTECH_"
# Hostnames the platform itself uses under the base domain (api., app., git. in production).
RESERVED_PROJECT_NAMES = frozenset({"api", "app", "git", "www", "admin", "traefik", "paastech"})
COMMON_PASSWORDS = frozenset(
    {"password123", "1234567890", "qwertyuiop", "password1234", "letmein1234", "iloveyou12"}
)


def email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not EMAIL_RE.fullmatch(value):
        raise ValidationFailed("email must look like name@example.com", field="email")
    return value


def username(value: str) -> str:
    if not USERNAME_RE.fullmatch(value):
        raise ValidationFailed(
            "username must be 3-32 characters: lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit",
            field="username",
        )
    return value


def password(value: str, *, user: str = "", mail: str = "") -> str:
    if len(value) < PASSWORD_MIN:
        raise ValidationFailed(
            f"password must be at least {PASSWORD_MIN} characters", field="password"
        )
    if len(value) > PASSWORD_MAX:
        raise ValidationFailed(
            f"password must be at most {PASSWORD_MAX} characters", field="password"
        )
    if value.isalpha() or value.isdigit():
        raise ValidationFailed("password must mix letters with digits or symbols", field="password")
    lowered = value.lower()
    if lowered in COMMON_PASSWORDS or (user and user in lowered) or (mail and lowered == mail):
        raise ValidationFailed("password is too easy to guess", field="password")
    return value


def project_name(value: str, *, field: str = "name") -> str:
    if not PROJECT_NAME_RE.fullmatch(value) or "--" in value:
        raise ValidationFailed(
            "project name must be 2-40 characters: lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'",
            field=field,
        )
    if value in RESERVED_PROJECT_NAMES:
        raise ValidationFailed(f"project name {value!r} is reserved", field=field)
    return value


def env_key(value: str) -> str:
    if len(value) > ENV_KEY_MAX or not ENV_KEY_RE.fullmatch(value):
        raise ValidationFailed(
            f"invalid env var name {value[:ENV_KEY_MAX]!r}: use letters, digits and '_', "
            "not starting with a digit",
            field="key",
        )
    if value in RESERVED_ENV_KEYS or value.startswith(RESERVED_ENV_PREFIX):
        raise ValidationFailed(f"env var {value} is reserved: the platform sets it", field="key")
    return value


def env_value(key: str, value: str) -> str:
    if len(value.encode()) > ENV_VALUE_MAX:
        raise ValidationFailed(
            f"value of {key} is larger than {ENV_VALUE_MAX} bytes", field="value"
        )
    if "\x00" in value:
        raise ValidationFailed(f"value of {key} contains a NUL byte", field="value")
    return value


def hostname(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(HOST_LABEL_RE.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationFailed(
            f"{value[:253]!r} is not a valid hostname (like app.example.com)", field="hostname"
        )
    return value


def title(value: str, *, field: str = "title", max_length: int = 100) -> str:
    value = value.strip()
    if not value or len(value) > max_length or not value.isprintable():
        raise ValidationFailed(f"{field} must be 1-{max_length} printable characters", field=field)
    return value


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValidationFailed("port must be between 1 and 65535", field="port")
    return value


def health_check_path(value: str) -> str:
    """A URL path checked with HTTP GET, or "" for a plain TCP check."""
    if value and not HEALTH_PATH_RE.fullmatch(value):
        raise ValidationFailed(
            "health check path must start with '/' and be a plain URL path (max 200 chars), "
            "or be empty for a TCP check",
            field="healthCheckPath",
        )
    return value


def branch(value: str) -> str:
    if not BRANCH_RE.fullmatch(value) or value.endswith(".lock"):
        raise ValidationFailed(f"{value[:100]!r} is not a valid branch name", field="deployBranch")
    return value


# Persistent volumes (issue 15). A volume's name: a short DNS-label-like slug (it is part of the
# Docker volume's name). Its mount path: absolute, normalised, printable, not a system directory.
VOLUME_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,28}[a-z0-9]$")
MOUNT_PATH_MAX = 200
MOUNT_PATH_RE = re.compile(r"^(/[A-Za-z0-9._@+-]+)+$")
# Where a volume may not go: the system's own trees (a volume over them would hide or replace the
# image's programs and libraries, or the kernel's interfaces), and the scratch directories.
RESERVED_MOUNT_ROOTS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/var/run",
    "/var/lib/dpkg",
    "/var/tmp",
)
APP_DIR = "/app"


def volume_name(value: str) -> str:
    if not isinstance(value, str) or not VOLUME_NAME_RE.fullmatch(value) or "--" in value:
        raise ValidationFailed(
            "volume name must be 2-30 characters: lowercase letters, digits and '-', starting "
            "with a letter and not ending with '-'",
            field="name",
        )
    return value


def mount_path(value: str) -> str:
    """An absolute, already normalised path (no `.`, `..`, `//` or trailing `/`), not `/` and
    not in or over a system directory (RESERVED_MOUNT_ROOTS)."""
    field = "mountPath"
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValidationFailed("mount path must be absolute (start with '/')", field=field)
    if len(value) > MOUNT_PATH_MAX:
        raise ValidationFailed(
            f"mount path is longer than {MOUNT_PATH_MAX} characters", field=field
        )
    if value == "/":
        raise ValidationFailed("a volume cannot be mounted at '/'", field=field)
    parts = value.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts):
        raise ValidationFailed(
            f"mount path {value!r} is not normalised (no '.', '..', '//' or trailing '/')",
            field=field,
        )
    if not MOUNT_PATH_RE.fullmatch(value):
        raise ValidationFailed(
            "mount path may hold only letters, digits and . _ @ + - between '/'", field=field
        )
    if value == APP_DIR:
        raise ValidationFailed(
            f"{APP_DIR} holds the app's code (buildpacks): mount a directory under it, e.g. "
            f"{APP_DIR}/uploads",
            field=field,
        )
    for root in RESERVED_MOUNT_ROOTS:
        if value == root or value.startswith(root + "/"):
            raise ValidationFailed(
                f"{value} is in the system directory {root}: choose a path such as /data",
                field=field,
            )
    return value
