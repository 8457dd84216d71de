"""The HTTP API: the batch engine for programs, with the reference's paths and shapes.

``phone_core.api.app`` builds the FastAPI app (``create_app``) and serves it (``serve``).
"""
