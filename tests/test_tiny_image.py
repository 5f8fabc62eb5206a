"""
Tests of the tiny test image: the builder's pure parts (package resolution,
cpio writer, guest files, cache) without network, and one real boot of the
built image under bare qemu (TCG, no NIC) up to its console marker.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import stat
from pathlib import Path

from twisted.internet import defer, error, protocol, threads
from twisted.trial import unittest

from nova.virt.tinyimage import build as tb
from nova.virt.tinyimage import newc
from nova.virt.tinyimage import packages as tp

DEPENDS = """\
linux-image-cloud-amd64
  Depends: linux-image-6.1.0-56-cloud-amd64
dropbear-bin
  Depends: libc6
  Depends: libcrypt1
 |Depends: libtomcrypt1
  Depends: libtomcrypt-alt
  Depends: <virtual-thing>
  Recommends: openssh-client
  Depends: zlib1g
  Depends: libc6
"""

POLICY = """\
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
ghost:
  Installed: (none)
  Candidate: (none)
"""

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibz.so.1 => /x/lib/x86_64-linux-gnu/libz.so.1 (0x00007f)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f)
"""


def read_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """
    Parse a newc archive (test oracle): (name, mode, data) up to the trailer.
    """
    out, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", data[pos:pos + 6]
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos = (pos + namesize + 3) & ~3
        body = data[pos:pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, body))


class ParsingTests(unittest.TestCase):
    """
    apt-cache and ldd output parsing.
    """

    def test_dependsSections(self) -> None:
        deps = tp.parse_depends(DEPENDS)
        self.assertEqual(deps["linux-image-cloud-amd64"], ["linux-image-6.1.0-56-cloud-amd64"])
        # First alternative only, no virtual names, no Recommends, no duplicates.
        self.assertEqual(deps["dropbear-bin"], ["libc6", "libcrypt1", "libtomcrypt1", "zlib1g"])

    def test_kernelPackage(self) -> None:
        self.assertEqual(tp.kernel_package(["linux-image-6.1.0-56-cloud-amd64"]),
                         "linux-image-6.1.0-56-cloud-amd64")
        self.assertEqual(tp.kernel_release("linux-image-6.1.0-56-cloud-amd64"),
                         "6.1.0-56-cloud-amd64")

    def test_kernelPackageMissing(self) -> None:
        self.assertRaises(tp.TinyImageError, tp.kernel_package, ["linux-image-6.1.0-56-amd64"])

    def test_candidates(self) -> None:
        self.assertEqual(tp.parse_candidates(POLICY), {
            "libc6": "2.36-9+deb12u14", "busybox-static": "1:1.35.0-4+deb12u1+b1",
            "ghost": None})

    def test_ldd(self) -> None:
        self.assertEqual(tp.parse_ldd(LDD), ["libz.so.1", "libc.so.6", "ld-linux-x86-64.so.2"])
        self.assertEqual(tp.parse_ldd("\tstatically linked\n"), [])

    def test_libraryPackages(self) -> None:
        for name in ("libc6", "libgmp10", "zlib1g", "libtomcrypt1"):
            self.assertTrue(tp.is_library_package(name), name)
        for name in ("gcc-12-base", "libc6-dev", "dropbear-bin", "libc-bin"):
            self.assertFalse(tp.is_library_package(name), name)


class FakeApt:
    """
    Answers apt-cache commands from canned text, recording the calls.
    """

    def __init__(self, depends: dict[str, list[str]], versions: dict[str, str]) -> None:
        self.depends = depends
        self.versions = versions
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        if argv[:2] == ["apt-cache", "depends"]:
            return "".join(name + "\n" + "".join(f"  Depends: {d}\n" for d in self.depends[name])
                           for name in argv[2:] if name in self.depends)
        if argv[:2] == ["apt-cache", "policy"]:
            return "".join(f"{n}:\n  Candidate: {self.versions.get(n, '(none)')}\n"
                           for n in argv[2:])
        raise AssertionError(argv)


