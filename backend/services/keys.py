"""SSH public keys: parsed and fingerprinted (cryptography); a key belongs to one Client."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tortoise.exceptions import IntegrityError

from backend import validation
from backend.db.models import Client, SSHKey
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.services import activity

MAX_KEY_LENGTH = 16_384
ALLOWED_ALGORITHMS = {
    b"ssh-ed25519",
    b"ssh-rsa",
    b"ecdsa-sha2-nistp256",
    b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521",
    b"sk-ssh-ed25519@openssh.com",
    b"sk-ecdsa-sha2-nistp256@openssh.com",
}
MIN_RSA_BITS = 2048


def parse_public_key(text: str) -> tuple[str, str, str]:
    """-> (normalised OpenSSH line, SHA256 fingerprint, comment). Raises ValidationFailed.

    Parsed with cryptography, which the API loads anyway (asyncssh, 18 MB of modules, stays in
    gitd: issue 17). The fingerprint is OpenSSH's: SHA-256 of the key blob, base64 unpadded."""
    text = text.strip()
    if not text or len(text) > MAX_KEY_LENGTH or "\n" in text:
        raise ValidationFailed("paste exactly one OpenSSH public key line", field="publicKey")
    invalid = ValidationFailed(
        "not a valid OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA... you@host')",
        field="publicKey",
    )
    fields = text.split(None, 2)
    if len(fields) < 2:
        raise invalid
    algorithm, data = fields[0], fields[1]
    comment = fields[2].strip() if len(fields) == 3 else ""
    try:
        blob = base64.b64decode(data, validate=True)
    except binascii.Error:
        raise invalid from None
    if _blob_type(blob) != algorithm.encode():
        raise invalid
    if algorithm.encode() not in ALLOWED_ALGORITHMS:
        raise ValidationFailed(f"key type {algorithm} is not accepted", field="publicKey")
    try:
        key = serialization.load_ssh_public_key(f"{algorithm} {data}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise invalid from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValidationFailed(
            f"RSA keys must have at least {MIN_RSA_BITS} bits", field="publicKey"
        )
    line = f"{algorithm} {base64.b64encode(blob).decode()}" + (f" {comment}" if comment else "")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return line, f"SHA256:{digest}", comment


def _blob_type(blob: bytes) -> bytes | None:
    """The key type a public key blob starts with (an SSH string: 4-byte length, then bytes)."""
    if len(blob) < 4:
        return None
    size = int.from_bytes(blob[:4], "big")
    return blob[4 : 4 + size] if 0 < size <= len(blob) - 4 else None


async def add_key(client: Client, public_key: str, title: str | None) -> SSHKey:
    line, fingerprint, comment = parse_public_key(public_key)
    title = validation.title(title or comment or fingerprint[:20], field="title")
    if await SSHKey.filter(fingerprint=fingerprint).exists():
        raise Conflict("this key is already registered", field="publicKey")
    try:
        key = await SSHKey.create(
            client=client, title=title, public_key=line, fingerprint=fingerprint
        )
    except IntegrityError as exc:
        raise Conflict("this key is already registered", field="publicKey") from exc
    await activity.record(client, "key.add", title=title, fingerprint=fingerprint)
    return key


async def list_keys(client: Client) -> list[SSHKey]:
    return await SSHKey.filter(client=client).order_by("created_at", "id")


async def remove_key(client: Client, key_id: int) -> SSHKey:
    key = await SSHKey.get_or_none(id=key_id, client=client)
    if key is None:
        raise NotFound("SSH key not found", field="id")
    await key.delete()
    await activity.record(client, "key.remove", title=key.title, fingerprint=key.fingerprint)
    return key


async def client_for_fingerprint(fingerprint: str) -> Client | None:
    key = await SSHKey.get_or_none(fingerprint=fingerprint).prefetch_related("client")
    return key.client if key else None
