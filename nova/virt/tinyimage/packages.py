"""
Debian package handling for the tiny image: resolve, download, extract.

The parsing helpers are pure functions over C{apt-cache}/C{ldd} output so
they can be tested without an archive; the rest shells out to apt and dpkg
(the build is a command-line tool, never run on a reactor thread).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Callable, Sequence

import attrs

from nova.exception import NovaError

KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"
DROPBEAR = "dropbear-bin"

_KERNEL_RE = re.compile(r"^linux-image-(\d[\w.+~-]*)-cloud-amd64$")

#: Runs an argv and returns its stdout; raises L{TinyImageError} on failure.
Runner = Callable[[Sequence[str]], str]


class TinyImageError(NovaError):
    """
    The tiny image could not be built (a package, a file or a tool is missing).
    """


class CommandFailed(TinyImageError):
    """
    A command exited non-zero.

    @ivar detail: its last non-empty stderr line (or the exit status).
    """

    def __init__(self, argv: Sequence[str], detail: str) -> None:
        super().__init__(f"{' '.join(argv)}: {detail}")
        self.detail = detail


@attrs.frozen
class Package:
    """
    A concrete Debian package at the version apt would download.

    @ivar name: binary package name.
    @ivar version: candidate version.
    """

    name: str
    version: str


def run(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """
    Run a command and return its stdout.

    @param argv: command and arguments (no shell).
    @param env: extra environment variables.
    @raise TinyImageError: the command is missing or exits non-zero; the
        message is one line with the command and its last stderr line.
    """
    full_env = dict(os.environ, LC_ALL="C", **(env or {}))
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True,
                              env=full_env, timeout=600)
    except FileNotFoundError:
        raise TinyImageError(f"{argv[0]} not found: install it first")
    except subprocess.TimeoutExpired:
        raise TinyImageError(f"{' '.join(argv)} timed out")
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise CommandFailed(argv, last)
    return proc.stdout


def parse_depends(text: str) -> dict[str, list[str]]:
    """
    Extract the hard dependencies from C{apt-cache depends PKG...} output.

    Only C{Depends} and C{PreDepends} lines count; for alternatives
    (C{|Depends:}) the first one is taken; virtual names (C{<...>}) are
    skipped.

    @param text: the command's stdout (one section per package).
    @return: package name -> its dependencies, in order, without duplicates.
    """
    result: dict[str, list[str]] = {}
    names: list[str] = []
    alternative = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            names = result.setdefault(line.strip(), [])
            alternative = False
            continue
        m = re.match(r"^\s+(\|?)(Pre)?Depends:\s+(\S+)", line)
        if not m:
            continue
        pipe, _, name = m.groups()
        if not alternative and not name.startswith("<") and name not in names:
            names.append(name)
        # After "|Depends: a" the next line is an alternative of a.
        alternative = bool(pipe)
    return result


def kernel_package(depends: Sequence[str]) -> str:
    """
    Pick the concrete kernel image out of the meta package's dependencies.

    @param depends: L{parse_depends} of C{linux-image-cloud-amd64}.
    @return: e.g. C{linux-image-6.1.0-56-cloud-amd64}.
    @raise TinyImageError: no C{linux-image-<version>-cloud-amd64} among them.
    """
    for name in depends:
        if _KERNEL_RE.match(name):
            return name
    raise TinyImageError(f"{KERNEL_META} depends on no linux-image-<version>-cloud-amd64")


def kernel_release(package_name: str) -> str:
    """
    @return: the C{uname -r} of a kernel package, e.g. C{6.1.0-56-cloud-amd64}.
    """
    return package_name[len("linux-image-"):]


def parse_candidates(text: str) -> dict[str, str | None]:
    """
    @param text: C{apt-cache policy PKG...} output.
    @return: package name -> candidate version (C{None} when there is none).
    """
    result: dict[str, str | None] = {}
    current = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            current = line.strip()[:-1]
            result[current] = None
            continue
        m = re.match(r"^\s+Candidate:\s+(\S+)", line)
        if m and current is not None:
            result[current] = None if m.group(1) == "(none)" else m.group(1)
    return result


def parse_ldd(text: str) -> list[str]:
    """
    The shared objects C{ldd} lists, by soname (the dynamic loader included).

    @param text: C{ldd BINARY} output.
    @return: sonames such as C{libz.so.1} and C{ld-linux-x86-64.so.2}.
    """
    names: list[str] = []
    for line in text.splitlines():
        first = line.strip().split(" ", 1)[0]
        if not first or first.startswith("linux-vdso") or first == "statically":
            continue
        names.append(os.path.basename(first))
    return names


def is_library_package(name: str) -> bool:
    """
    @return: whether a package name looks like a shared-library package
        (C{libc6}, C{libgmp10}, C{zlib1g}...), whose files dropbear may need.
    """
    return bool(re.match(r"^(lib|zlib)[\w.+-]*\d[\w.+-]*$", name)) and not name.endswith(
        ("-dev", "-bin", "-common", "-data"))


def resolve(runner: Runner = run) -> list[Package]:
    """
    The packages the image is built from, at their candidate versions.

    @return: kernel, busybox-static, dropbear-bin and dropbear's library
        dependencies, in that order.
    @raise TinyImageError: a package is unknown to apt or has no candidate.
    """
    # One apt-cache call per dependency level: each call costs ~0.4 s.
    deps = parse_depends(runner(["apt-cache", "depends", KERNEL_META, DROPBEAR]))
    if KERNEL_META not in deps:
        raise TinyImageError(f"package {KERNEL_META} is unknown to apt (run apt-get update?)")
    names = [kernel_package(deps[KERNEL_META]), BUSYBOX, DROPBEAR]
    # dropbear is dynamically linked: take its libraries, and theirs, from
    # the archive too (library packages only, so the walk stays small).
    level = [d for d in deps.get(DROPBEAR, []) if is_library_package(d)]
    while level:
        level = [d for d in dict.fromkeys(level) if d not in names]
        names += level
        if level:
            deps = parse_depends(runner(["apt-cache", "depends", *level]))
            level = [d for name in level for d in deps.get(name, []) if is_library_package(d)]
    candidates = parse_candidates(runner(["apt-cache", "policy", *names]))
    packages = []
    for name in names:
        version = candidates.get(name)
        if version is None:
            raise TinyImageError(f"package {name} has no installation candidate "
                                 "(run apt-get update?)")
        packages.append(Package(name, version))
    return packages


def download_and_extract(packages: Sequence[Package], work: Path,
                         runner: Runner = run) -> Path:
    """
    C{apt-get download} each package at its version and C{dpkg-deb -x} it.

    @param work: scratch directory (debs land in C{work/debs}).
    @return: the directory all packages were extracted into.
    @raise TinyImageError: a package cannot be downloaded or extracted.
    """
    debs = work / "debs"
    root = work / "root"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        before = set(debs.iterdir())
        try:
            # Sandbox user root: _apt may not write into our scratch dir.
            runner(["sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", str(debs),
                    "apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root",
                    f"{pkg.name}={pkg.version}"])
        except CommandFailed as e:
            raise TinyImageError(f"cannot download {pkg.name}={pkg.version}: {e.detail}")
        new = sorted(set(debs.iterdir()) - before)
        if len(new) != 1:
            raise TinyImageError(f"cannot download {pkg.name}={pkg.version}: no .deb appeared")
        runner(["dpkg-deb", "-x", str(new[0]), str(root)])
    return root


def find_in_tree(root: Path, relpath: str) -> Path:
    """
    Resolve C{relpath} inside an extracted tree, following symlinks (absolute
    ones relative to C{root}) without ever leaving it.

    @raise TinyImageError: the path does not exist in the tree.
    """
    path = relpath.strip("/")
    for _ in range(40):
        candidate = root / path
        if candidate.is_symlink():
            target = os.readlink(candidate)
            if target.startswith("/"):
                path = target.strip("/")
            else:
                path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if path.startswith(".."):
                break
            continue
        if candidate.exists():
            return candidate
        break
    raise TinyImageError(f"{relpath} not found in the extracted packages")


def find_library(root: Path, soname: str) -> Path:
    """
    Find a shared library by soname in the usual Debian library directories.

    @raise TinyImageError: no package provided it.
    """
    for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"):
        if (root / d / soname).exists() or (root / d / soname).is_symlink():
            return find_in_tree(root, f"{d}/{soname}")
    raise TinyImageError(f"shared library {soname} not found in the extracted packages")


def needed_libraries(root: Path, binary: Path, runner: Runner = run) -> list[str]:
    """
    The sonames C{binary} needs, resolved against the extracted libraries.
    """
    libdirs = ":".join(str(root / d) for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"))
    out = runner(["env", f"LD_LIBRARY_PATH={libdirs}", "ldd", str(binary)])
    return parse_ldd(out)
