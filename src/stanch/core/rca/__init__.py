"""Root-cause analysis: ranked suspects, each with the evidence that put it there."""

from stanch.core.rca.suspects import Suspect, rank_changes, rank_dimensions, rank_suspects

__all__ = ["Suspect", "rank_changes", "rank_dimensions", "rank_suspects"]
