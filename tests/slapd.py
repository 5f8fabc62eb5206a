"""
A private OpenLDAP server for the contract tests.

L{shared_slapd} starts, once per test process, a slapd of our own: its
cn=config is built with C{slapadd -n0} in a temporary directory (mdb backend;
core, cosine, inetorgperson and nova's own schema), it listens on a free
loopback port, and it is stopped and its directory removed when the process
exits (and, should the test process be killed, slapd dies with it).

Nothing else on the machine is touched: no system slapd, no /etc/ldap/slapd.d.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOVA_SCHEMA = REPO / "etc" / "openldap" / "nova.ldif"
SYSTEM_SCHEMA = Path("/etc/ldap/schema")
SLAPD = os.environ.get("NOVA_TEST_SLAPD", "/usr/sbin/slapd")
SLAPADD = os.environ.get("NOVA_TEST_SLAPADD", "/usr/sbin/slapadd")
MODULE_PATH = os.environ.get("NOVA_TEST_SLAPD_MODULES", "/usr/lib/ldap")
START_DEADLINE = 30.0

SUFFIX = "dc=nova,dc=test"
ROOT_DN = "cn=admin,dc=nova,dc=test"


class SlapdError(Exception):
    """The private slapd could not be started."""


def _config_ldif(workdir: Path, password: str) -> str:
    includes = "".join(f"include: file://{SYSTEM_SCHEMA / name}\n\n"
                       for name in ("core.ldif", "cosine.ldif", "inetorgperson.ldif"))
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_PATH}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}include: file://{NOVA_SCHEMA}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {password}
olcDbDirectory: {workdir}/data
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: cn eq
olcDbIndex: member eq
olcDbIndex: owner eq
olcDbIndex: accessKey eq
olcAccess: {{0}}to * by * none

"""


_SUFFIX_LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: nova
o: nova tests

"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: slapd gets SIGTERM if the test process dies first
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


class Slapd:
    """
    One private slapd.

    @ivar url: C{ldap://127.0.0.1:<port>}.
    @ivar suffix: the database suffix (its entry exists).
    @ivar root_dn: the DN with every right over the suffix.
    @ivar password: C{root_dn}'s password.
    """

    def __init__(self) -> None:
        self.suffix = SUFFIX
        self.root_dn = ROOT_DN
        self.password = f"pw-{os.getpid()}-{time.monotonic_ns()}"
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Build the configuration and start slapd; return once it answers."""
        for tool in (SLAPD, SLAPADD):
            if not os.access(tool, os.X_OK):
                raise SlapdError(f"{tool} is missing: install slapd (apt-get install slapd)")
        self.workdir = Path(tempfile.mkdtemp(prefix="nova-slapd-"))
        try:
            self._configure()
            for _attempt in range(3):  # the free port may be taken meanwhile
                self.port = _free_port()
                if self._launch():
                    return
            raise SlapdError(f"slapd did not start; see {self.workdir}/slapd.log")
        except BaseException:
            self.stop()
            raise

    def _configure(self) -> None:
        assert self.workdir is not None
        config_dir, data_dir = self.workdir / "slapd.d", self.workdir / "data"
        config_dir.mkdir()
        data_dir.mkdir()
        (self.workdir / "config.ldif").write_text(_config_ldif(self.workdir, self.password))
        (self.workdir / "suffix.ldif").write_text(_SUFFIX_LDIF)
        for args in (["-n0", "-l", str(self.workdir / "config.ldif")],
                     ["-b", SUFFIX, "-l", str(self.workdir / "suffix.ldif")]):
            done = subprocess.run([SLAPADD, "-F", str(config_dir), *args],
                                  capture_output=True, timeout=60)
            if done.returncode != 0:
                raise SlapdError(f"slapadd {' '.join(args)} failed: "
                                 f"{done.stderr.decode(errors='replace')}")

    def _launch(self) -> bool:
        assert self.workdir is not None
        log = open(self.workdir / "slapd.log", "ab")
        try:
            # -d 0: stay in the foreground (so we own the process), log nothing
            self.process = subprocess.Popen(
                [SLAPD, "-d", "0", "-h", f"{self.url}/", "-F", str(self.workdir / "slapd.d")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_die_with_parent)
        finally:
            log.close()
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            if self._answers():
                return True
            time.sleep(0.02)  # poll interval; readiness is decided by _answers
        self._kill()
        raise SlapdError(f"slapd did not answer on {self.url} within {START_DEADLINE}s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Stop slapd (if running) and remove its directory."""
        self._kill()
        workdir, self.workdir = self.workdir, None
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


_shared: Slapd | None = None
_failure: BaseException | None = None


def shared_slapd() -> Slapd:
    """
    @return: this process's private slapd, started on first use and stopped at exit.
    @raise SlapdError: it cannot be started (every later call raises it again).
    """
    global _shared, _failure
    if _failure is not None:
        raise SlapdError(f"the private slapd failed to start earlier: {_failure}")
    if _shared is None:
        server = Slapd()
        try:
            server.start()
        except BaseException as e:
            _failure = e
            raise
        atexit.register(server.stop)
        _shared = server
    return _shared
