"""
nova-volume put together from the process's L{NovaServer}: the backing
store, the export driver, the manager on the C{volume} topics with its
exports rebuilt from Redis.
"""

from __future__ import annotations

import functools
from typing import Any

from twisted.application.service import IService

from nova.config import ConfigError
from nova.utils.process.runner import ProcessRunner
from nova.volume.backing import LvmBacking, SparseFileBacking
from nova.volume.exports.fake import FakeExportDriver


def volume_dir(server: Any) -> Any:
    """@return: where this volume host keeps its files (kept short: socket paths)."""
    return (server.config.state_dir / "volumes").absolute()


def make_backing(server: Any) -> Any:
    """@return: the configured backing store."""
    volume = server.config.volume
    if volume.backing == "file":
        return SparseFileBacking(server.run_in_thread, str(volume_dir(server) / "files"))
    if volume.backing == "lvm":
        return LvmBacking(ProcessRunner(server.reactor), volume.volume_group)
    raise ConfigError(f"[volume] backing = {volume.backing!r}: expected file or lvm")


def make_exports(server: Any) -> tuple[Any, Any]:
    """
    @return: the configured export driver, and its point-in-time copy of an
        attached volume (C{None} where the driver has none).
    """
    volume = server.config.volume
    netns = volume.host_netns or None
    state = volume_dir(server) / volume.driver
    if volume.driver == "fake":
        return FakeExportDriver("nbd", str(state)), None
    if volume.driver == "nbd":
        from nova.volume.exports.nbd import NbdExportDriver, point_in_time_copy
        driver = NbdExportDriver(ProcessRunner(server.reactor), server.reactor, str(state),
                                 netns=netns)
        return driver, functools.partial(point_in_time_copy, driver)
    if volume.driver == "iscsi":
        from nova.volume.exports.iscsi import IscsiExportDriver
        return IscsiExportDriver(ProcessRunner(server.reactor), server.reactor, str(state),
                                 portal_address=volume.iscsi_portal_address,
                                 control_port=volume.iscsi_control_port, netns=netns), None
    if volume.driver == "aoe":
        from nova.volume.exports.aoe import AoeExportDriver
        if not volume.aoe_interface:
            raise ConfigError("[volume] driver = aoe needs aoe_interface")
        return AoeExportDriver(server.reactor, str(state), netif=volume.aoe_interface,
                               run_in_thread=server.run_in_thread, netns=netns), None
    raise ConfigError(f"[volume] driver = {volume.driver!r}: expected nbd, iscsi, aoe or fake")


async def volume_components(server: Any) -> list[IService]:
    """@return: nova-volume: its manager on the C{volume} topics, exports rebuilt first."""
    from nova.tap.components import service
    from nova.volume.manager import VolumeManager
    from nova.volume.rpcapi import TOPIC

    config = server.config
    await server.run_in_thread(volume_dir(server).mkdir, 0o700, True, True)
    if config.volume.host_netns and config.volume.driver != "fake":
        from nova.network.wiring import ensure_namespace
        await ensure_namespace(ProcessRunner(server.reactor), config.volume.host_netns)
    exports, copy_in_use = make_exports(server)
    manager = VolumeManager(config.host, server.reactor, volumes=server.volumes,
                            snapshots=server.snapshots, backing=make_backing(server),
                            exports=exports, store_client=server.service_objectstore_client,
                            copy_in_use=copy_in_use,
                            scratch_dir=str(volume_dir(server) / "scratch"),
                            run_in_thread=server.run_in_thread)
    await manager.init_host()
    return [service(server, manager, TOPIC)]
