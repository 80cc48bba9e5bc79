"""Floor 0 of the house: helpers every other floor may use (files, processes, error types); imports nothing of
tdwgym."""
