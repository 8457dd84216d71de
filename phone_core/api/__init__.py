"""The HTTP API: the batch engine for programs, with the reference's paths and shapes."""

from __future__ import annotations

from phone_core.api.app import create_app, serve

__all__ = ["create_app", "serve"]
