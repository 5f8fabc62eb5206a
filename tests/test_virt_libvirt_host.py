"""
Tests of a compute host as a network namespace with its own libvirtd: the
config files and layout (pure), the bind-mount launcher (root), and one
real guest from the tiny image booted through L{LibvirtDriver} on the
host's private libvirtd (root, qemu, libvirtd).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from twisted.internet import defer, task, threads
from twisted.trial import unittest

from nova.utils.process import ProcessRunner
from nova.virt import power_state
from nova.virt.libvirt import hostconf, mountexec
from nova.virt.libvirt.capability import cpu_has_virtualisation
from nova.virt.libvirt.host import HostLibvirtd, LibvirtdFailed
from nova.virt.records import InstanceSpec
from nova.virt.tinyimage import build as tb


class LayoutTests(unittest.TestCase):
    """
    L{hostconf.HostLayout}: every path under the state directory, the URI.
    """

    def test_paths(self) -> None:
        layout = hostconf.HostLayout.under("/srv/h1")
        self.assertEqual(layout.socket, "/srv/h1/sock/libvirt-sock")
        self.assertEqual(layout.uri, "qemu+unix:///system?socket=/srv/h1/sock/libvirt-sock")
        self.assertEqual(layout.libvirtd_conf, "/srv/h1/etc/libvirtd.conf")
        self.assertEqual(layout.pid_file, "/srv/h1/run/libvirtd.pid")
        self.assertEqual(dict((t, s) for s, t in layout.binds()), {
            "/etc/libvirt": "/srv/h1/etc", "/run/libvirt": "/srv/h1/run",
            "/var/lib/libvirt": "/srv/h1/lib", "/var/cache/libvirt": "/srv/h1/cache",
            "/var/log/libvirt": "/srv/h1/log"})

    def test_sharedCache(self) -> None:
        layout = hostconf.HostLayout.under("/srv/h1", cache_dir="/var/tmp/c")
        self.assertIn(("/var/tmp/c", "/var/cache/libvirt"), layout.binds())

    def test_socketTooLong(self) -> None:
        self.assertRaises(ValueError, hostconf.HostLayout.under, "/" + "x" * 100)

    def test_unquotable(self) -> None:
        self.assertRaises(ValueError, hostconf.HostLayout.under, '/srv/a"b')


class ConfigTests(unittest.TestCase):
    """
    What the daemon is told: unix sockets only, root only; qemu as root.
    """

    def test_libvirtdConf(self) -> None:
        text = hostconf.libvirtd_conf(hostconf.HostLayout.under("/srv/h1"))
        lines = set(text.splitlines())
        for line in ("listen_tcp = 0", "listen_tls = 0", 'unix_sock_dir = "/srv/h1/sock"',
                     'unix_sock_rw_perms = "0700"', 'auth_unix_rw = "none"'):
            self.assertIn(line, lines)

    def test_qemuConf(self) -> None:
        lines = set(hostconf.qemu_conf().splitlines())
        for line in ('user = "root"', 'group = "root"', "dynamic_ownership = 0",
                     'security_driver = "none"', 'stdio_handler = "file"'):
            self.assertIn(line, lines)

    def test_writeFilesIdempotent(self) -> None:
        layout = hostconf.HostLayout.under(tempfile.mkdtemp(prefix="nova-h-"),
                                           cache_dir=self.mktemp())
        self.addCleanup(shutil.rmtree, layout.state_dir)
        if os.geteuid() != 0:
            raise unittest.SkipTest("creates the system mount points: needs root")
        hostconf.write_files(layout)
        hostconf.write_files(layout)
        self.assertEqual(Path(layout.qemu_conf).read_text(), hostconf.qemu_conf())
        self.assertTrue(os.path.isdir(layout.cache_dir))
        self.assertTrue(os.path.isdir(layout.socket_dir))


class NameTests(unittest.TestCase):
    """
    L{HostLibvirtd} refuses a namespace name that could smuggle an option.
    """

    def test_badName(self) -> None:
        for name in ("-n", "", "a b", "x" * 65):
            self.assertRaises(ValueError, HostLibvirtd, None, None, name, "/srv/h1")

    def test_argv(self) -> None:
        host = HostLibvirtd(None, None, "nova-h1", "/srv/h1", python="/py")
        argv = host.argv()
        self.assertEqual(argv[:3], ["/py", "-I", mountexec.__file__])
        self.assertEqual(argv[argv.index("--"):],
                         ["--", "libvirtd", "-f", "/srv/h1/etc/libvirtd.conf",
                          "-p", "/srv/h1/run/libvirtd.pid"])


class MountExecTests(unittest.TestCase):
    """
    The launcher's arguments, and (as root) a real private bind mount.
    """

    def test_parse(self) -> None:
        self.assertEqual(mountexec.parse(["--bind", "/a", "/b", "--", "prog", "-x"]),
                         ([("/a", "/b")], ["prog", "-x"]))
        for bad in ([], ["--"], ["--bind", "/a"], ["--bind", "a", "/b", "--", "p"],
                    ["prog"]):
            self.assertRaises(ValueError, mountexec.parse, bad)

    def test_bindIsPrivate(self) -> None:
        if os.geteuid() != 0:
            raise unittest.SkipTest("bind mounts need root")
        source, target = Path(self.mktemp()), Path(self.mktemp())
        source.mkdir()
        target.mkdir()
        (source / "seen").write_text("inside")
        out = subprocess.run([sys.executable, "-I", mountexec.__file__, "--bind",
                              str(source.resolve()), str(target.resolve()), "--",
                              "cat", str(target.resolve() / "seen")],
                             capture_output=True, check=True)
        self.assertEqual(out.stdout, b"inside")
        self.assertEqual(list(target.iterdir()), [])  # nothing leaked to our namespace


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, libvirtd)"
    for program in ("libvirtd", "qemu-system-x86_64", "virsh", "ip"):
        if shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return (f"{program} is not installed"
                    " (tools/install-debian-packages installs it)")
    return None


def image_cache_dir() -> Path:
    """The tiny image build cache shared with tests/test_tiny_image.py."""
    return Path(os.environ.get("NOVA_TINY_IMAGE_CACHE", "/var/tmp/nova-tiny-image-cache"))


def capability_cache_dir() -> Path:
    """qemu capabilities probed once per machine, shared by the test hosts."""
    return Path(os.environ.get("NOVA_LIBVIRT_CACHE", "/var/tmp/nova-libvirt-cache"))


class GuestOnHostTests(unittest.TestCase):
    """
    A host namespace, its own libvirtd, and the tiny image booted, rebooted,
    stopped and destroyed through L{LibvirtDriver}.
    """

    timeout = 600  # a cold image build downloads ~30 MB; the test itself takes seconds

    async def _wait_console(self, driver, name: str, done, what: str,
                            limit: float = 90.0) -> bytes:
        from twisted.internet import reactor
        deadline = reactor.seconds() + limit
        while True:
            out = await driver.get_console_output(name)
            if done(out):
                return out
            if reactor.seconds() >= deadline:
                self.fail(f"{what} not seen within {limit:g} s; console:\n"
                          + out.decode(errors="replace")[-2000:])
            await task.deferLater(reactor, 0.2, lambda: None)

    async def _scenario(self) -> None:
        from twisted.internet import reactor

        from nova.virt.libvirt.driver import LibvirtDriver
        reason = _skip_reason()
        if reason is not None:
            raise unittest.SkipTest(reason)
        await threads.deferToThread(tb.build, image_cache_dir(), log=lambda m: None)
        image = image_cache_dir()
        capability_cache_dir().mkdir(parents=True, exist_ok=True)
        # Short paths: the private socket must fit in a unix socket address.
        work = tempfile.mkdtemp(prefix="nova-host-")
        self.addCleanup(shutil.rmtree, work, True)
        host = HostLibvirtd(reactor, ProcessRunner(reactor), f"nova-test-{uuid.uuid4().hex[:8]}",
                            os.path.join(work, "state"), cache_dir=str(capability_cache_dir()))
        self.addCleanup(host.stop)
        await host.start()
        driver = LibvirtDriver(reactor, host.uri, work)
        self.addCleanup(driver.close)
        await driver.init_host()
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            if not cpu_has_virtualisation(f.read()):
                self.assertEqual(driver.domain_type, "qemu")

        name = f"instance-{uuid.uuid4().hex[:8]}"
        spec = InstanceSpec(name=name, uuid=str(uuid.uuid4()), memory_mb=96, vcpus=1,
                            console_log=os.path.join(work, "console.log"),
                            kernel=str(image / tb.KERNEL), initrd=str(image / tb.INITRD),
                            cmdline="console=ttyS0 no_timer_check quiet")
        self.addCleanup(driver.destroy, name)
        marker = tb.MARKER.encode()
        started = time.monotonic()
        await driver.spawn(spec)
        first = await self._wait_console(driver, name, lambda out: marker in out, "marker")
        print(f"\n  spawn to marker through libvirt: {time.monotonic() - started:.2f} s",
              file=sys.stderr)
        self.assertIn(f"{tb.MARKER} instance-id=none address=none".encode(), first)
        self.assertEqual((await driver.get_info(name)).state, power_state.RUNNING)
        self.assertIn(name, await driver.list_instances())

        # The test owns the log: without it, any marker seen next comes from
        # the second boot (qemu starts the file afresh, so counting markers
        # in one file cannot tell the boots apart).
        os.unlink(spec.console_log)
        await driver.reboot(name)
        second = await self._wait_console(driver, name, lambda out: marker in out,
                                          "marker after reboot")
        self.assertIn(f"{tb.MARKER} instance-id=none address=none".encode(), second)
        self.assertEqual((await driver.get_info(name)).state, power_state.RUNNING)

        await driver.power_off(name)
        self.assertEqual((await driver.get_info(name)).state, power_state.SHUTOFF)
        await driver.destroy(name)
        self.assertNotIn(name, await driver.list_instances())

    def test_tinyGuestLifecycle(self):
        return defer.Deferred.fromCoroutine(self._scenario())


class SideBySideTests(unittest.TestCase):
    """
    Two hosts run their own daemons at once; a second daemon on a state
    directory in use fails with the daemon's own reason.
    """

    timeout = 120  # a cold capability cache costs 8-12 s per daemon

    def _host(self, state_dir: str) -> HostLibvirtd:
        from twisted.internet import reactor
        host = HostLibvirtd(reactor, ProcessRunner(reactor), f"nova-test-{uuid.uuid4().hex[:8]}",
                            state_dir, cache_dir=str(capability_cache_dir()))
        self.addCleanup(host.stop)
        return host

    async def _twoHosts(self) -> None:
        from twisted.internet import reactor

        from nova.virt.libvirt.driver import LibvirtDriver
        reason = _skip_reason()
        if reason is not None:
            raise unittest.SkipTest(reason)
        capability_cache_dir().mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(prefix="nova-host-")
        self.addCleanup(shutil.rmtree, work, True)
        a, b = self._host(os.path.join(work, "a")), self._host(os.path.join(work, "b"))
        await defer.gatherResults([defer.Deferred.fromCoroutine(h.start()) for h in (a, b)])
        self.assertNotEqual(a.uri, b.uri)
        for host in (a, b):
            driver = LibvirtDriver(reactor, host.uri, work)
            self.addCleanup(driver.close)
            self.assertEqual(await driver.list_instances(), [])
            self.assertTrue(await host.netns_exists())

        clash = self._host(os.path.join(work, "a"))
        with self.assertRaises(LibvirtdFailed) as caught:
            await clash.start()
        self.assertIn("already serves", str(caught.exception))

        await a.stop()
        self.assertFalse(await a.netns_exists())
        self.assertTrue(await b.netns_exists())

    async def _exitsAtStart(self) -> None:
        from twisted.internet import reactor
        reason = _skip_reason()
        if reason is not None:
            raise unittest.SkipTest(reason)
        work = tempfile.mkdtemp(prefix="nova-host-")
        self.addCleanup(shutil.rmtree, work, True)
        host = HostLibvirtd(reactor, ProcessRunner(reactor), f"nova-test-{uuid.uuid4().hex[:8]}",
                            os.path.join(work, "s"), libvirtd="false")
        self.addCleanup(host.stop)
        with self.assertRaises(LibvirtdFailed) as caught:
            await host.start()
        self.assertIn("exited at start", str(caught.exception))
        await host.stop()
        self.assertFalse(await host.netns_exists())

    def test_daemonExitsAtStart(self):
        return defer.Deferred.fromCoroutine(self._exitsAtStart())

    def test_twoHostsAndAClash(self):
        return defer.Deferred.fromCoroutine(self._twoHosts())
