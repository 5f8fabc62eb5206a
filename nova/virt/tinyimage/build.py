"""
Build the tiny test image (C{vmlinuz} + C{initrd.img}) from Debian packages.

The build is keyed by the resolved package versions and the guest files: a
second run with the same inputs only checks the manifest and returns.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import lzma
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

from nova.virt.tinyimage import newc
from nova.virt.tinyimage.packages import (
    Package, Runner, TinyImageError, download_and_extract,
    find_in_tree, find_library, kernel_release, needed_libraries, resolve, run,
)

#: Bumped when the layout of the image changes in a way the inputs miss.
FORMAT = 1

#: virtio drivers in dependency order (the .deb has no modules.dep), then
#: evdev and button so busybox acpid sees the ACPI power button.
MODULES = (
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
    "virtio_pci", "virtio_mmio", "failover", "net_failover", "virtio_net",
    "virtio_blk", "evdev", "button",
)

#: The line the guest prints on ttyS0 when it is up, before its fields.
MARKER = "NOVA-TINY-READY"

MANIFEST = "manifest.json"
KERNEL = "vmlinuz"
INITRD = "initrd.img"

GUEST_DIR = Path(__file__).parent / "guest"

#: Guest files: source name under guest/ -> (path in the image, permissions).
GUEST_FILES = {
    "rcS": ("etc/nova-tiny/rcS", 0o755),
    "udhcpc.script": ("etc/nova-tiny/udhcpc.script", 0o755),
    "inittab": ("etc/inittab", 0o644),
    "acpi-power": ("etc/acpi/PWRF/00000080", 0o755),
    "passwd": ("etc/passwd", 0o644),
    "group": ("etc/group", 0o644),
    "shells": ("etc/shells", 0o644),
}

DIRECTORIES = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys",
               "run", "var", "var/log", "root", "root/.ssh", "etc",
               "etc/nova-tiny", "etc/dropbear", "etc/acpi", "etc/acpi/PWRF",
               "lib", "lib/modules", "lib/x86_64-linux-gnu", "lib64")


def default_output_dir(environ: dict[str, str] | None = None) -> Path:
    """
    Where the image goes unless told otherwise.

    @return: C{$NOVA_STATE_DIR/images/tiny} when that is set, else
        C{var/images/tiny} in the source checkout.
    """
    env = os.environ if environ is None else environ
    state = env.get("NOVA_STATE_DIR")
    if state:
        return Path(state) / "images" / "tiny"
    return Path(__file__).resolve().parents[3] / "var" / "images" / "tiny"


def guest_files() -> dict[str, bytes]:
    """
    @return: the guest-side files by their path in the image, with the
        module list generated from L{MODULES}.
    """
    files = {dest: (GUEST_DIR / src).read_bytes() for src, (dest, _) in GUEST_FILES.items()}
    files["etc/nova-tiny/modules"] = ("\n".join(MODULES) + "\n").encode()
    return files


def inputs_key(packages: Sequence[Package]) -> str:
    """
    The cache key: format, package versions and guest files.

    @return: a hex sha256.
    """
    h = hashlib.sha256(f"format={FORMAT}\n".encode())
    for p in packages:
        h.update(f"pkg {p.name}={p.version}\n".encode())
    for path, data in sorted(guest_files().items()):
        h.update(f"file {path} {hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """
    @return: the hex sha256 of a file's contents.
    """
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_manifest(out: Path, key: str) -> dict | None:
    """
    @return: the manifest when C{out} already holds a complete image built
        from C{key} (files present, checksums matching), else C{None}.
    """
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key:
        return None
    for name in (KERNEL, INITRD):
        entry = manifest.get("files", {}).get(name)
        path = out / name
        if not entry or not path.is_file() or sha256_file(path) != entry.get("sha256"):
            return None
    return manifest


def _read_module(root: Path, release: str, name: str) -> bytes:
    base = root / "lib" / "modules" / release / "kernel"
    for path in base.rglob(name + ".ko*"):
        if path.name == name + ".ko":
            return path.read_bytes()
        if path.name == name + ".ko.xz":
            # busybox insmod cannot decompress; do it here.
            return lzma.decompress(path.read_bytes())
    raise TinyImageError(f"kernel module {name} not found in linux-image-{release}")


def _busybox_applets(busybox: Path, runner: Runner) -> list[str]:
    out = runner([str(busybox), "--list-full"])
    return [line.strip() for line in out.splitlines() if line.strip()]


def initramfs_entries(root: Path, release: str, runner: Runner = run) -> Iterator[newc.Entry]:
    """
    Every member of the initramfs, from an extracted package tree.

    @param root: where the packages were extracted.
    @param release: the kernel release whose modules to take.
    """
    for d in DIRECTORIES:
        yield newc.directory(d, 0o700 if d.startswith("root") else 0o755)
    yield newc.directory("tmp", 0o1777)
    busybox = find_in_tree(root, "bin/busybox")
    yield newc.regular("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in _busybox_applets(busybox, runner):
        if applet.strip("/") != "bin/busybox":
            yield newc.symlink(applet, "/bin/busybox")
    # The kernel runs /init; busybox init then reads /etc/inittab.
    yield newc.symlink("init", "/bin/busybox")
    for name in MODULES:
        yield newc.regular(f"lib/modules/{name}.ko", _read_module(root, release, name))
    for binary in ("usr/sbin/dropbear", "usr/bin/dropbearkey"):
        path = find_in_tree(root, binary)
        yield newc.regular(binary, path.read_bytes(), 0o755)
    libs: set[str] = set()
    for binary in ("usr/sbin/dropbear", "usr/bin/dropbearkey"):
        libs.update(needed_libraries(root, find_in_tree(root, binary), runner))
    for soname in sorted(libs):
        yield newc.regular(f"lib/x86_64-linux-gnu/{soname}",
                           find_library(root, soname).read_bytes(), 0o755)
    if "ld-linux-x86-64.so.2" in libs:
        yield newc.symlink("lib64/ld-linux-x86-64.so.2",
                           "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    perms = {dest: mode for dest, mode in GUEST_FILES.values()}
    for path, data in guest_files().items():
        yield newc.regular(path, data, perms.get(path, 0o644))


def write_initramfs(entries: Iterator[newc.Entry], path: Path) -> None:
    """
    Write a gzip-compressed newc archive (mtime 0, so the bytes are
    reproducible).
    """
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                compresslevel=6) as gz:
        newc.write_newc(entries, gz)


def _describe(path: Path) -> dict:
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def build(out: Path, runner: Runner = run, log: Callable[[str], None] = print) -> dict:
    """
    Build the image into C{out} unless it is already there for these inputs.

    Concurrent builds into the same directory serialise on a lock file; the
    manifest is written last, so a crashed build is simply redone.

    @param out: output directory (created).
    @param runner: command runner (tests substitute it).
    @param log: one-line progress messages go here.
    @return: the manifest: C{key}, C{packages} (name -> version),
        C{kernel_release}, C{files} (name -> sha256 and size),
        C{build_seconds}, C{cached} (true when nothing was rebuilt).
    @raise TinyImageError: a package, file or tool is missing.
    """
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        packages = resolve(runner)
        key = inputs_key(packages)
        manifest = cached_manifest(out, key)
        if manifest is not None:
            return dict(manifest, cached=True)
        log(f"building the tiny image into {out}")
        with tempfile.TemporaryDirectory(prefix=".build-", dir=out) as tmp:
            work = Path(tmp)
            root = download_and_extract(packages, work, runner)
            release = kernel_release(packages[0].name)
            kernel = find_in_tree(root, f"boot/vmlinuz-{release}")
            shutil.copyfile(kernel, work / KERNEL)
            write_initramfs(initramfs_entries(root, release, runner), work / INITRD)
            files = {name: _describe(work / name) for name in (KERNEL, INITRD)}
            for name in (KERNEL, INITRD):
                os.replace(work / name, out / name)
        manifest = {
            "format": FORMAT,
            "key": key,
            "packages": {p.name: p.version for p in packages},
            "kernel_release": release,
            "modules": list(MODULES),
            "marker": MARKER,
            "files": files,
            "build_seconds": round(time.monotonic() - started, 2),
        }
        tmp_manifest = out / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_manifest, out / MANIFEST)
        return dict(manifest, cached=False)
