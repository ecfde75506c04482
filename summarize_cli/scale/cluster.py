"""Joining a Ray cluster (or starting a local one) quietly, and failing in seconds when nothing answers.

Ray's own logs, progress bars and the notices its C++ core writes to file descriptor 2 go to a log file in
the cache folder, so the terminal shows only the run's one display and its messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import warnings

from summarize_cli.errors import SettingsError, SummarizeError

RAY_EXTRA = "pip install 'summarize-cli[ray]'"
BLOCK_BYTES = 1 << 20  # a read task's documents per block, so one dataset file spreads over the actors
REACH_TIMEOUT = 5.0  # seconds to wait for a cluster's GCS port to answer


def require_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - finite inputs run on Ray Data: its extra must be there too
    except ImportError:
        raise SettingsError(f"--ray needs Ray: {RAY_EXTRA}") from None
    return ray


class Cluster:
    """A connection to Ray for one run: `connect()` joins or starts it, `close()` leaves it as it was."""

    def __init__(self, address: str | None):
        self.ray = require_ray()
        self.address = None if address in (None, "", "local") else address
        self.started_here = False
        self.log_path = None
        self._saved_fd: int | None = None
        self._saved_stderr = None

    def connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # failures reach the user as one Error line
        address = self.address
        if address is None and os.environ.get("RAY_ADDRESS", "").strip() not in ("", "local"):
            address = os.environ["RAY_ADDRESS"].strip()  # ray.init would join it: check it the same way
        address = resolve_address(address)
        check_reachable(address)
        try:
            ray.init(
                address=address,
                logging_level=logging.CRITICAL,
                log_to_driver=False,
                include_dashboard=False,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SummarizeError(f"cannot start or join Ray at {address or 'a local instance'}: {exc}") from None
        self.started_here = address is None
        quiet_data()
        from summarize_cli import signals

        signals.install()  # ray.init takes SIGTERM for itself (exit 15): the run's own handling comes back

    def pool_size(self, workers: int | None, threads: int, gpu: bool) -> int:
        """--workers, or one actor per CPU (per GPU with --device cuda), never more than the cluster holds."""
        resources = self.ray.cluster_resources()
        if not gpu:
            largest = max(
                (node.get("Resources", {}).get("CPU", 0) for node in self.ray.nodes() if node.get("Alive")), default=0
            )
            if threads > largest:  # no actor could ever be placed: Ray would wait for one forever
                raise SummarizeError(
                    f"--threads {threads}: no node of the Ray cluster has that many CPUs "
                    f"(the largest has {int(largest)})"
                )
        fits = int(resources.get("GPU", 0)) if gpu else int(resources.get("CPU", 1) // threads)
        return max(1, min(workers or fits, max(fits, 1)))

    def get(self, refs):
        """ray.get, with a failure of the job said in one line."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayError as exc:
            raise self.failed(exc) from None

    def failed(self, exc: BaseException) -> SummarizeError:
        text = str(exc).strip()
        message = text.splitlines()[-1] if text else type(exc).__name__
        log = f" (Ray's log: {self.log_path})" if self.log_path else ""
        return SummarizeError(f"the Ray job failed: {message}{log}")

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
        self._restore_stderr()

    def divert_native_stderr(self) -> None:
        """Ray's C++ core and its workers write notices straight to file descriptor 2: send those to a log
        file, and give Python's sys.stderr (progress, warnings, errors) a copy of the real stderr."""
        from summarize_cli.dirs import cache_dir

        try:
            self.log_path = cache_dir() / "ray.log"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            sys.stderr.flush()
            if sys.stderr.fileno() != 2:  # stderr is not the process's own (a test runner captures it)
                raise ValueError("stderr is redirected")
            self._saved_fd = os.dup(2)
            log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log_fd, 2)
            os.close(log_fd)
            self._saved_stderr = sys.stderr
            sys.stderr = open(  # noqa: SIM115 - lives until _restore_stderr closes it
                os.dup(self._saved_fd),
                "w",
                buffering=1,
                encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                errors="replace",
                closefd=True,
            )
        except (OSError, ValueError, AttributeError):  # no real stderr (tests): nothing to divert
            self._saved_fd = None
        try:  # Ray's driver prints task errors ("(raylet) ... will be retried") on stdout: log them instead
            import ray._private.worker as ray_worker

            ray_worker.print_to_stdstream = self._log_worker_lines
        except (ImportError, AttributeError):
            pass

    def _log_worker_lines(self, data: dict, ignore_prefix: bool = False) -> None:
        with contextlib.suppress(OSError, AttributeError, TypeError), open(self.log_path, "a") as log:
            log.write("\n".join(str(line) for line in data.get("lines", [])) + "\n")

    def _restore_stderr(self) -> None:
        if self._saved_fd is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            sys.stderr.close()
        sys.stderr = self._saved_stderr
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        self._saved_fd = None


def quiet_data() -> None:
    """Ray Data's progress bars and execution notices stay off the terminal; results keep input order."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.verbose_stats_logs = False
    context.execution_options.preserve_order = True
    context.target_max_block_size = BLOCK_BYTES
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)


def resolve_address(address: str | None) -> str | None:
    """`auto` as Ray would resolve it (RAY_ADDRESS, then the last `ray start` recorded on this machine), so
    a stale record is checked before Ray spends minutes retrying it."""
    if address != "auto":
        return address
    from ray._private import services, utils

    recorded = utils.read_ray_address(None)  # the last `ray start` here: what Ray itself prefers
    if recorded:
        return recorded
    nothing = (
        "cannot join Ray at auto: no running cluster was found on this machine "
        "(start one with `ray start --head`, or give --ray HOST:PORT)"
    )
    try:
        found = services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError):
        raise SummarizeError(nothing) from None
    if found is None:
        raise SummarizeError(nothing)
    return found


def check_reachable(address: str | None) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on fails in seconds, not after Ray's minutes
    of retries."""
    match = re.fullmatch(r"(?:ray://)?([\w.-]+):(\d+)", address or "")
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise SummarizeError(
            f"cannot join Ray at {address}: nothing answers on {host}:{port} ({exc.strerror or exc})"
        ) from None
