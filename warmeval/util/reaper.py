"""A watchdog that stops a whole process group when the process that started it dies, by any means, SIGKILL included.

A server that warmeval starts (``vllm serve``) runs in a session and process group of its own, so the terminal's
Ctrl-C does not reach it half-stopped and warmeval can stop all of it by process group. The kernel's parent-death
signal (``PR_SET_PDEATHSIG``) reaches only the direct child, and vLLM's API server, once it has spawned its engine
core and workers, does not always pass a SIGTERM on to them. So warmeval also starts this watchdog, in a session of
its own, which waits for warmeval's exit (a ``pidfd`` where Linux has one, else polling) and then sends SIGTERM to
the server's process group, and SIGKILL to what is left after ``--grace`` seconds. It exits by itself once the group
is gone (warmeval stopped the server as usual).

    python -m warmeval.util.reaper --watch PID --group PGID [--grace SECONDS]
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import time


def group_alive(group: int) -> bool:
    """Whether any process of the group is left."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a group of another user: it exists
        return True
    return True


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True


def stop_group(group: int, grace: float) -> None:
    """SIGTERM to the group, then SIGKILL to whatever is left after ``grace`` seconds."""
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(group):
            return
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def watch(pid: int, group: int, grace: float, poll: float = 0.5) -> None:
    """Return when the group is gone; stop it first if ``pid`` dies while it is still there."""
    handle = None
    try:
        handle = os.pidfd_open(pid)  # readable once the process has exited
    except (AttributeError, OSError):
        handle = None
    try:
        while group_alive(group):
            if handle is not None:
                ready, _, _ = select.select([handle], [], [], poll)
                dead = bool(ready)
            else:
                dead = not process_alive(pid)
                if not dead:
                    time.sleep(poll)
            if dead:
                stop_group(group, grace)
                return
    finally:
        if handle is not None:
            os.close(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stop a process group when a process dies.")
    parser.add_argument("--watch", type=int, required=True, help="The process whose death stops the group.")
    parser.add_argument("--group", type=int, required=True, help="The process group to stop.")
    parser.add_argument("--grace", type=float, default=5.0, help="Seconds between SIGTERM and SIGKILL.")
    args = parser.parse_args(argv)
    # Ctrl-C in the terminal is warmeval's to handle; this watchdog ends with the group or after stopping it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(args.watch, args.group, args.grace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
