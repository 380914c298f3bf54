"""The input rules, one by one."""

from __future__ import annotations

import pytest

from backend import validation
from backend.errors import ValidationFailed


@pytest.mark.parametrize("name", ["ab", "my-app", "a1", "x" * 40, "app-2-go"])
def test_valid_project_names(name: str) -> None:
    assert validation.project_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "",
        "-ab",
        "ab-",
        "Ab",
        "a_b",
        "a.b",
        "1ab",
        "x" * 41,
        "a--b",
        "git",
        "app",
        "a b",
        "ab\n",
    ],
)
def test_invalid_project_names(name: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validation.project_name(name)
    assert info.value.field == "name"


@pytest.mark.parametrize("key", ["A", "_X", "DATABASE_URL", "K9", "a", "lower_case", "Mixed9"])
def test_valid_env_keys(key: str) -> None:
    assert validation.env_key(key) == key


@pytest.mark.parametrize("key", ["9A", "9a", "A-B", "PORT", "PAASTECH_X", "", "A B", "É"])
def test_invalid_env_keys(key: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.env_key(key)


def test_env_value_limits() -> None:
    assert validation.env_value("K", "x=y z ü") == "x=y z ü"
    with pytest.raises(ValidationFailed):
        validation.env_value("K", "ü" * (validation.ENV_VALUE_MAX // 2 + 1))
    with pytest.raises(ValidationFailed):
        validation.env_value("K", "a\x00")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("WWW.Example.COM.", "www.example.com"),
        ("a.b", "a.b"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_hostnames_normalised(raw: str, clean: str) -> None:
    assert validation.hostname(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "localhost",
        "a..b",
        "-a.com",
        "a-.com",
        "a_b.com",
        "1.2.3.4",
        "a" * 64 + ".com",
        ("a" * 60 + ".") * 5 + "com",
        "a b.com",
    ],
)
def test_invalid_hostnames(raw: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.hostname(raw)


@pytest.mark.parametrize(
    ("pw", "ok"),
    [
        ("correct-horse-7", True),
        ("short1", False),
        ("allletterslong", False),
        ("12345678901", False),
        ("password123", False),
        ("bobby-is-cool-1", False),
    ],
)
def test_password_rules(pw: str, ok: bool) -> None:
    if ok:
        assert validation.password(pw, user="bobby") == pw
    else:
        with pytest.raises(ValidationFailed):
            validation.password(pw, user="bobby")


@pytest.mark.parametrize(
    ("email", "ok"),
    [("a@b.io", True), (" A@B.IO ", True), ("a@b", False), ("@b.io", False), ("a b@c.io", False)],
)
def test_email(email: str, ok: bool) -> None:
    if ok:
        assert validation.email(email) == email.strip().lower()
    else:
        with pytest.raises(ValidationFailed):
            validation.email(email)


@pytest.mark.parametrize("path", ["", "/", "/health", "/api/v1/ping?x=1", "/a-b_c.d~e"])
def test_valid_health_paths(path: str) -> None:
    assert validation.health_check_path(path) == path


@pytest.mark.parametrize("path", ["health", "/has space", "/`x`", "/" + "a" * 200, "/\n"])
def test_invalid_health_paths(path: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.health_check_path(path)


@pytest.mark.parametrize("name", ["main", "master", "release/v1", "prod-2"])
def test_valid_branches(name: str) -> None:
    assert validation.branch(name) == name


@pytest.mark.parametrize(
    "name", ["", "/main", "a//b", "a..b", "x.lock", "a b", "main/", "a@{1}", "-x" * 60]
)
def test_invalid_branches(name: str) -> None:
    with pytest.raises(ValidationFailed):
        validation.branch(name)


@pytest.mark.parametrize(("port", "ok"), [(1, True), (65535, True), (0, False), (70000, False)])
def test_ports(port: int, ok: bool) -> None:
    if ok:
        assert validation.port(port) == port
    else:
        with pytest.raises(ValidationFailed):
            validation.port(port)
