"""The TDW backend's connection: its settings from the environment, importing ``tdw``, binding the
controller's socket, launching the build or waiting for one, and one frame of commands out and its output in
(:class:`TDWConnection`, a part of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend`)."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tdwgym.sim.backends.base import BackendError

logger = logging.getLogger("tdwgym.sim.backends.tdw")

PORT_ENV_VAR = "TDWGYM_TDW_PORT"
"""Port of the controller's socket (default 1071)."""


LAUNCH_ENV_VAR = "TDWGYM_TDW_LAUNCH"
"""``0``/``false`` to connect to a build you started yourself instead of launching one."""


BUILD_ENV_VAR = "TDWGYM_TDW_BUILD"
"""Path of a TDW build executable to launch (instead of TDW's own downloaded build)."""


TIMEOUT_ENV_VAR = "TDWGYM_TDW_TIMEOUT"
"""Seconds to wait for the build to connect (default 60)."""


LOG_ENV_VAR = "TDWGYM_TDW_LOG"
"""``1`` to keep a log of the commands of every frame, or a file path to also append it there as JSON lines."""


DEFAULT_PORT = 1071


DEFAULT_CONNECT_TIMEOUT = 60.0


DEFAULT_RESPONSE_TIMEOUT = 300.0


_INSTALL_HINT = "the ThreeDWorld backend needs the tdw extra: pip install 'tdwgym[tdw]'"


class TDWConnectionError(BackendError):
    """No TDW build connected to the controller in time, or the build stopped answering."""


def ensure_imp_module() -> None:
    """Give ``tdw``'s bundled FlatBuffers runtime the ``imp.find_module`` it imports (``imp`` left Python 3.12).

    ``tdw/flatbuffers/compat.py`` does ``import imp`` only to ask ``imp.find_module("numpy")``. On Python 3.12+
    this installs a stand-in module named ``imp`` with just that function; it does nothing where ``imp`` exists.
    """
    if sys.version_info < (3, 12) or "imp" in sys.modules:
        return
    import importlib.util
    import types

    def find_module(name: str, path: Any = None) -> tuple[None, str | None, tuple[str, str, int]]:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ImportError(f"No module named {name!r}")
        return None, spec.origin, ("", "", 0)

    shim = types.ModuleType("imp", "tdwgym stand-in for the removed imp module (find_module only), for tdw")
    shim.find_module = find_module  # type: ignore[attr-defined]
    sys.modules["imp"] = shim


def _check_port(value: Any, name: str) -> int:
    """A TCP port: an int in 1..65535 (0: pick a free one, for a build this backend launches)."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a port number in 1..65535 (0: pick a free one), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 65535:
        raise ValueError(f"{name} must be a port number in 1..65535 (0: pick a free one), got {value!r}")
    return int(value)


def _check_seconds(value: Any, name: str) -> float:
    """A duration: a finite number of seconds > 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return seconds


def _import_tdw() -> dict[str, Any]:
    """Import the parts of ``tdw`` this backend uses, or raise ImportError with the pip command."""
    ensure_imp_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            import zmq
            from tdw import output_data
            from tdw.controller import Controller
            from tdw.librarian import ModelLibrarian
            from tdw.tdw_utils import TDWUtils
            from tdw.version import __version__ as tdw_version
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return {
        "zmq": zmq,
        "output_data": output_data,
        "Controller": Controller,
        "ModelLibrarian": ModelLibrarian,
        "TDWUtils": TDWUtils,
        "version": tdw_version,
    }


def _env_flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


