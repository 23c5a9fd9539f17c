"""Process figures from /proc (psutil is not installed) and summary statistics."""

from __future__ import annotations

import os
import resource
import time
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (clock-tick resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def tcp_queues(local_port: int, remote_port: int) -> dict[str, int] | None:
    """Bytes the kernel holds for one loopback TCP socket (/proc/net/tcp): its send queue
    (written, not yet acknowledged by the peer) and its receive queue (not yet read)."""
    local, remote = f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                tx, rx = fields[4].split(":")
                return {"send_queue": int(tx, 16), "recv_queue": int(rx, 16)}
    return None


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1]


class Meter:
    """Wall time and CPU time of this process and of one server over the measured spans."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = self.own = self.server = 0.0
        self._start: tuple[float, float, float] | None = None

    def __enter__(self) -> Meter:
        self._start = (time.monotonic(), time.process_time(), cpu_seconds(self.pid))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        wall, own, server = self._start
        self.wall += time.monotonic() - wall
        self.own += time.process_time() - own
        self.server += cpu_seconds(self.pid) - server

    def summary(self) -> dict[str, Any]:
        """Seconds, and each process's CPU as a share of one core over the wall time."""
        wall = self.wall or 1e-9
        return {
            "wall_s": round(self.wall, 3),
            "loadgen_cpu_s": round(self.own, 3),
            "server_cpu_s": round(self.server, 3),
            "loadgen_util": round(self.own / wall, 3),
            "server_util": round(self.server / wall, 3),
        }


def raise_open_files(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` (the hard limit too when allowed); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):  # not root: stay under the hard limit
            pass
    soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft
