"""How long a fleet camera goes unanalysed when its worker dies or leaves (issue 19).

Real processes on the local broker (Tansu): two ``argus worker``s share ``2 x N`` cameras
(one busy, the rest quiet, pre-encoded H.264 played live), each running N.  A trial stops
one worker — SIGKILL (the group notices after the session timeout) or SIGTERM (it stops
its cameras, closes their events and leaves at once; a leader hands them over in a round
first, and its times are also given apart) — and measures, for each of its
cameras, the time from the signal to the first frame analysed by the other worker (its
log's "camera streaming" line).  A fresh worker then takes the dead one's place (the
cameras are shared out again) and the next trial stops the other one.

    .venv/bin/python -m benchmarks.fleet_failover                  # N = 1, 3, 6; 3 trials each
    .venv/bin/python -m benchmarks.fleet_failover --per-worker 2 --trials 2 --out f.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from argus.bench import machine_description
from benchmarks.fleet_harness import Fleet, make_videos, site, wait_for
from tests.infra import make_localstack

SESSION_TIMEOUT_S = 6.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def balanced(fleet: Fleet, names: list[str], per_worker: int) -> bool:
    placed = fleet.placement()
    counts = {n: 0 for n in names}
    for owners in placed.values():
        if len(owners) != 1:
            return False
        counts[owners[0]] = counts.get(owners[0], 0) + 1
    return all(counts[n] == per_worker for n in names)


def trial(fleet: Fleet, victim: str, survivor: str, sig: int) -> tuple[list[float], bool]:
    """Stop ``victim`` with ``sig``; seconds until each of its cameras' first frame on
    ``survivor``, and whether the victim led the group (a leader hands its cameras over in
    a round of its own before it goes)."""
    led = leads(fleet, victim)
    cameras = sorted(fleet.workers[victim].cameras())
    sent = fleet.kill(victim, sig)
    first: dict[str, float] = {}

    def all_moved() -> bool:
        for camera_id in cameras:
            if camera_id not in first:
                t = fleet.first_frame_at(survivor, camera_id, sent)
                if t is not None:
                    first[camera_id] = t
        return len(first) == len(cameras)

    wait_for(f"{victim}'s cameras analysed on {survivor}", all_moved, timeout_s=90, step_s=0.2)
    return [first[c] - sent for c in cameras], led


def leads(fleet: Fleet, name: str) -> bool:
    """Whether worker ``name`` led the group's last round."""
    doc = fleet.workers[name].readyz() or {}
    return bool((doc.get("group") or {}).get("leader"))


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 2),
        "max_s": round(ordered[-1], 2),
        "min_s": round(ordered[0], 2),
    }


def settle(fleet: Fleet, names: list[str], n: int) -> None:
    """Wait until ``names`` run ``n`` cameras each."""
    wait_for("the cameras shared out", lambda: balanced(fleet, names, n), 120)


def measure(fleet: Fleet, busy: Path, quiet: Path, n: int, trials: int) -> dict[str, Any]:
    """``trials`` SIGKILLs and SIGTERMs with ``n`` cameras per worker."""
    published = fleet.publish(site(busy, quiet, n_busy=1, n_quiet=2 * n - 1))
    if published.returncode != 0:
        raise RuntimeError(published.stderr[-2000:])
    names = ["w0", "w1"]
    for name in names:
        fleet.start(name, 2 * n)
    settle(fleet, names, n)
    kill: list[float] = []
    term: list[float] = []
    term_by_role: dict[str, list[float]] = {"leader": [], "follower": []}
    serial = 2
    for i in range(trials):
        for sig, out in ((signal.SIGKILL, kill), (signal.SIGTERM, term)):
            victim, survivor = names
            if sig == signal.SIGTERM and leads(fleet, victim) != (i % 2 == 0):
                victim, survivor = survivor, victim  # SIGTERM the leader, then a follower
            took, led = trial(fleet, victim, survivor, sig)
            out.extend(took)
            if sig == signal.SIGTERM:
                term_by_role["leader" if led else "follower"].extend(took)
            log(
                f"{n} per worker, {signal.Signals(sig).name} "
                f"({'leader' if led else 'follower'}): "
                + ", ".join(f"{x:.1f}" for x in took)
                + " s"
            )
            fresh = f"w{serial}"
            serial += 1
            fleet.start(fresh, 2 * n)
            names = [survivor, fresh]
            settle(fleet, names, n)
    fleet.stop_all()
    return {
        "cameras_per_worker": n,
        "trials": trials,
        "sigkill": summary(kill),
        "sigterm": summary(term),
        "sigterm_by_role": {role: summary(v) for role, v in term_by_role.items() if v},
        "sigkill_all_s": [round(x, 2) for x in kill],
        "sigterm_all_s": [round(x, 2) for x in term],
    }


def run(per_worker: list[int], trials: int, folder: Path) -> dict[str, Any]:
    stack = make_localstack(folder / "stack")
    stack.up()
    results: dict[str, Any] = {
        "machine": machine_description(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "session_timeout_s": SESSION_TIMEOUT_S,
        "runs": [],
    }
    try:
        busy, quiet = make_videos(folder / "videos", seconds=20)
        for n in per_worker:
            fleet = Fleet(stack, folder / f"fleet-{n}", topic_prefix=f"argus.bench-{n}")
            fleet.session_timeout_s = SESSION_TIMEOUT_S
            results["runs"].append(measure(fleet, busy, quiet, n, trials))
    finally:
        stack.stop()
    results["load_average_at_end"] = list(os.getloadavg())
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--per-worker", type=int, nargs="+", default=[1, 3, 6])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--out", help="write the results (JSON) here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        results = run(args.per_worker, args.trials, Path(tmp))
    for r in results["runs"]:
        log(
            f"{r['cameras_per_worker']} cameras per worker: SIGKILL p50 {r['sigkill']['p50_s']} s"
            f" max {r['sigkill']['max_s']} s; SIGTERM p50 {r['sigterm']['p50_s']} s"
            f" max {r['sigterm']['max_s']} s"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