class ResolveTests(unittest.TestCase):
    """
    L{tp.resolve} walks the meta package and dropbear's library closure.
    """

    DEPS = {"linux-image-cloud-amd64": ["linux-image-6.1.0-9-cloud-amd64"],
            "dropbear-bin": ["libc6", "libtomcrypt1", "debconf"],
            "libc6": ["libgcc-s1"], "libtomcrypt1": ["libgmp10", "libc6"],
            "libgcc-s1": ["gcc-12-base", "libc6"], "libgmp10": ["libc6"]}

    def versions(self) -> dict[str, str]:
        names = ["linux-image-6.1.0-9-cloud-amd64", "busybox-static", "dropbear-bin",
                 "libc6", "libtomcrypt1", "libgcc-s1", "libgmp10"]
        return {n: "1.0" for n in names}

    def test_resolve(self) -> None:
        apt = FakeApt(self.DEPS, self.versions())
        names = [p.name for p in tp.resolve(apt)]
        self.assertEqual(names, ["linux-image-6.1.0-9-cloud-amd64", "busybox-static",
                                 "dropbear-bin", "libc6", "libtomcrypt1", "libgcc-s1", "libgmp10"])
        # One policy call for everything.
        self.assertEqual(sum(c[1] == "policy" for c in apt.calls), 1)

    def test_noCandidate(self) -> None:
        versions = self.versions()
        del versions["libgmp10"]
        e = self.assertRaises(tp.TinyImageError, tp.resolve, FakeApt(self.DEPS, versions))
        self.assertIn("libgmp10", str(e))

    def test_unknownMeta(self) -> None:
        deps = dict(self.DEPS)
        del deps["linux-image-cloud-amd64"]
        e = self.assertRaises(tp.TinyImageError, tp.resolve, FakeApt(deps, self.versions()))
        self.assertIn("linux-image-cloud-amd64", str(e))

    def test_keyFollowsVersions(self) -> None:
        a = [tp.Package("busybox-static", "1"), tp.Package("dropbear-bin", "2")]
        b = [tp.Package("busybox-static", "1"), tp.Package("dropbear-bin", "3")]
        self.assertEqual(tb.inputs_key(a), tb.inputs_key(list(a)))
        self.assertNotEqual(tb.inputs_key(a), tb.inputs_key(b))


class NewcTests(unittest.TestCase):
    """
    The cpio writer produces what the kernel's initramfs unpacker reads.
    """

    def test_roundTrip(self) -> None:
        buf = io.BytesIO()
        newc.write_newc([newc.regular("etc/x", b"hello", 0o600), newc.directory("etc"),
                         newc.symlink("init", "/bin/busybox")], buf)
        members = read_newc(buf.getvalue())
        self.assertEqual([m[0] for m in members], ["etc", "etc/x", "init"])
        self.assertEqual(members[1], ("etc/x", stat.S_IFREG | 0o600, b"hello"))
        self.assertEqual(members[2][2], b"/bin/busybox")
        self.assertTrue(stat.S_ISLNK(members[2][1]))

    def test_duplicate(self) -> None:
        self.assertRaises(ValueError, newc.write_newc,
                          [newc.directory("a"), newc.directory("/a")], io.BytesIO())


class GuestFilesTests(unittest.TestCase):
    """
    The init script and its companions say what the image promises.
    """

    def test_modulesInOrder(self) -> None:
        modules = tb.guest_files()["etc/nova-tiny/modules"].decode().split()
        self.assertEqual(modules[:3], ["virtio_ring", "virtio", "virtio_pci_modern_dev"])
        self.assertLess(modules.index("net_failover"), modules.index("virtio_net"))
        self.assertEqual(modules[-2:], ["evdev", "button"])

    def test_rcS(self) -> None:
        rcs = tb.guest_files()["etc/nova-tiny/rcS"].decode()
        self.assertIn(f'MARKER="{tb.MARKER} instance-id=$INSTANCE_ID address=$ADDRESS"', rcs)
        self.assertIn("timeout 5 wget", rcs)
        self.assertNotIn("wget -T", rcs)
        for path in ("meta-data/instance-id", "meta-data/local-ipv4",
                     "meta-data/public-keys/0/openssh-key", "/user-data",
                     "/root/.ssh/authorized_keys", "dropbear -R", "acpid", "udhcpc"):
            self.assertIn(path, rcs)

    def test_layout(self) -> None:
        files = tb.guest_files()
        self.assertIn(b"::sysinit:/etc/nova-tiny/rcS", files["etc/inittab"])
        self.assertTrue(files["etc/passwd"].startswith(b"root:*:0:0:"))
        self.assertIn("etc/acpi/PWRF/00000080", files)

    def test_outputDir(self) -> None:
        self.assertEqual(tb.default_output_dir({"NOVA_STATE_DIR": "/s"}), Path("/s/images/tiny"))
        self.assertEqual(tb.default_output_dir({}).parts[-3:], ("var", "images", "tiny"))


