"""HTTP service for frozen Gaussianization-flow probes (FastAPI, run by uvicorn)."""

from service._app import create_app
from service._settings import Settings

__all__ = ["Settings", "create_app"]
