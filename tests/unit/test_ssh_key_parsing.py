"""The API parses SSH public keys with cryptography (backend/services/keys.py) while gitd
authenticates with asyncssh: both must agree on every key, its fingerprint and its text."""

from __future__ import annotations

import base64
import os
import struct

import asyncssh
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from backend.errors import ValidationFailed
from backend.services.keys import parse_public_key


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _line(blob: bytes, algorithm: str | None = None, comment: str = "") -> str:
    algorithm = algorithm or blob[4 : 4 + struct.unpack(">I", blob[:4])[0]].decode()
    return f"{algorithm} {base64.b64encode(blob).decode()}" + (f" {comment}" if comment else "")


def _openssh(private) -> str:
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return asyncssh.import_private_key(pem).export_public_key("openssh").decode().strip()


def _sk_ed25519() -> str:
    blob = _string(b"sk-ssh-ed25519@openssh.com") + _string(os.urandom(32)) + _string(b"ssh:")
    return _line(blob)


def _sk_ecdsa() -> str:
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    raw = b"\x04" + point.x.to_bytes(32, "big") + point.y.to_bytes(32, "big")
    blob = (
        _string(b"sk-ecdsa-sha2-nistp256@openssh.com")
        + _string(b"nistp256")
        + _string(raw)
        + _string(b"ssh:")
    )
    return _line(blob)


VALID = {
    "ed25519": lambda: _openssh(ed25519.Ed25519PrivateKey.generate()),
    "rsa-2048": lambda: _openssh(rsa.generate_private_key(65537, 2048)),
    "ecdsa-256": lambda: _openssh(ec.generate_private_key(ec.SECP256R1())),
    "ecdsa-384": lambda: _openssh(ec.generate_private_key(ec.SECP384R1())),
    "ecdsa-521": lambda: _openssh(ec.generate_private_key(ec.SECP521R1())),
    "sk-ed25519": _sk_ed25519,
    "sk-ecdsa": _sk_ecdsa,
}


@pytest.mark.parametrize("kind", VALID)
@pytest.mark.parametrize("comment", ["", "me@host", "two words  here"])
def test_every_accepted_key_type_agrees_with_asyncssh(kind: str, comment: str) -> None:
    text = VALID[kind]() + (f" {comment}" if comment else "")
    line, fingerprint, parsed_comment = parse_public_key(f"  {text}\t")
    theirs = asyncssh.import_public_key(text)
    assert fingerprint == theirs.get_fingerprint("sha256")
    assert line == theirs.export_public_key("openssh").decode().strip()
    assert parsed_comment == (theirs.get_comment() or "").strip() == comment.strip()
    assert asyncssh.import_public_key(line).get_fingerprint("sha256") == fingerprint  # gitd


def test_a_key_in_non_canonical_base64_is_stored_canonically() -> None:
    text = VALID["ecdsa-256"]()  # a 104-byte blob: its last base64 digit has 2 unused bits
    algorithm, data = text.split()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = data.rstrip("=")[-1]
    loose = data.rstrip("=")[:-1] + alphabet[alphabet.index(last) ^ 1] + "="
    assert loose != data and base64.b64decode(loose) == base64.b64decode(data)
    line, fingerprint, _ = parse_public_key(f"{algorithm} {loose}")
    assert line == text
    assert fingerprint == asyncssh.import_public_key(text).get_fingerprint("sha256")


def _mutations() -> dict[str, str]:
    good = VALID["ed25519"]()
    data = good.split()[1]
    blob = base64.b64decode(data)
    return {
        "empty": "",
        "one word": "ssh-ed25519",
        "not base64": "ssh-ed25519 AAAAnotbase64!!",
        "truncated": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== truncated",
        "trailing data": _line(blob + b"\x00\x00\x00\x01x"),
        "short key": _line(_string(b"ssh-ed25519") + _string(b"\x01" * 16)),
        "type mismatch": f"ssh-rsa {data}",
        "unknown type": _line(_string(b"ssh-foo") + _string(b"x")),
        "blob too short": "ssh-ed25519 AAA=",
        "private key": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "two lines": f"{good}\n{good}",
        "too long": f"{good} {'x' * 17_000}",
    }


@pytest.mark.parametrize("name", list(_mutations()))
def test_invalid_keys_are_refused_with_the_field_named(name: str) -> None:
    text = _mutations()[name]
    with pytest.raises(ValidationFailed) as info:
        parse_public_key(text)
    assert info.value.field == "publicKey"
    if name not in ("empty", "two lines", "too long", "private key", "one word"):
        with pytest.raises((asyncssh.KeyImportError, ValueError)):
            asyncssh.import_public_key(text)  # gitd would refuse it too


def test_refused_types_and_weak_rsa_keys_say_why() -> None:
    dss = _string(b"ssh-dss") + b"".join(_string(b"\x01" * n) for n in (129, 21, 128, 128))
    with pytest.raises(ValidationFailed, match="key type ssh-dss is not accepted"):
        parse_public_key(_line(dss))
    weak = _openssh(rsa.generate_private_key(65537, 1024))
    with pytest.raises(ValidationFailed, match="at least 2048 bits"):
        parse_public_key(weak)
