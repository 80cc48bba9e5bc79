"""Floor 4 of the house: the tools that use the envs (labeled datasets, video, recording, built-in policies, the
lockstep vector env, Ray for datasets, throughput benchmarks, keyboard play). Nothing here imports
``tdwgym.agents`` or ``tdwgym.commands``."""
