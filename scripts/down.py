"""`make down`: stop exactly the processes `make up` started, by PID (and start time), nothing else.

Airflow components were started as leaders of their own process groups, so their task supervisors and
workers go with them; the emulator and moto are single processes. A PID whose start time differs from
the recorded one belongs to someone else now and is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".airflow" / "up"
GRACE_SECONDS = 20


def alive(process: dict[str, Any]) -> bool:
    """The recorded process is still running and is still the one we started (same start time)."""
    import psutil

    try:
        proc = psutil.Process(process["pid"])
        return abs(proc.create_time() - process["create_time"]) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(process: dict[str, Any], signum: int) -> None:
    try:
        if process["group"]:
            os.killpg(process["pid"], signum)
        else:
            os.kill(process["pid"], signum)
    except (ProcessLookupError, PermissionError):
        pass


def stop_recorded(processes: Iterable[dict[str, Any]]) -> list[str]:
    """SIGTERM each recorded process (group) that is still ours, SIGKILL what is left after a grace period."""
    ours = [p for p in processes if alive(p)]
    for process in reversed(ours):  # Airflow first, then moto and the emulator it talks to
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(alive(p) for p in ours):
        time.sleep(0.2)
    for process in ours:
        if alive(process):
            _signal(process, signal.SIGKILL)
        elif process["group"]:
            _signal(process, signal.SIGKILL)  # a task supervisor may outlive its group leader
    for process in processes:
        if process.get("workdir") and not alive(process):  # the emulator's and moto's scratch folders
            shutil.rmtree(process["workdir"], ignore_errors=True)
    return [p["name"] for p in ours]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_DIR, help="the state folder `make up` used")
    args = parser.parse_args(argv)
    state_file = args.state_dir / "state.json"
    if not state_file.exists():
        print("No stack started by `make up` is recorded; nothing to stop.")
        return 0
    state = json.loads(state_file.read_text())
    stopped = stop_recorded(state["processes"])
    state_file.unlink(missing_ok=True)
    if state.get("up_env"):
        Path(state["up_env"]).unlink(missing_ok=True)
    print(f"Stopped: {', '.join(stopped) if stopped else 'nothing was running any more'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