class TDWConnection:
    """The connection half of :class:`~tdwgym.sim.backends.tdw.backend.TDWBackend` (its methods use the
    backend's attributes, set in its ``__init__``)."""

    # -- connection --------------------------------------------------------------------------------------------
    def _connect(self, check_version: bool, build_args: list[str]) -> None:
        zmq = self._tdw["zmq"]
        controller_cls = self._tdw["Controller"]
        executable: Path | None = None
        if self.build_path is not None:
            executable = self.build_path
            if not executable.exists():
                raise TDWConnectionError(f"TDW build not found at {executable} (build_path / ${BUILD_ENV_VAR})")
        elif self.launch_build:
            from tdw.backend.paths import BUILD_PATH
            from tdw.backend.update import Update

            if check_version:
                try:
                    found = Update.check_for_update(download_build=True)
                except OSError as exc:  # requests' errors are OSErrors: no network, DNS, a proxy, a timeout
                    reason = (str(exc).strip().splitlines() or [""])[0][:120]
                    raise TDWConnectionError(
                        f"cannot download TDW's build: no network ({type(exc).__name__}: {reason}). Offline: copy "
                        "a TDW build from a machine with a network (the release of your tdw version on "
                        f"github.com/threedworld-mit/tdw) and set ${BUILD_ENV_VAR} to its executable (build_path=), "
                        "or use the embedded simulator (backend 'bullet', the default)"
                    ) from None
                if not found:
                    raise TDWConnectionError(
                        "TDW could not download or find its build; check internet access to github.com, or pass "
                        f"build_path= / set ${BUILD_ENV_VAR}, or start a build yourself and pass launch_build=False"
                    )
            executable = Path(BUILD_PATH)
            if not executable.exists():
                raise TDWConnectionError(
                    f"TDW build not found at {executable}; run once with check_version=True "
                    f"(downloads it) or pass build_path= / set ${BUILD_ENV_VAR}"
                )

        self._context = zmq.Context()
        socket = self._context.socket(zmq.REP)
        socket.setsockopt(zmq.LINGER, 0)
        try:
            if self.port == 0:
                self.port = socket.bind_to_random_port("tcp://*")
            else:
                socket.bind(f"tcp://*:{self.port}")
        except zmq.ZMQError as exc:
            socket.close(0)
            self._context.term()
            self._context = None
            raise TDWConnectionError(
                f"cannot bind the TDW controller to port {self.port} ({exc}); is another "
                f"controller or env using it? Pick another port (port= / ${PORT_ENV_VAR})"
            ) from exc
        if executable is not None:
            cmd = [str(executable), f"-port {self.port}", *build_args]
            logger.info("launching TDW build: %s", cmd)
            try:
                self._process = subprocess.Popen(cmd)
            except OSError as exc:
                self._free_socket(socket)
                raise TDWConnectionError(f"cannot launch the TDW build {executable}: {exc}") from exc

        deadline = time.monotonic() + self.connect_timeout
        connected = False
        while not connected:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            connected = bool(socket.poll(timeout=max(1, int(min(left, 0.25) * 1000))))
            if not connected and self._process is not None and self._process.poll() is not None:
                break
        if not connected:
            exited = self._process is not None and self._process.poll() is not None
            self._free_socket(socket)
            self._stop_process(wait=0.0)
            what = (
                f"the TDW build {executable} exited with code {self._process_rc}"
                if exited
                else f"no TDW build connected to port {self.port} within {self.connect_timeout:g} s"
            )
            raise TDWConnectionError(
                f"{what}. Check that: the build runs (build_path / ${BUILD_ENV_VAR}; its log is "
                "~/.config/unity3d/MIT/TDW/Player.log on Linux); it has a display (DISPLAY is "
                f"{os.environ.get('DISPLAY', 'unset')!r}: on a headless server start an X server, e.g. Xvfb or "
                f"X with the GPU); it was started with -port {self.port} if you launch it yourself "
                f"(launch_build=False / ${LAUNCH_ENV_VAR}=0); nothing else uses port {self.port} (port= / "
                f"${PORT_ENV_VAR}); a first run may need longer to download (connect_timeout= / ${TIMEOUT_ENV_VAR})"
            )
        socket.recv()  # the build's hello
        socket.setsockopt(zmq.RCVTIMEO, max(1, int(self.response_timeout * 1000)))

        controller = controller_cls.__new__(controller_cls)  # TDW's communicate(), without its blocking __init__
        controller.add_ons = []
        controller.socket = socket
        controller._is_standalone = True
        controller._tdw_version = ""
        controller._unity_version = ""
        self._controller = controller
        resp = self._communicate(
            [
                {"$type": "set_error_handling"},
                {"$type": "send_version"},
                {"$type": "load_scene", "scene_name": "ProcGenScene"},
            ],
            kind="connect",
        )
        for r in resp[:-1]:
            if r[4:8] == b"vers":
                try:
                    v = self._tdw["output_data"].Version(r)
                    self._build_version, self._unity_version = v.get_tdw_version(), v.get_unity_version()
                except Exception:  # noqa: BLE001 - the version is informational only
                    pass
        self._room_key = None
        self._avatar_ready = False
        self._quad_ids, self._pattern_key = [], None
        self._ceiling = False

    def _free_socket(self, socket: Any) -> None:
        socket.close(0)
        if self._context is not None:
            self._context.term()
            self._context = None

    def _stop_process(self, wait: float = 5.0) -> None:
        """Wait up to ``wait`` seconds for a launched build to exit, then terminate (and at last kill) it."""
        proc = self._process
        if proc is None:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._process_rc = proc.returncode

    @property
    def controller(self) -> Any:
        """The ``tdw`` controller (raises if closed)."""
        if self._controller is None:
            raise BackendError("the TDW backend is closed")
        return self._controller

    def _communicate(self, commands: list[dict[str, Any]], kind: str) -> list[bytes]:
        controller = self.controller
        if self.log_commands:
            entry = {"frame": self._frame + 1, "kind": kind, "commands": commands}
            self.command_log.append(entry)
            logger.debug("TDW frame %d (%s): %s", self._frame + 1, kind, json.dumps(commands))
            if self._log_path is not None:
                with self._log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")
        try:
            resp = controller.communicate(commands)
        except self._tdw["zmq"].Again as exc:
            self._abandon()
            raise TDWConnectionError(
                f"the TDW build did not answer within {self.response_timeout:g} s (response_timeout); it may have "
                "crashed or lost its display: see ~/.config/unity3d/MIT/TDW/Player.log"
            ) from exc
        if not resp:
            raise TDWConnectionError("the TDW build sent an empty reply")
        self._frame = int.from_bytes(resp[-1], byteorder="big")
        for r in resp[:-1]:
            if r[4:8] == b"quit":
                self._abandon()
                raise TDWConnectionError("the TDW build quit; see ~/.config/unity3d/MIT/TDW/Player.log")
        return resp

    def _abandon(self) -> None:
        """Drop a connection that can no longer be used (its REQ/REP state is broken)."""
        if self._controller is not None:
            self._free_socket(self._controller.socket)
            self._controller = None
        self._stop_process(wait=0.0)
        self._scene = None
