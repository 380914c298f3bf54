"""Issue 21: HTTPS defaults, and the certificate store's guards (no services needed)."""

from __future__ import annotations

import pytest

from backend.ingress import certstore as cs
from backend.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("domain", "tls"),
    [("localhost", False), ("app.localhost", False), ("example.com", True), ("paas.test", True)],
)
def test_tls_is_on_by_default_only_for_a_real_base_domain(monkeypatch, domain, tls):
    monkeypatch.delenv("PAASTECH_TLS", raising=False)
    monkeypatch.delenv("PAASTECH_PUBLIC_PORT", raising=False)
    s = settings(base_domain=domain)
    assert s.tls is tls
    scheme, port = ("https", 8443) if tls else ("http", 8080)
    assert s.app_url(f"a.{domain}") == f"{scheme}://a.{domain}:{port}"


def test_explicit_tls_and_public_port_win(monkeypatch):
    monkeypatch.delenv("PAASTECH_TLS", raising=False)
    assert settings(base_domain="example.com", tls=False).app_url("a.example.com") == (
        "http://a.example.com:8080"
    )
    s = settings(base_domain="example.com", public_port=443)
    assert s.app_url("a.example.com") == "https://a.example.com"
    monkeypatch.setenv("PAASTECH_TLS", "true")
    assert settings().tls is True  # even for localhost, when asked


def test_store_refuses_names_that_are_not_hostnames(tmp_path):
    store = cs.CertStore(tmp_path)
    for name in ("../secret", "a/b.com", "", "UPPER.example.com", "x" * 300 + ".com"):
        with pytest.raises(ValueError):
            store.save_certificate(name, cs.StoredCertificate(b"k", b"c"))
        assert store.read_status(name) is None
    assert not (tmp_path / "secret").exists()
