"""Password hashing (argon2id), bearer tokens (only SHA-256 stored) and encryption at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.settings import get_settings

if TYPE_CHECKING:
    from argon2 import PasswordHasher

T = TypeVar("T")
TOKEN_PREFIX = "pt_"

# argon2id parameter sets maintained by argon2-cffi (names in argon2.profiles). A hash carries
# its own parameters, so a hash made under one profile still verifies under another.
PROFILES = {
    "rfc_9106_low_memory": "RFC_9106_LOW_MEMORY",
    "rfc_9106_high_memory": "RFC_9106_HIGH_MEMORY",
    # Tests only: thousands of sign-ups and logins per run, where the default's 64 MiB and
    # three passes per hash dominated the suite's time (and the fuzzer's).
    "cheapest": "CHEAPEST",
}


@lru_cache
def _hasher() -> PasswordHasher:
    # Imported here: only the API hashes passwords; Pomegranate, gitd and the ingress load this
    # module for their keys alone (a small saving: about 0.06 MB each, issue 17).
    from argon2 import PasswordHasher, profiles

    parameters = getattr(profiles, PROFILES[get_settings().password_hash_profile])
    return PasswordHasher.from_parameters(parameters)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class HashingBusy(Exception):
    """More password hashes are waiting than the queue allows."""


_pool: ThreadPoolExecutor | None = None
_waiting = 0


async def _off_loop(fn: Callable[..., T], *args: str) -> T:
    """Run an argon2 call on the bounded hashing pool: the event loop keeps answering other
    requests, and a flood of logins/sign-ups is refused instead of queueing without end."""
    global _pool, _waiting
    settings = get_settings()
    if _waiting >= settings.password_hash_queue:
        raise HashingBusy
    if _pool is None:
        _pool = ThreadPoolExecutor(settings.password_hash_workers, thread_name_prefix="argon2")
    _waiting += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    finally:
        _waiting -= 1


async def hash_password_async(password: str) -> str:
    return await _off_loop(hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    return await _off_loop(verify_password, password_hash, password)


@lru_cache
def dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not reveal it."""
    return _hasher().hash(secrets.token_hex(16))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The purposes keys are derived for. One master key; each purpose gets its own HKDF output, so a
# process holding one derived key (gitd: internal RPC only) learns nothing about the others.
ENV_ENCRYPTION = "env-encryption"
INTERNAL_RPC = "internal-rpc"
SESSIONS = "sessions"
WEB_FORWARDING = "web-forwarding"
PURPOSES = (ENV_ENCRYPTION, INTERNAL_RPC, SESSIONS, WEB_FORWARDING)


def derive_key(purpose: str, master_key: str | None = None) -> bytes:
    """32 bytes for one purpose, HKDF-SHA256 from the master key."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    master = (master_key or get_settings().resolved_secret_key()).encode()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"paastech-v1", info=purpose.encode()
    ).derive(master)


def _legacy_encryption_key(master_key: str) -> bytes:
    """The key env vars were encrypted with before keys were split by purpose (HMAC)."""
    return hmac.new(master_key.encode(), b"encryption-at-rest", hashlib.sha256).digest()


def env_cipher(master_key: str | None = None) -> MultiFernet:
    """Encrypts with the env-encryption key; still decrypts values written by older versions
    (until `python -m backend rotate-key` re-encrypts them)."""
    master = master_key or get_settings().resolved_secret_key()
    keys = (derive_key(ENV_ENCRYPTION, master), _legacy_encryption_key(master))
    return MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in keys])


@lru_cache
def _fernet() -> MultiFernet:
    return env_cipher()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:  # wrong secret key: say so, never print the value
        raise RuntimeError("cannot decrypt a stored secret: was the secret key changed?") from exc


def internal_secret(secret_key: str | None = None) -> str:
    """Shared secret of the internal gRPC services.

    A process given only PAASTECH_INTERNAL_KEY (gitd and its hook) uses it as is; every other
    process derives the same value from the master key."""
    if secret_key is None:
        given = get_settings().internal_key
        if given:
            return given
    return derive_key(INTERNAL_RPC, secret_key).hex()


def web_forwarding_secret(secret_key: str | None = None) -> str:
    """What the web app sends to vouch for the visitor address it forwards to the API."""
    return derive_key(WEB_FORWARDING, secret_key).hex()
