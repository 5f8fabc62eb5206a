"""
The files of a host's private libvirtd: where they live under the host's
state directory (L{HostLayout}) and what they say (L{libvirtd_conf},
L{qemu_conf}).

Running as root, libvirtd and its qemu driver use fixed system paths
(C{/etc/libvirt}, C{/run/libvirt}, C{/var/lib/libvirt}, C{/var/cache/libvirt},
C{/var/log/libvirt}): no option or environment variable moves them (the
C{XDG_*} variables only count for unprivileged session daemons, which could
not create taps and bridges). So each host's libvirtd runs in its own mount
namespace where private directories are bind-mounted over those paths
(L{BIND_TARGETS}, done by L{nova.virt.libvirt.mountexec}); its sockets go
to C{unix_sock_dir}, a plain directory the nova services reach from the
root namespace.
"""

from __future__ import annotations

import os

import attrs

#: Private directory name under the state directory -> the system path it hides.
BIND_TARGETS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}

#: The longest path a unix socket may have (C{sun_path} is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107

SOCKET_NAME = "libvirt-sock"


def _quote(value: str) -> str:
    # libvirt's config parser has no escapes worth trusting: refuse, don't escape.
    if any(c in value for c in '"\\\n\r\0'):
        raise ValueError(f"{value!r} cannot go into a libvirt config file")
    return f'"{value}"'


@attrs.frozen
class HostLayout:
    """
    Where one host's libvirtd keeps everything.

    @ivar state_dir: the host's own directory (absolute).
    @ivar cache_dir: bound over C{/var/cache/libvirt}; it only holds qemu's
        probed capabilities, so hosts may share one to skip the 8-12 s probe.
    """

    state_dir: str
    cache_dir: str

    @classmethod
    def under(cls, state_dir: str, cache_dir: str | None = None) -> "HostLayout":
        """
        @param state_dir: the host's directory.
        @param cache_dir: a capability cache to use instead of a private one.
        @return: the layout.
        @raise ValueError: when the socket path would be too long for a unix
            socket, or a path holds characters a config file cannot carry.
        """
        state_dir = os.path.abspath(state_dir)
        cache = os.path.abspath(cache_dir) if cache_dir is not None else os.path.join(
            state_dir, "cache")
        layout = cls(state_dir=state_dir, cache_dir=cache)
        if len(os.fsencode(layout.socket)) > MAX_SOCKET_PATH:
            raise ValueError(f"state directory {state_dir!r} is too long: the socket path"
                             f" must fit in {MAX_SOCKET_PATH} bytes")
        _quote(layout.socket_dir)
        return layout

    def private(self, name: str) -> str:
        """
        @param name: a key of L{BIND_TARGETS}.
        @return: the private directory bound over that system path.
        """
        if name == "cache":
            return self.cache_dir
        return os.path.join(self.state_dir, name)

    @property
    def socket_dir(self) -> str:
        """The directory of libvirtd's sockets (outside the bound paths)."""
        return os.path.join(self.state_dir, "sock")

    @property
    def socket(self) -> str:
        """The read-write socket the driver connects to."""
        return os.path.join(self.socket_dir, SOCKET_NAME)

    @property
    def libvirtd_conf(self) -> str:
        """The file given to C{libvirtd -f}."""
        return os.path.join(self.private("etc"), "libvirtd.conf")

    @property
    def qemu_conf(self) -> str:
        """Read by the qemu driver as C{/etc/libvirt/qemu.conf}."""
        return os.path.join(self.private("etc"), "qemu.conf")

    @property
    def pid_file(self) -> str:
        """libvirtd's pid file (also its lock against a second daemon)."""
        return os.path.join(self.private("run"), "libvirtd.pid")

    @property
    def uri(self) -> str:
        """The libvirt URI of this daemon."""
        return f"qemu+unix:///system?socket={self.socket}"

    def binds(self) -> list[tuple[str, str]]:
        """@return: C{(private directory, system path)} pairs to bind-mount."""
        return [(self.private(name), target) for name, target in BIND_TARGETS.items()]


def libvirtd_conf(layout: HostLayout) -> str:
    """
    @return: the text of C{libvirtd.conf}: unix sockets only, in the private
        socket directory, reachable by root only, without authentication.
    """
    return "\n".join([
        "# Written by nova for one host; see nova.virt.libvirt.hostconf.",
        "listen_tls = 0",
        "listen_tcp = 0",
        f"unix_sock_dir = {_quote(layout.socket_dir)}",
        # Root-only sockets make "no authentication" safe.
        'unix_sock_group = "root"',
        'unix_sock_ro_perms = "0700"',
        'unix_sock_rw_perms = "0700"',
        'unix_sock_admin_perms = "0700"',
        'auth_unix_ro = "none"',
        'auth_unix_rw = "none"',
        "",
    ])


def qemu_conf() -> str:
    """
    @return: the text of C{qemu.conf}: guests run as root without a
        security driver or per-guest namespaces or cgroups (no systemd, no
        package set-up here), and qemu's output goes to plain files, not
        to virtlogd.
    """
    return "\n".join([
        "# Written by nova for one host; see nova.virt.libvirt.hostconf.",
        'user = "root"',
        'group = "root"',
        "dynamic_ownership = 0",
        'security_driver = "none"',
        'stdio_handler = "file"',
        # A per-guest mount namespace would hide the console log and image
        # paths behind a private /dev; cgroups need a controller layout
        # that only systemd sets up here.
        "namespaces = []",
        "cgroup_controllers = []",
        "",
    ])


def write_files(layout: HostLayout) -> None:
    """
    Create the private directories, the system mount points they are bound
    over, and both config files. Idempotent. Blocking: run it in a thread.
    """
    for _name, target in BIND_TARGETS.items():
        os.makedirs(target, exist_ok=True)
    for name in BIND_TARGETS:
        os.makedirs(layout.private(name), mode=0o700, exist_ok=True)
    os.makedirs(layout.socket_dir, mode=0o700, exist_ok=True)
    for path, text in ((layout.libvirtd_conf, libvirtd_conf(layout)),
                       (layout.qemu_conf, qemu_conf())):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