class CacheTests(unittest.TestCase):
    """
    A manifest only counts when its key and both files' checksums match.
    """

    def setUp(self) -> None:
        self.out = Path(self.mktemp())
        self.out.mkdir()
        files = {}
        for name in (tb.KERNEL, tb.INITRD):
            (self.out / name).write_bytes(name.encode())
            files[name] = {"sha256": tb.sha256_file(self.out / name)}
        (self.out / tb.MANIFEST).write_text(json.dumps({"key": "k", "files": files}))

    def test_hit(self) -> None:
        self.assertEqual(tb.cached_manifest(self.out, "k")["key"], "k")

    def test_otherKey(self) -> None:
        self.assertIsNone(tb.cached_manifest(self.out, "other"))

    def test_changedFile(self) -> None:
        (self.out / tb.INITRD).write_bytes(b"tampered")
        self.assertIsNone(tb.cached_manifest(self.out, "k"))

    def test_missingManifest(self) -> None:
        (self.out / tb.MANIFEST).unlink()
        self.assertIsNone(tb.cached_manifest(self.out, "k"))


def image_cache_dir() -> Path:
    """
    The build cache shared by test runs (the builder keys it by its inputs).
    """
    return Path(os.environ.get("NOVA_TINY_IMAGE_CACHE", "/var/tmp/nova-tiny-image-cache"))


class _Serial(protocol.ProcessProtocol):
    """
    Collects qemu's serial output (on stdout) and fires when the marker
    line is complete or qemu exits.
    """

    def __init__(self) -> None:
        self.output = b""
        self.marker: defer.Deferred[str] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if self.marker.called:
            return
        for line in self.output.decode(errors="replace").splitlines(keepends=True):
            if tb.MARKER in line and line.endswith("\n"):
                self.marker.callback(line[line.index(tb.MARKER):].strip())
                return

    def errReceived(self, data: bytes) -> None:
        self.output += data

    def processEnded(self, reason) -> None:
        if not self.marker.called:
            self.marker.errback(AssertionError(
                f"qemu exited before the marker: {self.output.decode(errors='replace')[-2000:]}"))
        self.ended.callback(None)


class BootTests(unittest.TestCase):
    """
    Build (or reuse) the image and boot it with bare qemu under TCG, with no
    NIC at all: the guest must still reach its marker, with address=none.
    """

    timeout = 600  # a cold build downloads ~30 MB; the boot itself takes seconds

    async def _boot(self) -> None:
        from twisted.internet import reactor
        qemu = shutil.which("qemu-system-x86_64")
        if qemu is None:
            raise unittest.SkipTest("qemu-system-x86_64 is not installed "
                                    "(tools/install-debian-packages installs it)")
        manifest = await threads.deferToThread(tb.build, image_cache_dir(), log=lambda m: None)
        out = image_cache_dir()
        serial = _Serial()
        argv = [qemu, "-accel", "tcg", "-m", "96", "-nodefaults", "-no-reboot",
                "-display", "none", "-monitor", "none", "-nic", "none",
                "-serial", "stdio", "-kernel", str(out / tb.KERNEL),
                "-initrd", str(out / tb.INITRD),
                "-append", "console=ttyS0 no_timer_check quiet panic=-1"]
        proc = reactor.spawnProcess(serial, qemu, argv, env=None)

        def stop() -> defer.Deferred[None]:
            try:
                proc.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass
            return serial.ended
        self.addCleanup(stop)
        deadline = reactor.callLater(90, serial.marker.cancel)
        try:
            line = await serial.marker
        except defer.CancelledError:
            self.fail("no marker within 90 s; console:\n"
                      + serial.output.decode(errors="replace")[-2000:])
        finally:
            if deadline.active():
                deadline.cancel()
        self.assertEqual(line, f"{tb.MARKER} instance-id=none address=none")
        self.assertEqual(manifest["kernel_release"], tp.kernel_release(
            next(n for n in manifest["packages"] if n.startswith("linux-image-"))))

    def test_bootsToMarkerWithoutNetwork(self):
        return defer.Deferred.fromCoroutine(self._boot())


