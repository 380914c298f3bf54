"""SSH public keys: parsed and fingerprinted with asyncssh; a key belongs to one Client."""

from __future__ import annotations

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
    """-> (normalised OpenSSH line, SHA256 fingerprint, comment). Raises ValidationFailed."""
    text = text.strip()
    if not text or len(text) > MAX_KEY_LENGTH or "\n" in text:
        raise ValidationFailed("paste exactly one OpenSSH public key line", field="publicKey")
    # asyncssh (about 18 MB of modules) is loaded by the API only once a key is added.
    import asyncssh

    try:
        key = asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValidationFailed(
            "not a valid OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA... you@host')",
            field="publicKey",
        ) from exc
    if key.algorithm not in ALLOWED_ALGORITHMS:
        raise ValidationFailed(
            f"key type {key.algorithm.decode()} is not accepted", field="publicKey"
        )
    pyca_key = key.pyca_key  # an ssh-rsa key is an RSAPublicKey
    if (
        key.algorithm == b"ssh-rsa"
        and isinstance(pyca_key, rsa.RSAPublicKey)
        and pyca_key.key_size < MIN_RSA_BITS
    ):
        raise ValidationFailed(
            f"RSA keys must have at least {MIN_RSA_BITS} bits", field="publicKey"
        )
    comment = (key.get_comment() or "").strip()
    line = key.export_public_key("openssh").decode().strip()
    return line, key.get_fingerprint("sha256"), comment


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
