"""Floor 6 of the house: every ``tdwgym`` command, one module each, and the command-line machinery they share.

A command module ``tdwgym.commands.NAME`` has ``add_parser(subparsers)``, which adds its sub-parser (options from its
config dataclass, :func:`~tdwgym.commands.config_options.add_config_arguments`) and sets ``func`` to its ``run(args)``,
``HELP``, its line in ``tdwgym --help``, and ``EXTRA``, the pip extra it needs beyond core's (None for none). Each
imports its heavy dependencies inside its functions, and only the command being run builds its options, so
``tdwgym --help`` imports neither torch nor stable-baselines3, and an agents command without the ``agents`` extra
fails with one line naming ``pip install 'tdwgym[agents]'``.

The shared machinery: :mod:`.values` (argparse value types), :mod:`.config_options` (options from a config
dataclass), :mod:`.door` (one-line errors, the env check at the door) and
:mod:`.ray_option` (``--ray``). Library code never imports from here (it is the top floor).
"""

COMMANDS: tuple[str, ...] = (
    "demo",
    "train",
    "compare",
    "audit",
    "eval",
    "pretrain",
    "record",
    "play",
    "dataset",
    "bench",
)
"""The commands, in the order ``tdwgym --help`` lists them: ``tdwgym.commands.<name>`` for each. One line adds one."""

EXTRA_MODULES: dict[str, tuple[str, ...]] = {"agents": ("torch", "stable_baselines3")}
"""pip extra -> the packages whose absence ``tdwgym --help`` reports beside the commands that need it."""
