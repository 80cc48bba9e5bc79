"""tdwgym.agents: world models, curiosity rewards and training (needs the ``agents`` extra)."""

from tdwgym.agents import memory as _memory  # noqa: F401 - registers the world models with memory
