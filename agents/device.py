"""Device and thread settings shared by the agents package (torch only)."""

from __future__ import annotations

import os

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device spec into a ``torch.device``.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), or anything ``torch.device`` accepts.

    Returns:
        The resolved device.

    Raises:
        ValueError: ``"cuda"`` (or ``"cuda:N"``) when CUDA is not available: asking for a GPU and silently getting
            the CPU would hide a broken set-up. ``"auto"`` picks the CPU then.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available; use 'auto' or 'cpu'")
    return resolved


def configure_torch_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count sensibly for small machines.

    Torch's default (one thread per core) oversubscribes the CPU once subprocess environments run beside the
    learner, and OpenMP threads that spin while the cores are busy make small models many times slower. The
    default therefore leaves half of the cores to the environments: ``min(4, max(1, cores // 2))``, i.e. one
    thread on a 2-core machine.

    Args:
        num_threads: Threads to use; ``None`` picks ``min(4, max(1, os.cpu_count() // 2))``.

    Returns:
        The thread count now in effect.
    """
    if num_threads is None:
        num_threads = min(4, max(1, (os.cpu_count() or 1) // 2))
    torch.set_num_threads(int(num_threads))
    return torch.get_num_threads()


def check_device(device: str, prog: str = "tdwgym") -> torch.device:
    """The door check of ``--device``: ``cuda`` without CUDA or an unknown device is a one-line user error;
    ``auto`` says on stderr what it chose.

    Raises:
        tdwgym.util.errors.UsageError: The device is unknown or not available.
    """
    import sys

    from tdwgym.util.errors import UsageError

    try:
        resolved = resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        if "CUDA" in str(exc):
            raise UsageError(
                f"--device {device}: CUDA is not available here; valid devices here are auto, cpu"
            ) from None
        raise UsageError(f"--device {device}: unknown device; valid devices are auto, cpu, cuda, cuda:N") from None
    if device == "auto":
        why = "" if resolved.type == "cuda" else " (CUDA is not available)"
        print(f"{prog}: --device auto chose {resolved}{why}", file=sys.stderr)
    return resolved
