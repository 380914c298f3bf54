"""The hardening table (container_config.py), table-driven: what the engine is asked to create for
each kind of tenant process, with nothing taken from the tenant that could loosen it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from backend import labels as L
from backend.pomegranate.container_config import (
    LOG_CONFIG,
    RESTART_POLICY,
    VOLUME_INIT_TARGET,
    app_config,
    oneoff_config,
    volume_init_config,
)
from backend.pomegranate.runtime import Mount, ProcessSpec
from backend.settings import Settings

SETTINGS = Settings(instance="ptest", container_user="10001:10001", tls=False)
NETWORK = "ptest.shop"
MB = 1024 * 1024


def _spec(**changes: Any) -> ProcessSpec:
    base = ProcessSpec(
        project="shop",
        application=3,
        process_type="web",
        replica=1,
        image="127.0.0.1:5000/paastech/app-shop@sha256:" + "a" * 64,
        command=None,
        env={"GREETING": "hi"},
        port=8000,
        hostnames=["shop.example.test"],
        memory_mb=256,
        cpu=0.5,
        pids_limit=128,
        health_path="/health",
    )
    return replace(base, **changes)


# Every app container, whatever its spec: these keys hold exactly these values.
HARDENING = {
    "CapDrop": ["ALL"],
    "SecurityOpt": ["no-new-privileges=true"],
    "Privileged": False,
    "ReadonlyRootfs": False,
    "Binds": [],
    "LogConfig": LOG_CONFIG,
    "Init": True,
    "NetworkMode": NETWORK,
}

CASES: list[tuple[str, ProcessSpec, str, dict[str, Any]]] = [
    (
        "web, image USER kept",
        _spec(),
        "1000:1000",
        {
            "User": "1000:1000",
            "HostConfig.Memory": 256 * MB,
            "HostConfig.MemorySwap": 256 * MB,
            "HostConfig.NanoCpus": 500_000_000,
            "HostConfig.PidsLimit": 128,
            "HostConfig.RestartPolicy": RESTART_POLICY,
            "HostConfig.PortBindings": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
            "ExposedPorts": {"8000/tcp": {}},
            "HostConfig.Mounts": [],
        },
    ),
    (
        "root image user falls back",
        _spec(),
        "0:0",
        {"User": "10001:10001"},
    ),
    (
        "named image user falls back",
        _spec(),
        "node",
        {"User": "10001:10001"},
    ),
    (
        "worker: nothing published, a shell command",
        _spec(process_type="worker", command="python worker.py", hostnames=[], memory_mb=64),
        "",
        {
            "User": "10001:10001",
            "HostConfig.Memory": 64 * MB,
            "HostConfig.MemorySwap": 64 * MB,
            "HostConfig.PortBindings": None,
            "ExposedPorts": None,
            "Entrypoint": [],
            "Cmd": ["/bin/sh", "-c", "exec python worker.py"],
        },
    ),
    (
        "volumes: the project's named volumes only, no copy",
        _spec(mounts=[Mount("data", "ptest.vol.shop.data", "/data")]),
        "",
        {
            "HostConfig.Binds": [],
            "HostConfig.Mounts": [
                {
                    "Type": "volume",
                    "Source": "ptest.vol.shop.data",
                    "Target": "/data",
                    "ReadOnly": False,
                    "VolumeOptions": {"NoCopy": True},
                }
            ],
        },
    ),
]


def _get(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


@pytest.mark.parametrize(
    ("name", "spec", "image_user", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_app_config_table(
    name: str, spec: ProcessSpec, image_user: str, expected: dict[str, Any]
) -> None:
    config = app_config(spec, SETTINGS, NETWORK, image_user)
    for key, value in HARDENING.items():
        assert config["HostConfig"][key] == value, key
    for key, value in expected.items():
        assert _get(config, key) == value, key
    assert config["Tty"] is False and config["OpenStdin"] is False


def test_env_platform_variables_win_over_the_tenants() -> None:
    spec = _spec(env={"PORT": "1", "PAASTECH_APP": "other", "GREETING": "hi"})
    env = app_config(spec, SETTINGS, NETWORK)["Env"]
    assert "PORT=8000" in env and "PAASTECH_APP=shop" in env and "GREETING=hi" in env
    assert "PORT=1" not in env and "PAASTECH_APP=other" not in env
    assert {"PAASTECH_RELEASE=3", "PAASTECH_PROCESS=web", "PAASTECH_REPLICA=1"} <= set(env)


def test_labels_are_the_platforms() -> None:
    labels = app_config(_spec(), SETTINGS, NETWORK)["Labels"]
    assert labels[L.MANAGED] == L.MANAGED_VALUE
    assert labels[L.INSTANCE] == "ptest"
    assert labels[L.PROJECT] == "shop"
    assert L.ONEOFF not in labels


def test_once_is_never_restarted() -> None:
    config = app_config(_spec(), SETTINGS, NETWORK, once=True)
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    # The shared policy itself is untouched by a one-shot config.
    assert RESTART_POLICY == {"Name": "on-failure", "MaximumRetryCount": 5}


@pytest.mark.parametrize(("tty", "attach"), [(True, True), (False, True), (False, False)])
def test_oneoff_config(tty: bool, attach: bool) -> None:
    config = oneoff_config(
        _spec(replica=L.ONEOFF_FIRST_REPLICA + 7),
        SETTINGS,
        NETWORK,
        "root",
        ["rake", "db:migrate"],
        tty=tty,
        attach=attach,
    )
    assert config["Labels"][L.ONEOFF] == L.MANAGED_VALUE
    assert config["Entrypoint"] == [] and config["Cmd"] == ["rake", "db:migrate"]
    assert config["HostConfig"]["RestartPolicy"] == {"Name": "no"}
    assert config["User"] == "10001:10001"
    for key, value in HARDENING.items():
        assert config["HostConfig"][key] == value, key
    assert config["Tty"] is tty
    for key in ("OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr"):
        assert config[key] is attach, key


def test_invalid_label_input_is_refused() -> None:
    with pytest.raises(ValueError):
        app_config(_spec(project="Bad_Name"), SETTINGS, NETWORK)
    with pytest.raises(ValueError):
        app_config(_spec(hostnames=[]), SETTINGS, NETWORK)  # web without a hostname


def test_volume_init_config() -> None:
    config = volume_init_config("ptest.vol.shop.data", "1000:1000", SETTINGS)
    host = config["HostConfig"]
    assert config["User"] == "0:0" and config["NetworkDisabled"] is True
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"] and host["CapAdd"] == ["CHOWN"]
    assert host["SecurityOpt"] == ["no-new-privileges=true"]
    assert host["Mounts"] == [
        {"Type": "volume", "Source": "ptest.vol.shop.data", "Target": VOLUME_INIT_TARGET}
    ]
    assert config["Cmd"][-1] == f"chmod 0700 {VOLUME_INIT_TARGET} && chown 1000:1000 /volume"
    assert config["Image"] == SETTINGS.volume_init_image


@pytest.mark.parametrize("user", ["root", "1000:1000; rm -rf /", "", "1000:abc"])
def test_volume_init_refuses_a_non_numeric_user(user: str) -> None:
    with pytest.raises(ValueError, match="not a numeric uid:gid"):
        volume_init_config("ptest.vol.shop.data", user, SETTINGS)


def test_a_startup_boost_starts_above_the_limit_and_labels_the_limit() -> None:
    config = app_config(_spec(cpu=0.25, startup_cpu=1.0), SETTINGS, NETWORK, "")
    assert config["HostConfig"]["NanoCpus"] == 1_000_000_000
    # What the runtime sets once the container is healthy (docker_runtime._settle_cpu).
    assert config["Labels"][L.CPU_LIMIT] == "250000000"


@pytest.mark.parametrize("startup_cpu", [0.0, 0.25, 0.1])
def test_no_boost_when_the_startup_cpu_is_not_above_the_limit(startup_cpu: float) -> None:
    config = app_config(_spec(cpu=0.25, startup_cpu=startup_cpu), SETTINGS, NETWORK, "")
    assert config["HostConfig"]["NanoCpus"] == 250_000_000
    assert L.CPU_LIMIT not in config["Labels"]
