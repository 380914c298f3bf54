"""The embedded ingress: a reverse proxy for machines without Traefik.

It reads the same container labels Traefik reads (backend.labels) through the Docker API and
Docker events (discovery.py), keeps a hostname -> replicas table (routes.py) and proxies HTTP/1.1
and websockets to the replicas' ports published on 127.0.0.1 (proxy.py). Run it with
``python -m backend ingress``; server.py wires the parts together.
"""
