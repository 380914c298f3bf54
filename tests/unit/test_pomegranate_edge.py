"""The gRPC edge between the API and Pomegranate: the API's dataclasses become the protobuf
messages Pomegranate reads (rpc/pomegranate_client.py), and Pomegranate refuses an incomplete
spec instead of filling in defaults (pomegranate/convert.py): spec.py is their one home."""

from __future__ import annotations

import dataclasses

import pytest

from backend.pomegranate import convert
from backend.rpc import pomegranate_client as edge
from backend.rpc import pomegranate_pb2 as pb
from backend.rpc import pomegranate_types as pt
from backend.settings import Settings

SETTINGS = Settings(secret_key="unit")

SPEC = pt.ReleaseSpec(
    project="blog",
    application=4,
    image="registry/blog@sha256:abc",
    processes=(pt.ProcessSpec("web", "", 2), pt.ProcessSpec("worker", "python w.py", 0)),
    env={"A": "1"},
    port=8000,
    hostnames=("blog.localhost",),
    memory_mb=512,
    cpu=1.5,
    health_path="/health",
    health_timeout=30.0,
    hsts_seconds=300,
    volumes=(pt.VolumeMount("data", "abc123", "/data", ("web",)),),
)


def test_a_spec_crosses_the_edge_unchanged() -> None:
    plan = convert.release_plan(edge._release_spec(SPEC), SETTINGS)
    assert (plan.project, plan.application, plan.image) == ("blog", 4, SPEC.image)
    assert [(p.type, p.command, p.replicas) for p in plan.processes] == [
        ("web", None, 2),
        ("worker", "python w.py", 0),
    ]
    assert (plan.port, plan.memory_mb, plan.cpu) == (8000, 512, 1.5)
    assert (plan.health_path, plan.health_timeout, plan.hsts_seconds) == ("/health", 30.0, 300)
    assert plan.env == {"A": "1"} and plan.hostnames == ["blog.localhost"]
    assert [(v.name, v.path) for v in plan.volumes] == [("data", "/data")]


@pytest.mark.parametrize(
    "missing",
    [{"port": 0}, {"memory_mb": 0}, {"cpu": 0.0}, {"health_timeout": 0.0}, {"hostnames": ()}],
    ids=lambda m: next(iter(m)),
)
def test_pomegranate_refuses_a_zero_value_instead_of_defaulting_it(missing: dict) -> None:
    with pytest.raises(convert.BadRequest):
        convert.release_plan(edge._release_spec(dataclasses.replace(SPEC, **missing)), SETTINGS)


def test_a_desired_project_without_a_live_release_has_none() -> None:
    message = pb.DesiredProject(project="blog", in_flight=[3], live=None)
    assert not message.HasField("live")
    (desired,) = convert.desired_state(pb.DesiredState(projects=[message]), SETTINGS)
    assert desired.live is None and desired.in_flight == {3}


def test_one_off_messages_both_ways() -> None:
    start = pt.RunStart(SPEC, ["ls", "-l"], tty=True, detach=False, timeout_seconds=60)
    message = edge._run_start(start)
    assert list(message.command) == ["ls", "-l"] and not message.HasField("size")
    sized = edge._run_start(dataclasses.replace(start, size=pt.TerminalSize(24, 80)))
    assert (sized.size.rows, sized.size.cols) == (24, 80)
    assert edge._run_input(pt.RunInput(stdin=b"x")).stdin == b"x"
    assert edge._run_input(pt.RunInput(stdin_closed=True)).stdin_closed
    assert edge._run_input(pt.RunInput(resize=pt.TerminalSize(2, 3))).resize.cols == 3
    assert edge._run_output(pb.RunOutput(stdout=b"hi")) == pt.RunOutput("stdout", data=b"hi")
    exit_event = edge._run_output(pb.RunOutput(exit=pb.RunExit(code=3, reason="")))
    assert (exit_event.kind, exit_event.exit_code) == ("exit", 3)
    failed = edge._run_output(pb.RunOutput(failure=pb.Failure(reason="no image")))
    assert (failed.kind, failed.reason) == ("failure", "no image")
    assert edge._run_output(pb.RunOutput()).kind == "failure"  # nothing set: a failure
