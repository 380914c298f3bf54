"""The Docker Engine access layer, shared by Pomegranate (docker_runtime.py, swarm_runtime.py,
addons.py, networks.py, volumes.py) and the embedded ingress (discovery.py): event streams
(events.py), inspect and listings (inspect.py), log lines (logs.py) and the readiness probe with
its one rule (health.py). Everything goes through aiodocker's public API; engine.py is the one
small helper for what aiodocker lacks (including the Swarm's service update and task logs).
"""
