"""Password hashing (argon2id), bearer tokens (only SHA-256 stored) and encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from backend.settings import get_settings

_hasher = PasswordHasher()  # argon2id with the library's maintained defaults
TOKEN_PREFIX = "pt_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@lru_cache
def dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not reveal it."""
    return _hasher.hash(secrets.token_hex(16))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _derive(purpose: str, secret_key: str | None = None) -> bytes:
    key = (secret_key or get_settings().resolved_secret_key()).encode()
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()


@lru_cache
def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive("encryption-at-rest")))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:  # wrong secret key: say so, never print the value
        raise RuntimeError("cannot decrypt a stored secret: was the secret key changed?") from exc


def internal_secret(secret_key: str | None = None) -> str:
    """Shared secret of the internal gRPC services, derived from the secret key."""
    return _derive("internal-grpc", secret_key).hex()
