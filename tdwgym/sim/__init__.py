"""Floors 1 and 2 of the house, the simulation: the scene description (:mod:`.scene`, :mod:`.geometry`,
:mod:`.patterns`) and the simulator adapters behind one interface (:mod:`.backends`). Nothing here imports
Gymnasium or torch."""
