"""Persistent volumes (issue 15): the rules on names and mount paths, and the release spec's
volumes as Pomegranate reads them (it checks them again: they name engine objects and paths)."""

from __future__ import annotations

import pytest

from backend import validation
from backend.errors import ValidationFailed
from backend.pomegranate import convert
from backend.rpc import pomegranate_pb2 as pb
from backend.services.volumes import _default_name, docker_key
from backend.settings import Settings

SETTINGS = Settings(secret_key="unit")


@pytest.mark.parametrize("path", ["/data", "/app/uploads", "/srv/my-app/files_1", "/var/lib/app"])
def test_good_mount_paths(path: str) -> None:
    assert validation.mount_path(path) == path


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("data", "absolute"),
        ("", "absolute"),
        ("/", "'/'"),
        ("/data/", "normalised"),
        ("/data//x", "normalised"),
        ("/data/../etc", "normalised"),
        ("/./data", "normalised"),
        ("/data/x y", "only letters"),
        ("/data/\x00", "only letters"),
        ("/etc", "system directory /etc"),
        ("/etc/app", "system directory /etc"),
        ("/proc/self", "system directory /proc"),
        ("/sys", "system directory /sys"),
        ("/dev/shm", "system directory /dev"),
        ("/usr/local/data", "system directory /usr"),
        ("/bin", "system directory /bin"),
        ("/lib", "system directory /lib"),
        ("/sbin", "system directory /sbin"),
        ("/tmp/x", "system directory /tmp"),
        ("/app", "holds the app's code"),
        ("/" + "a" * 200, "longer than"),
    ],
)
def test_bad_mount_paths_are_refused_with_the_field(path: str, why: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validation.mount_path(path)
    assert caught.value.field == "mountPath"
    assert why in caught.value.message


def test_a_name_under_a_system_directory_prefix_is_not_confused_with_it() -> None:
    assert validation.mount_path("/etcetera") == "/etcetera"
    assert validation.mount_path("/application") == "/application"


@pytest.mark.parametrize("name", ["a", "-data", "data-", "Data", "da--ta", "d.x", "x" * 31, "9x"])
def test_bad_volume_names(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validation.volume_name(name)
    assert caught.value.field == "name"


def test_default_names_come_from_the_path_and_stay_unique() -> None:
    assert _default_name("/app/uploads", set()) == "uploads"
    assert _default_name("/app/uploads", {"uploads"}) == "uploads-2"
    assert _default_name("/srv/My_Files", set()) == "my-files"
    assert _default_name("/srv/2024", set()) == "v-2024"
    assert _default_name("/srv/x", set()) == "x-2"  # one letter is too short for a name


def spec(*volumes: pb.VolumeMount) -> pb.ReleaseSpec:
    return pb.ReleaseSpec(
        project="blog",
        application=3,
        image="img",
        port=5000,
        hostnames=["blog.localhost"],
        memory_mb=256,
        cpu=0.5,
        health_timeout=30,
        volumes=list(volumes),
    )


def test_the_release_spec_carries_volumes_into_the_plan() -> None:
    plan = convert.release_plan(
        spec(
            pb.VolumeMount(name="data", key="abc123", path="/data", processes=["web", "worker"]),
            pb.VolumeMount(name="logs", key="def456", path="/srv/logs", processes=["worker"]),
        ),
        SETTINGS,
    )
    assert [(m.docker_name, m.path) for m in plan.mounts("web", "paastech")] == [
        ("paastech.blog.data.abc123", "/data")
    ]
    assert [m.path for m in plan.mounts("worker", "paastech")] == ["/data", "/srv/logs"]
    assert plan.mounts("clock", "paastech") == []


@pytest.mark.parametrize(
    "mount",
    [
        pb.VolumeMount(name="data", key="abc123", path="/etc", processes=["web"]),
        pb.VolumeMount(name="data", key="abc123", path="/data/../../etc", processes=["web"]),
        pb.VolumeMount(name="../x", key="abc123", path="/data", processes=["web"]),
        pb.VolumeMount(name="data", key="ABC/..", path="/data", processes=["web"]),
        pb.VolumeMount(name="data", key="abc123", path="/data", processes=["Web!"]),
    ],
)
def test_pomegranate_refuses_a_bad_volume_in_a_spec(mount: pb.VolumeMount) -> None:
    with pytest.raises(convert.BadRequest):
        convert.release_plan(spec(mount), SETTINGS)


def test_pomegranate_refuses_two_volumes_at_one_path() -> None:
    a = pb.VolumeMount(name="a1", key="abc123", path="/data", processes=["web"])
    b = pb.VolumeMount(name="b1", key="def456", path="/data", processes=["web"])
    with pytest.raises(convert.BadRequest, match="same path"):
        convert.release_plan(spec(a, b), SETTINGS)


def test_only_a_projects_own_volume_names_are_accepted() -> None:
    assert convert.check_docker_volume("blog", "paastech.blog.data.abc123", "paastech")
    for name in (
        "paastech.shop.data.abc123",  # another project's
        "other.blog.data.abc123",  # another installation's
        "paastech.blog.data",  # no key
        "paastech.blog-x.data.abc123",
        "some-volume",
    ):
        with pytest.raises(convert.BadRequest):
            convert.check_docker_volume("blog", name, "paastech")
    assert docker_key("paastech.blog.data.abc123") == "abc123"
