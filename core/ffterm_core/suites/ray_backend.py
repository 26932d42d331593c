"""Suite runs as Ray tasks on an existing cluster (the optional `ray` extra).

Each unit is one task holding one GPU, or `cpus_per_run` CPUs. A task writes into the suite folder
when the cluster shares it; otherwise the run directory travels to the task packed and comes back
packed, and the driver unpacks it into the suite folder (see `suite_worker.remote_unit`). Either way
the suite folder is the single record, so a Ray suite resumes like a local one.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ffterm_core.store import rundir
from ffterm_core.store.rundir import FAILED
from ffterm_core.suites.plan import read_suite_id
from ffterm_core.suites.runner import Unit
from ffterm_core.suites.spec import SuiteError
from ffterm_core.suites.worker import pack, remote_unit, run_state, unpack

INSTALL_HINT = "install it with `pip install 'ffterm[ray]'` (on the driver and on every node of the cluster)"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SuiteError(f"--backend ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at a cluster's host:port."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise SuiteError(
            f"--address {address}: give the cluster's head as HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise SuiteError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one with "
            f"`ray start --head --port {port}` on {host}, or give the address `ray status` prints"
        ) from None


class RayExecutor:
    def __init__(self, address: str | None = None, cpus_per_run: int | None = None) -> None:
        self.ray = _import_ray()
        if not self.ray.is_initialized():
            if address:
                check_address(address)
            try:
                self.ray.init(address=address, log_to_driver=False, include_dashboard=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError… with long texts
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise SuiteError(
                    f"could not join the Ray cluster at {address or 'auto'}: {first}; check --address"
                ) from None
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if cpus_per_run:
            self.resources = {"num_cpus": cpus_per_run, "num_gpus": 0}
        else:
            self.resources = {"num_cpus": 1, "num_gpus": 1} if gpus else {"num_cpus": 1, "num_gpus": 0}

    def run(self, units: list[Unit], probe_layer: int | None, done: Callable[[Unit, list[str]], None]) -> None:
        ray = self.ray
        task = ray.remote(remote_unit).options(**self.resources, max_retries=0)
        refs: dict[Any, Unit] = {}
        for unit in units:
            suite_dir = _suite_dir(unit)
            rel = [str(d.relative_to(suite_dir)) for d in unit.dirs]
            refs[
                task.remote(
                    str(suite_dir),
                    read_suite_id(suite_dir),
                    rel,
                    [pack(d) for d in unit.dirs],
                    probe_layer,
                    [r.needs_probes for r in unit.runs],
                )
            ] = unit
        remaining = list(refs)
        try:
            while remaining:
                ready, remaining = ray.wait(remaining, num_returns=1)
                unit = refs[ready[0]]
                done(unit, self._collect(ready[0], unit))
        except KeyboardInterrupt:
            for ref in remaining:
                ray.cancel(ref, force=True)
            raise

    def _collect(self, ref: Any, unit: Unit) -> list[str]:
        try:
            result = self.ray.get(ref)
        except Exception as exc:  # the task or its worker died: record it in each run that did not finish
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            for d in unit.dirs:
                if not rundir.is_finished(d):
                    rundir.write_json(d / FAILED, {"error": f"Ray task failed: {first}"})
            return [run_state(d, r.needs_probes) for r, d in zip(unit.runs, unit.dirs)]
        if result["bundles"] is not None:
            for d, data in zip(unit.dirs, result["bundles"]):
                unpack(data, d)
        return list(result["states"])


def _suite_dir(unit: Unit) -> Path:
    """SUITE/SETTING/seed-N → SUITE."""
    return unit.dirs[0].parent.parent
