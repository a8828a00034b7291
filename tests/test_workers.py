"""The test workers' CPU shares (tests/conftest.py): each pytest-xdist worker keeps to its own cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PINNED_CPUS, REPO, cpu_share, pin_worker_cpus


def test_cpu_share_splits_the_cpus_into_contiguous_shares() -> None:
    assert [cpu_share([0, 1], i, 2) for i in range(2)] == [[0], [1]]
    assert [cpu_share([0, 1, 2, 3, 4], i, 2) for i in range(2)] == [[0, 1], [2, 3, 4]]
    assert [cpu_share([2, 5, 7, 9], i, 4) for i in range(4)] == [[2], [5], [7], [9]]
    assert cpu_share([0], 0, 2) is None  # fewer CPUs than workers: they share
    assert cpu_share([0, 1], 2, 2) is None
    assert pin_worker_cpus(None, 2) is None and pin_worker_cpus("gw0", 1) is None  # no xdist, one worker
    assert pin_worker_cpus("master", 2) is None  # not a gwN id


def test_this_worker_keeps_to_its_share() -> None:
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.getenv("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not worker or count < 2:
        pytest.skip("not run by two or more pytest-xdist workers (`make test` runs two)")
    if (os.cpu_count() or 1) < count or not hasattr(os, "sched_getaffinity"):
        pytest.skip(f"fewer CPUs than the {count} workers, or no sched_getaffinity: the workers share them")
    assert PINNED_CPUS is not None and os.sched_getaffinity(0) == set(PINNED_CPUS)
    assert os.environ["OMP_NUM_THREADS"] == str(len(PINNED_CPUS))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no sched_setaffinity on this platform")
def test_a_worker_and_its_children_keep_to_its_share() -> None:
    # A fresh interpreter that first widens its affinity to every CPU (the test may itself run in a pinned worker),
    # then imports the conftest as worker gw1 of 2 would (torch already loaded, as a plugin could), and starts a child.
    code = (
        "import json, os, subprocess, sys\n"
        "import torch\n"
        "try:\n"
        "    os.sched_setaffinity(0, range(os.cpu_count()))\n"
        "except OSError:\n"
        "    pass\n"
        "cpus = sorted(os.sched_getaffinity(0))\n"
        "os.environ.update(PYTEST_XDIST_WORKER='gw1', PYTEST_XDIST_WORKER_COUNT='2')\n"
        "import tests.conftest as c\n"
        "child = subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'],\n"
        "                       capture_output=True, text=True).stdout.strip()\n"
        "print(json.dumps({'cpus': cpus, 'pinned': c.PINNED_CPUS, 'child': child, 'torch': torch.get_num_threads(),\n"
        "                  **{k: os.environ[k] for k in ('OMP_NUM_THREADS', 'VLLM_CPU_OMP_THREADS_BIND')}}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "OMP_", "VLLM_CPU_OMP"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    if len(seen["cpus"]) < 2:
        pytest.skip(f"one CPU available ({seen['cpus']}): nothing to share out")
    share = cpu_share(seen["cpus"], 1, 2)
    assert seen["pinned"] == share and seen["child"] == str(share)
    assert seen["torch"] == len(share) and seen["OMP_NUM_THREADS"] == str(len(share))
    assert seen["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(map(str, share))
