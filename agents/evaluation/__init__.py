"""The evaluation behind ``tdwgym eval`` (:mod:`tdwgym.agents.evaluate` is its front): :mod:`.plan` (config,
loading, episodes, the numbered plan), one module per report section (:mod:`.prediction`, :mod:`.voe`,
:mod:`.probes`, :mod:`.exploration`; each has ``run_section_episode(plan, episode)`` and ``summary(plan, done)``)
and :mod:`.report` (the files)."""
