"""Pomegranate, the deployment manager: builds source trees into images and runs them as containers.

Modules: ``procfile`` (Procfile parsing), ``buildpacks`` (stack detection and Dockerfile
generation), ``runtime`` (the Runtime protocol and its data types), ``docker_runtime`` (the Docker
Engine implementation on aiodocker) over ``networks``, ``volumes``, ``images`` and ``containers``
(the engine objects it manages, each in its own module), ``swarm_runtime`` (the Swarm one).
"""
