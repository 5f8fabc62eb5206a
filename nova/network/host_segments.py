"""
How a VLAN network's segment reaches other hosts: an 802.1Q interface
C{novavl<vlan>} on a trunk where the kernel has 8021q, else a VXLAN
interface C{novavx<vlan>} (VNI = VLAN id). Decided once per host, at the
first network, and logged. A flat network has no segment of nova's.
"""

from __future__ import annotations

import os
from typing import Any, Awaitable, Callable, Sequence

import attr
from twisted.logger import Logger

from nova.network import linux_net as ln
from nova.utils import validate
from nova.utils.validate import InvalidIdentifier

log = Logger()

__all__ = ["SegmentConfig", "Segments"]

Links = dict[str, dict[str, Any]]


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class SegmentConfig:
    """
    How a VLAN network's segment reaches other hosts.

    @ivar kind: C{auto} (802.1Q when C{vlan_parent} is set and the kernel
        can, else VXLAN), C{vlan} or C{vxlan}.
    @ivar vlan_parent: the trunk interface 802.1Q interfaces are made on.
    @ivar vxlan_local: this host's tunnel address.
    @ivar vxlan_remotes: peer hosts' tunnel addresses (unicast flooding).
    @ivar vxlan_group: a multicast group instead of C{vxlan_remotes}.
    @ivar vxlan_dev: the underlay interface (needed with a group).
    @ivar vxlan_port: the UDP port.
    """

    kind: str = "auto"
    vlan_parent: str | None = None
    vxlan_local: str | None = None
    vxlan_remotes: tuple[str, ...] = attr.ib(default=(), converter=tuple)
    vxlan_group: str | None = None
    vxlan_dev: str | None = None
    vxlan_port: int = ln.VXLAN_PORT

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("auto", "vlan", "vxlan"):
            raise InvalidIdentifier(f"segment kind {self.kind!r}: auto, vlan or vxlan")
        if self.kind == "vlan" and self.vlan_parent is None:
            raise InvalidIdentifier("802.1Q segments need vlan_parent")
        if self.vxlan_remotes and self.vxlan_group:
            raise InvalidIdentifier("VXLAN peers are remotes or a group, not both")
        # Build a probe command: it validates every field at once.
        ln.vxlan_add(1, local=self.vxlan_local, group=self.vxlan_group, dev=self.vxlan_dev,
                     remote=self.vxlan_remotes[0] if self.vxlan_remotes else None,
                     port=self.vxlan_port)
        for remote in self.vxlan_remotes:
            validate.ipv4_address(remote)
        if self.vlan_parent is not None:
            validate.interface_name(self.vlan_parent)


class Segments:
    """
    Makes VLAN networks' segment interfaces on one host.

    @param config: how.
    @param run: runs one host command (in the host's namespace).
    @param proc_dir: where C{net/vlan/config} tells whether 8021q is loaded.
    @param where: the host's name for the log.
    """

    def __init__(self, config: SegmentConfig, run: Callable[..., Awaitable[Any]],
                 proc_dir: str, where: str) -> None:
        self._config = config
        self._run = run
        self._proc_dir = proc_dir
        self._where = where
        self.kind: str | None = None if config.kind == "auto" else config.kind

    async def _decide(self, vlan: int, links: Links) -> None:
        self.kind = "vxlan"
        parent = self._config.vlan_parent
        if parent is not None:
            name = ln.vlan_interface_name(vlan)
            if os.path.exists(os.path.join(self._proc_dir, "net", "vlan", "config")) \
                    or name in links:
                self.kind = "vlan"
            else:  # no 8021q loaded: try once, it may load on demand
                tried = await self._run(ln.vlan_add(vlan, parent), check=False)
                if tried.exit_code == 0:
                    self.kind = "vlan"
                    links[name] = {"ifname": name}
        log.info("network host {ns}: project segments are {kind}", ns=self._where,
                 kind=self.kind)

    async def ensure(self, vlan: int, links: Links) -> str:
        """
        Make the segment interface of VLAN C{vlan} unless C{links} has it.

        @param vlan: the VLAN id.
        @param links: the host's links (updated when a probe made one).
        @return: its name (to enslave to the bridge).
        """
        seg = self._config
        if self.kind is None:
            await self._decide(vlan, links)
        if self.kind == "vlan":
            name = ln.vlan_interface_name(vlan)
            if name not in links:
                await self._run(ln.vlan_add(vlan, seg.vlan_parent))  # type: ignore[arg-type]
            return name
        name = ln.vxlan_name(vlan)
        if name not in links:
            remotes: Sequence[str] = seg.vxlan_remotes
            await self._run(ln.vxlan_add(vlan, local=seg.vxlan_local,
                                         remote=remotes[0] if remotes else None,
                                         group=seg.vxlan_group, dev=seg.vxlan_dev,
                                         port=seg.vxlan_port))
            for remote in remotes[1:]:
                await self._run(ln.vxlan_fdb_append(vlan, remote))
        return name
