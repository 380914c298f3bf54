"""Issue 11, the pure parts: fair build slots, the runtime log rate, the user a container runs
as, and the collision-free names."""

from __future__ import annotations

import asyncio

import pytest

from backend import labels as L
from backend.pomegranate.docker_runtime import run_as_user
from backend.services.build_slots import FairSlots
from backend.services.quotas import LogRate, refusal_message

FALLBACK = "10001:10001"


@pytest.mark.parametrize(
    ("image_user", "runs_as"),
    [
        ("", FALLBACK),  # no USER in the Dockerfile
        ("root", FALLBACK),
        ("0", FALLBACK),
        ("0:0", FALLBACK),
        ("1000:0", FALLBACK),  # root's group
        ("node", FALLBACK),  # a name: the tenant's /etc/passwd could map it to 0
        ("toor:1000", FALLBACK),
        ("1000", "1000"),
        ("1000:1000", "1000:1000"),
        (" 65534:65534 ", "65534:65534"),
    ],
)
def test_run_as_user(image_user: str, runs_as: str):
    assert run_as_user(image_user, FALLBACK) == runs_as


def test_names_cannot_collide_across_projects():
    # With "-" as separator these two were the same name (the example).
    attacker = L.container_name("blog", 7, "prod-1-web", 1, instance="paastech")
    victim = L.container_name("blog-7-prod", 1, "web", 1, instance="paastech")
    assert L.legacy_container_name("blog", 7, "prod-1-web", 1) == L.legacy_container_name(
        "blog-7-prod", 1, "web", 1
    )
    assert attacker != victim
    assert victim == "paastech.blog-7-prod.1.web.1"
    # Two installations on one engine: neither the containers nor the networks clash.
    assert L.container_name("blog", 1, "web", 1, instance="a") != L.container_name(
        "blog", 1, "web", 1, instance="b"
    )
    assert L.network_name("blog", instance="a") != L.network_name("blog", instance="b")


async def _hold(slots: FairSlots, client: int, label: str, order: list[str], gate: asyncio.Event):
    async with slots.turn(client):
        order.append(label)
        await gate.wait()


async def test_fair_slots_round_robin_under_a_flood():
    slots = FairSlots(1)
    order: list[str] = []
    gates = {}
    tasks = []
    # Client A queues five builds (one holds the slot), then client B pushes once.
    for i in range(5):
        gates[f"a{i}"] = asyncio.Event()
        tasks.append(asyncio.create_task(_hold(slots, 1, f"a{i}", order, gates[f"a{i}"])))
        await asyncio.sleep(0)
    gates["b0"] = asyncio.Event()
    tasks.append(asyncio.create_task(_hold(slots, 2, "b0", order, gates["b0"])))
    await asyncio.sleep(0)
    assert order == ["a0"] and slots.waiting == 5 and slots.busy()
    # Each finished build hands the slot on; B goes right after the build that was running.
    async with asyncio.timeout(5):
        for label in ["a0", "b0", "a1", "a2", "a3", "a4"]:
            while order[-1] != label:
                await asyncio.sleep(0)
            gates[label].set()
    await asyncio.gather(*tasks)
    assert order == ["a0", "b0", "a1", "a2", "a3", "a4"]
    assert slots.free == 1 and not slots.busy()


async def test_fair_slots_alternate_between_two_flooding_clients_and_survive_cancels():
    slots = FairSlots(2)
    order: list[str] = []
    gate = asyncio.Event()
    tasks = {}
    for label, client in [("a0", 1), ("a1", 1), ("a2", 1), ("a3", 1), ("b0", 2), ("b1", 2)]:
        tasks[label] = asyncio.create_task(_hold(slots, client, label, order, gate))
        await asyncio.sleep(0)
    assert order == ["a0", "a1"]  # two free slots, first come
    tasks["a2"].cancel()  # a queued build replaced by a newer push
    with pytest.raises(asyncio.CancelledError):
        await tasks["a2"]
    gate.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*(t for label, t in tasks.items() if label != "a2"))
    # B was never served: it goes first; then A and B alternate.
    assert order == ["a0", "a1", "b0", "a3", "b1"]
    assert slots.free == 2 and slots.waiting == 0


def test_log_rate_drops_beyond_the_limit_and_says_so_once_per_second():
    now = [100.0]
    rate = LogRate(3, clock=lambda: now[0])
    assert [rate.admit() for _ in range(6)] == ["pass", "pass", "pass", "notice", "drop", "drop"]
    assert "runtime_log_lines_per_second" in rate.notice() and "limit 3 " in rate.notice()
    now[0] = 101.2  # the next second: a fresh window
    assert [rate.admit() for _ in range(4)] == ["pass", "pass", "pass", "notice"]


def test_refusal_message_names_quota_limit_and_usage():
    assert refusal_message("replicas", 10, 8, 12) == (
        "quota replicas exceeded: limit 10, in use 8, this would make 12"
    )
    assert refusal_message("cpu", 16, 15.5) == "quota cpu exceeded: limit 16, in use 15.5"
