"""``python -m phone_core.api``: serve the API with settings from the environment."""

from __future__ import annotations

from phone_core.api.app import serve
from phone_core.settings import get_settings

if __name__ == "__main__":
    serve(get_settings())
