"""``stanch serve``: the control plane, a FastAPI application around the engine.

Build it with :meth:`ServerContext.open` (store, runbook, engine from :class:`Settings`) and
:func:`create_app`; ``stanch serve`` does both and runs uvicorn.
"""

from stanch.server.app import API_PREFIX, create_app
from stanch.server.context import ServerContext
from stanch.server.settings import Settings

__all__ = ["API_PREFIX", "ServerContext", "Settings", "create_app"]
