"""Container runtimes: the protocol (base), podman (podman-py) and an in-memory fake."""
