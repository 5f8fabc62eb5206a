"""
The compute host's AoE initiator: how an AoE export (vblade's target
C{e<shelf>.<slot>}) becomes a block device a guest can be given.

QEMU has no AoE client, so 2010 nova's way is kept: the host kernel's
C{aoe} module is the initiator. Writing to C{/dev/etherd/discover} (what
aoetools' C{aoe-discover} does) makes it broadcast a query on its network
interfaces; every target that answers appears as C{/dev/etherd/e<shelf>.<slot>},
which libvirt attaches as a C{<disk type='block'>}.

The module works in the initial network namespace only and must share an
Ethernet segment with the volume host's C{[volume] aoe_interface}. Where the
kernel has no C{aoe} module (this project's test machines), attaching is
refused with that reason; nova never loads kernel modules itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable

from nova.compute.volumes import UnsupportedExport
from nova.utils.polling import poll_until
from nova.volume.exports.aoe import MAX_SHELF, MAX_SLOT

__all__ = ["AoeInitiator"]


class AoeInitiator:
    """
    Finds (discovers if need be) the block device of an AoE target.

    @param reactor: times the wait for the device (C{IReactorTime}).
    @param run_in_thread: C{(f, *args) -> Awaitable}: runs the blocking
        write to the discover file off the reactor.
    @param etherd_dir: the aoe module's device directory.
    @param module_dir: where sysfs shows the module when it is loaded.
    @param timeout: seconds to wait for a target's device to appear.
    @param interval: seconds between looks.
    """

    def __init__(self, reactor: Any, run_in_thread: Callable[..., Awaitable[Any]], *,
                 etherd_dir: Path = Path("/dev/etherd"),
                 module_dir: Path = Path("/sys/module/aoe"),
                 timeout: float = 10.0, interval: float = 0.1) -> None:
        self._reactor = reactor
        self._run_in_thread = run_in_thread
        self._etherd = etherd_dir
        self._module = module_dir
        self._timeout = timeout
        self._interval = interval

    def available(self) -> bool:
        """@return: whether the kernel's aoe module is loaded."""
        return self._module.is_dir()

    async def device(self, shelf: object, slot: object) -> str:
        """
        @return: the path of target C{e<shelf>.<slot>}'s block device, once
            it exists (a discovery is sent when it does not yet).
        @raise UnsupportedExport: no aoe module, a malformed shelf or slot,
            or no such target answered within the timeout.
        """
        for name, value, high in (("shelf", shelf, MAX_SHELF), ("slot", slot, MAX_SLOT)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
                raise UnsupportedExport(f"malformed aoe export: {name} {value!r}")
        if not await self._run_in_thread(self.available):
            raise UnsupportedExport(
                "this compute host cannot attach AoE exports: they need the aoe kernel "
                f"module (which makes {self._etherd}/eS.N) loaded on the compute host; "
                "use the nbd or iscsi volume driver")
        path = self._etherd / f"e{shelf}.{slot}"
        if await self._run_in_thread(path.exists):
            return str(path)
        await self._run_in_thread(self._discover)
        if not await poll_until(self._reactor, lambda: self._run_in_thread(path.exists),
                                timeout=self._timeout, interval=self._interval):
            raise UnsupportedExport(
                f"no AoE target e{shelf}.{slot} answered the compute host's discovery "
                f"within {self._timeout:g} s (is the volume host's aoe_interface on "
                "this host's Ethernet segment?)")
        return str(path)

    def _discover(self) -> None:
        # the module broadcasts a config query on every interface it may use
        with open(self._etherd / "discover", "wb") as f:
            f.write(b"\n")
