"""The Shoal agent and CLI: composition root (main), lifecycle (agent), HTTP API, CLI and the lab."""
