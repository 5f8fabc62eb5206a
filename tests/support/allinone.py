"""
A real all-in-one cloud for the functional tests: C{twistd nova-allinone}
in a child process, with its own state directory, its own redis-server and
its own free loopback ports, driven from the tests exactly as a user would
drive it (boto 2, boto3, awscli, bin/nova-manage).

Starting it takes a few seconds, so test modules share one instance
(L{shared}); it is stopped when the test run exits, and dies with the test
process if that is killed.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """@return: a loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: if the test run is killed, the cloud goes with it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


def parse_novarc(text: str) -> dict[str, str]:
    """@return: the variables a novarc exports, with C{${NOVA_KEY_DIR}} left as is."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            words = shlex.split(value, comments=True)
            env[name] = words[0] if words else ""
    return env


class AllInOne:
    """
    One running all-in-one cloud.

    @ivar state_dir: its state directory.
    @ivar ec2_port: its EC2 API port on 127.0.0.1.
    """

    def __init__(self, extra_config: str = "", host: str = "functional-test",
                 compute: str = "driver = fake\n", tiny_image: bool = False,
                 network: str = "driver = fake\n",
                 volume: str = "driver = fake\n") -> None:
        """
        @param extra_config: more INI text (whole sections).
        @param compute: the C{[compute]} section's settings (default: the fake
            driver, for the functional tests that run no real guest).
        @param network: the C{[network]} section's settings (default: the
            in-memory network host, no bridges or dnsmasq).
        @param volume: the C{[volume]} section's settings (default: the
            in-memory export driver over sparse files).
        @param tiny_image: build and register the tiny image on first start.
        """
        self.tiny_image = tiny_image
        self.base = Path(tempfile.mkdtemp(prefix="nova-func-"))
        self.state_dir = self.base / "state"
        self.ec2_port = free_port()
        self.metadata_port = free_port()
        self.s3_port = free_port()
        self.redis_port = free_port()
        self.config_path = self.base / "nova.conf"
        self.config_path.write_text(
            "[nova]\n"
            f"state_dir = {self.state_dir}\n"
            f"host = {host}\n"
            "[api]\n"
            f"ec2_port = {self.ec2_port}\n"
            f"metadata_port = {self.metadata_port}\n"
            "[objectstore]\n"
            f"port = {self.s3_port}\n"
            "[redis]\n"
            "spawn = true\n"
            f"port = {self.redis_port}\n"
            "prefix = nova:\n"
            "[service]\n"
            "report_interval = 2\n"
            "[compute]\n"
            + compute
            + "[network]\n"
            + network
            + "[volume]\n"
            + volume
            + extra_config
        )
        self.host = host
        self.log_path = self.base / "twistd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def ec2_url(self) -> str:
        return f"http://127.0.0.1:{self.ec2_port}/services/Cloud"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ec2_port}/services/Admin"

    @property
    def novarc_path(self) -> Path:
        return self.state_dir / "creds" / "novarc"

    def start(self, timeout: float = 90.0) -> None:
        """Start the cloud and return once it has written its credentials."""
        env = dict(os.environ)
        env.pop("NOVA_STATE_DIR", None)
        if not self.tiny_image:
            env["NOVA_SKIP_TINY_IMAGE"] = "1"
        # the last run's novarc would say "up" before this run is
        self.novarc_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [str(VENV_BIN / "twistd"), "--nodaemon", "--pidfile=", f"--logfile={self.log_path}",
             "nova-allinone", "--config", str(self.config_path)],
            cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while not self.novarc_path.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the all-in-one exited ({self.process.returncode}):\n"
                                   + self.log_tail())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the all-in-one did not come up:\n" + self.log_tail())
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the cloud (SIGTERM, then SIGKILL) and remove its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        import shutil
        shutil.rmtree(self.base, ignore_errors=True)

    def admin_env(self) -> dict[str, str]:
        """@return: the admin's novarc variables, key paths resolved."""
        env = parse_novarc(self.novarc_path.read_text())
        known = {"NOVA_KEY_DIR": str(self.novarc_path.parent)}
        for name, value in env.items():  # in file order, as the shell expands them
            for var, replacement in known.items():
                value = value.replace("${" + var + "}", replacement)
            env[name] = known[name] = value
        return env

    def nova_manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run bin/nova-manage against this cloud's state."""
        env = dict(os.environ)
        env["NOVA_STATE_DIR"] = str(self.state_dir)
        env["NOVA_CONFIG"] = str(self.config_path)
        result = subprocess.run([str(ROOT / "bin" / "nova-manage"), *args], cwd=str(ROOT),
                                env=env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"nova-manage {' '.join(args)} failed: {result.stderr}")
        return result


_shared: AllInOne | None = None


def shared() -> AllInOne:
    """@return: the all-in-one shared by this test run, started on first use."""
    global _shared
    if _shared is None:
        cloud = AllInOne()
        cloud.start()
        _shared = cloud

        def _stop() -> None:
            cloud.stop()
            cloud.remove()

        atexit.register(_stop)
    return _shared
