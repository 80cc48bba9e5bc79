"""tdwgym.agents: world models, curiosity rewards and training (needs the ``agents`` extra)."""
