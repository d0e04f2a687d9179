"""Persistence: SQLAlchemy models, Alembic migrations, and :class:`Store`, the repository port.

Everything else in Stanch reaches the database through :class:`Store`, in domain objects.
"""

from stanch.store.control import StoredToken
from stanch.store.decisions import Decision, DecisionKind
from stanch.store.repository import Store

__all__ = ["Decision", "DecisionKind", "Store", "StoredToken"]