class LayoutTests(unittest.TestCase):
    """
    L{tb.initramfs_entries} over a fake unpacked package tree.
    """

    RELEASE = "6.1.0-9-cloud-amd64"

    def setUp(self) -> None:
        import lzma
        self.root = Path(self.mktemp())
        (self.root / "bin").mkdir(parents=True)
        (self.root / "bin/busybox").write_bytes(b"BUSYBOX")
        kernel = self.root / "lib/modules" / self.RELEASE / "kernel/drivers"
        kernel.mkdir(parents=True)
        for name in tb.MODULES:
            if name == "virtio_net":
                (kernel / f"{name}.ko.xz").write_bytes(lzma.compress(b"KO " + name.encode()))
            else:
                (kernel / f"{name}.ko").write_bytes(b"KO " + name.encode())
        for binary in ("usr/sbin/dropbear", "usr/bin/dropbearkey"):
            (self.root / binary).parent.mkdir(parents=True, exist_ok=True)
            (self.root / binary).write_bytes(binary.encode())
        libdir = self.root / "lib/x86_64-linux-gnu"
        libdir.mkdir(parents=True)
        (libdir / "libz.so.1.2.13").write_bytes(b"LIBZ")
        (libdir / "libz.so.1").symlink_to("libz.so.1.2.13")
        (libdir / "ld-linux-x86-64.so.2").write_bytes(b"LDSO")
        (self.root / "lib64").mkdir()
        (self.root / "lib64/ld-linux-x86-64.so.2").symlink_to(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")

    def runner(self, argv):
        if argv[-1] == "--list-full":
            return "bin/ash\nsbin/init\nusr/bin/wget\n"
        if "ldd" in argv:
            return "\tlibz.so.1 => /x (0x1)\n\t/lib64/ld-linux-x86-64.so.2 (0x2)\n"
        raise AssertionError(argv)

    def test_layout(self) -> None:
        path = Path(self.mktemp())
        tb.write_initramfs(tb.initramfs_entries(self.root, self.RELEASE, self.runner), path)
        members = {name: (mode, data) for name, mode, data
                   in read_newc(gzip.decompress(path.read_bytes()))}
        self.assertEqual(members["init"][1], b"/bin/busybox")
        self.assertEqual(members["sbin/init"][1], b"/bin/busybox")
        self.assertEqual(members["bin/busybox"][1], b"BUSYBOX")
        # Compressed modules are unpacked, since busybox insmod cannot.
        self.assertEqual(members["lib/modules/virtio_net.ko"][1], b"KO virtio_net")
        self.assertEqual(members["lib/x86_64-linux-gnu/libz.so.1"][1], b"LIBZ")
        self.assertEqual(members["lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"][1], b"LDSO")
        self.assertTrue(stat.S_ISLNK(members["lib64/ld-linux-x86-64.so.2"][0]))
        self.assertEqual(stat.S_IMODE(members["etc/nova-tiny/rcS"][0]), 0o755)
        self.assertEqual(stat.S_IMODE(members["tmp"][0]), 0o1777)

    def test_reproducible(self) -> None:
        a, b = Path(self.mktemp()), Path(self.mktemp())
        for p in (a, b):
            tb.write_initramfs(tb.initramfs_entries(self.root, self.RELEASE, self.runner), p)
        self.assertEqual(a.read_bytes(), b.read_bytes())

    def test_missingModule(self) -> None:
        next((self.root / "lib/modules").rglob("virtio_blk.ko")).unlink()
        e = self.assertRaises(tp.TinyImageError, list,
                              tb.initramfs_entries(self.root, self.RELEASE, self.runner))
        self.assertIn("virtio_blk", str(e))

    def test_missingLibrary(self) -> None:
        (self.root / "lib/x86_64-linux-gnu/libz.so.1.2.13").unlink()
        e = self.assertRaises(tp.TinyImageError, list,
                              tb.initramfs_entries(self.root, self.RELEASE, self.runner))
        self.assertIn("libz.so.1", str(e))


class DownloadTests(unittest.TestCase):
    """
    A package apt cannot fetch fails the build with one clear line.
    """

    def test_downloadFails(self) -> None:
        def runner(argv):
            raise tp.CommandFailed(argv, "E: Version '9' for 'busybox-static' was not found")
        e = self.assertRaises(tp.TinyImageError, tp.download_and_extract,
                              [tp.Package("busybox-static", "9")], Path(self.mktemp()), runner)
        self.assertEqual(str(e), "cannot download busybox-static=9: "
                                 "E: Version '9' for 'busybox-static' was not found")

    def test_runFailure(self) -> None:
        e = self.assertRaises(tp.CommandFailed, tp.run, ["sh", "-c", "echo oops >&2; exit 3"])
        self.assertEqual(e.detail, "oops")

    def test_runMissingTool(self) -> None:
        e = self.assertRaises(tp.TinyImageError, tp.run, ["/nonexistent/nova-tool"])
        self.assertIn("not found", str(e))
