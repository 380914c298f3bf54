"""Settings read from PAASTECH_ variables: conversion, checks and the clear error on a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import Settings, SettingsError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith("PAASTECH_"):
            monkeypatch.delenv(key)


def test_variables_are_converted_to_the_field_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTECH_API_PORT", "9001")
    monkeypatch.setenv("PAASTECH_STARTUP_CPU", "0.25")
    monkeypatch.setenv("PAASTECH_DATA_DIR", "/srv/paastech")
    monkeypatch.setenv("paastech_base_domain", "apps.example.com")  # any case, as before
    monkeypatch.setenv("PAASTECH_SWARM_NODE_DOCKER_URLS", '["tcp://10.0.0.2:2375"]')
    monkeypatch.setenv("PAASTECH_RUNTIME", "swarm")
    monkeypatch.setenv("PAASTECH_NOT_A_SETTING", "ignored")
    monkeypatch.setenv("OTHER_API_PORT", "1")
    s = Settings()
    assert s.api_port == 9001
    assert s.startup_cpu == 0.25
    assert s.data_dir == Path("/srv/paastech")
    assert s.base_domain == "apps.example.com"
    assert s.swarm_node_docker_urls == ["tcp://10.0.0.2:2375"]
    assert s.runtime == "swarm"
    assert not hasattr(s, "not_a_setting")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("On", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_bools_read_the_usual_words(
    monkeypatch: pytest.MonkeyPatch, text: str, value: bool
) -> None:
    monkeypatch.setenv("PAASTECH_WEBHOOK_ALLOW_PRIVATE", text)
    assert Settings().webhook_allow_private is value


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTECH_API_PORT", "9001")
    monkeypatch.setenv("PAASTECH_GITD_PORT", "2300")
    s = Settings(api_port=9002, data_dir="/tmp/x")
    assert (s.api_port, s.gitd_port, s.data_dir) == (9002, 2300, Path("/tmp/x"))


def test_an_empty_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTECH_API_PORT", "")
    monkeypatch.setenv("PAASTECH_TLS", "")
    monkeypatch.setenv("PAASTECH_DNS_RESOLVER", "")  # a str: empty is its value
    s = Settings()
    assert s.api_port == 8000 and s.tls is False and s.dns_resolver == ""


def test_tls_and_the_public_port_follow_the_base_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings().tls, Settings().public_port) == (False, 8080)
    real = Settings(base_domain="apps.example.com")
    assert (real.tls, real.public_port) == (True, 8443)
    assert Settings(base_domain="apps.example.com", public_https_port=443).public_port == 443
    assert Settings(base_domain="apps.example.com", public_port=80).public_port == 80
    assert Settings(base_domain="apps.example.com", tls=False).public_port == 8080
    monkeypatch.setenv("PAASTECH_TLS", "false")
    assert Settings(base_domain="apps.example.com").tls is False


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("PAASTECH_API_PORT", "eighty", "Expected `int`"),
        ("PAASTECH_WEBHOOK_ATTEMPTS", "0", ">= 1"),
        ("PAASTECH_PROJECT_NETWORK_PREFIX", "30", "<= 29"),
        ("PAASTECH_RUNTIME", "kubernetes", "kubernetes"),
        ("PAASTECH_DEVELOPMENT", "maybe", "Expected `bool`"),
        ("PAASTECH_SWARM_NODE_DOCKER_URLS", "tcp://a", "JSON list"),
        ("PAASTECH_SWARM_NODE_DOCKER_URLS", "[1]", "Expected `str`"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, text: str, says: str
) -> None:
    monkeypatch.setenv(name, text)
    with pytest.raises(SettingsError, match=name) as caught:
        Settings()
    assert says in str(caught.value)


def test_a_bad_keyword_argument_is_refused_the_same_way() -> None:
    with pytest.raises(SettingsError, match="PAASTECH_ACME_RENEW_FRACTION"):
        Settings(acme_renew_fraction=1.5)


def test_replace_changes_only_the_named_fields() -> None:
    base = Settings(api_port=9001)
    changed = base.replace(project_network_firewall=False)
    assert changed.project_network_firewall is False and changed.api_port == 9001
    assert base.project_network_firewall is True
