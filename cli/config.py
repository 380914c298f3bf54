"""Where the CLI keeps its state: the API URL and the stored tokens.

Credentials live in `$XDG_CONFIG_HOME/paastech/credentials.json` (default `~/.config/paastech/`),
mode 0600 in a 0700 directory, one entry per API URL so that several installations can be used
from one account. `PAASTECH_TOKEN` overrides the stored token; `PAASTECH_API_URL` (or `--api`)
the default API URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000/graphql"
API_URL_ENV = "PAASTECH_API_URL"
TOKEN_ENV = "PAASTECH_TOKEN"
CREDENTIALS_FILE = "credentials.json"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "paastech"


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


@dataclass
class Credentials:
    token: str
    username: str = ""
    token_id: str | None = None  # None: a session token (from login), not a named API token
    token_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "username": self.username,
            "tokenId": self.token_id,
            "tokenName": self.token_name,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Credentials | None:
        token = data.get("token")
        if not isinstance(token, str) or not token:
            return None
        token_id = data.get("tokenId")
        return cls(
            token=token,
            username=str(data.get("username") or ""),
            token_id=str(token_id) if token_id is not None else None,
            token_name=str(data.get("tokenName") or ""),
        )


def _read_all() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # unreadable or corrupt: treated as logged out; the next login rewrites it
    return data if isinstance(data, dict) else {}


def _write_all(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        path.parent.chmod(0o700)
    # Write a 0600 temp file next to it, then rename: never a moment with looser permissions.
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load(api_url: str) -> Credentials | None:
    entry = (_read_all().get("credentials") or {}).get(api_url)
    return Credentials.from_json(entry) if isinstance(entry, dict) else None


def save(api_url: str, creds: Credentials) -> Path:
    data = _read_all()
    stored = data.get("credentials")
    if not isinstance(stored, dict):
        stored = {}
    stored[api_url] = creds.to_json()
    data["credentials"] = stored
    data["version"] = 1
    return _write_all(data)


def forget(api_url: str) -> bool:
    """Remove the stored credentials of one API; True if there were some."""
    data = _read_all()
    stored = data.get("credentials")
    if not isinstance(stored, dict) or api_url not in stored:
        return False
    del stored[api_url]
    _write_all(data)
    return True


def env_token() -> str | None:
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def logged_in_urls() -> list[str]:
    """The API URLs with stored credentials (to point at a mistyped --api)."""
    stored = _read_all().get("credentials")
    return sorted(stored) if isinstance(stored, dict) else []


def cache_dir() -> Path:
    """Short-lived caches (completion); `$XDG_CACHE_HOME/paastech`, default ~/.cache/paastech."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache"
    return root / "paastech"
