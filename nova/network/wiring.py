"""
nova-network put together from the process's L{NovaServer}: the host's
plumbing, the manager on the C{network} topics, the DHCP lease events from
C{bin/nova-dhcpbridge}, the metadata proxy inside the host's namespace, and
the networks and elastic IPs of a fresh cloud.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.logger import Logger

from nova.config import ConfigError
from nova.network.fake import FakeNetworkHost
from nova.network.host import NetworkHost
from nova.utils import validate
from nova.utils.process.runner import ProcessRunner

log = Logger()


def make_plumbing(server: Any, netns: str) -> Any:
    """
    @return: the network host object for C{netns} (empty: the root
        namespace), real or, with C{[network] driver = fake}, in memory.
    """
    config = server.config
    network = config.network
    if network.driver == "fake":
        return FakeNetworkHost()
    if network.driver != "linux":
        raise ConfigError(f"[network] driver = {network.driver!r}: expected linux or fake")
    name = netns or "root"
    state = (config.state_dir / "hosts" / name / "network").absolute()
    return NetworkHost(ProcessRunner(server.reactor), netns or None, str(state),
                       clock=server.reactor, run_in_thread=server.run_in_thread,
                       lease_time=network.dhcp_lease_time,
                       public_interface=network.public_interface or None,
                       routing_source_ip=network.routing_source_ip or None,
                       dhcp_event_socket=str(dhcp_socket_path(server)))


def dhcp_socket_path(server: Any) -> Any:
    """@return: where nova-network listens for C{bin/nova-dhcpbridge}'s events."""
    netns = server.config.network.host_netns or "root"
    return (server.config.state_dir / "hosts" / netns / "dhcpbridge.sock").absolute()


async def ensure_namespace(runner: Any, netns: str) -> None:
    """Create the host's network namespace (with C{lo} up) if it does not exist."""
    listed = await runner.run(["ip", "netns", "list"])
    names = {line.split()[0] for line in listed.stdout.decode().splitlines() if line.strip()}
    if netns not in names:
        result = await runner.run(["ip", "netns", "add", netns], check=False)
        if result.exit_code != 0 and b"exists" not in result.stderr:
            raise ConfigError(f"cannot create network namespace {netns}: "
                              f"{result.stderr.decode(errors='replace').strip()}")
    await runner.run(["ip", "link", "set", "lo", "up"], netns=netns)


async def ensure_public_interface(runner: Any, netns: str | None, name: str) -> None:
    """
    Elastic IPs live on the public interface. Where the host has none of
    that name (the all-in-one's fresh namespace), nova makes an empty bridge
    (kernels without the C{dummy} module have bridges): the addresses are
    then reachable from inside the host only, until an admin connects it
    (enslaves an uplink, or a veth to the outside).
    """
    name = validate.interface_name(name)
    shown = await runner.run(["ip", "link", "show", "dev", name], netns=netns, check=False)
    if shown.exit_code != 0:
        await runner.run(["ip", "link", "add", "name", name, "type", "bridge"], netns=netns)
        log.info("made public interface {name} (an empty bridge)", name=name)
    await runner.run(["ip", "link", "set", name, "up"], netns=netns)


async def bootstrap_networks(server: Any) -> None:
    """
    A fresh cloud gets the networks and elastic IPs its configuration
    describes, as if an admin had run C{nova-manage network create} and
    C{nova-manage floating create}: only when there are none at all.
    """
    network = server.config.network
    if not await server.networks.list():
        vlan = network.vlan_start if network.manager == "vlan" else None
        bridge = network.flat_network_bridge if network.manager == "flat" else None
        count = network.num_networks if network.manager == "vlan" else 1
        made = await server.networks.create_networks(network.fixed_range, count,
                                                      network.network_size, vlan,
                                                      bridge=bridge)
        log.info("created {n} {kind} network(s) in {range}", n=len(made),
                 kind=network.manager, range=network.fixed_range)
    if network.floating_range and not await server.floating_ips.list_floating_ips():
        made = await server.floating_ips.create_floating_ips(network.floating_range)
        log.info("created {n} elastic IP(s) from {range}", n=len(made),
                 range=network.floating_range)


def metadata_target(config: Any) -> dict[str, Any]:
    """
    Where guests' 169.254.169.254:80 goes (DESIGN.md, "Hosts"): on a host
    namespace, to the metadata proxy inside it (C{metadata_proxy_port}); on
    the root namespace, to nova-api's metadata port: on this machine
    (C{REDIRECT}; nova-api must then listen on an address guests' packets
    reach, not only loopback) or, with C{[network] metadata_host}, on that
    host (C{DNAT}, 2010's way).

    @return: the L{NetworkManager} keyword arguments saying so.
    """
    network = config.network
    if network.host_netns:
        return {"metadata_port": network.metadata_proxy_port}
    if network.metadata_host:
        return {"metadata_port": config.api.metadata_port,
                "metadata_dnat_to": (network.metadata_host, config.api.metadata_port)}
    return {"metadata_port": config.api.metadata_port}


async def network_components(server: Any) -> list[IService]:
    """
    @return: nova-network: the manager on the C{network} topics (the host
        rebuilt from Redis first), the DHCP event listener and, on a host
        namespace, the metadata proxy inside it.
    """
    from nova.network.dhcp_events import DhcpEventService, replay_events_file
    from nova.api.metadata.service import metadata_socket_path
    from nova.network.manager import NetworkManager
    from nova.network.metadata_proxy import metadata_proxy_service
    from nova.network.rpcapi import TOPIC, NetworkAPI
    from nova.tap.components import service

    config = server.config
    netns = config.network.host_netns
    if config.network.driver == "linux":
        runner = ProcessRunner(server.reactor)
        if netns:
            await ensure_namespace(runner, netns)
        if config.network.public_interface:
            await ensure_public_interface(runner, netns or None,
                                          config.network.public_interface)
    await bootstrap_networks(server)
    plumbing = server.network_plumbing(netns)
    manager = NetworkManager(config.host, server.reactor, networks=server.networks,
                             fixed_ips=server.fixed_ips, floating_ips=server.floating_ips,
                             instances=server.instances, plumbing=plumbing,
                             network_api=NetworkAPI(server.rpc), kind=config.network.manager,
                             **metadata_target(config))
    await manager.init_host()
    services: list[IService] = []
    if config.network.driver == "linux":
        socket = dhcp_socket_path(server)
        await server.run_in_thread(socket.parent.mkdir, 0o700, True, True)
        await replay_events_file(plumbing.events_file, manager.handle_dhcp_event)
        services.append(DhcpEventService(server.reactor, str(socket),
                                         manager.handle_dhcp_event))
        if netns:
            services.append(metadata_proxy_service(
                server.reactor, netns, config.network.metadata_proxy_port,
                str(metadata_socket_path(config)), server.run_in_thread))
    services.append(service(server, manager, TOPIC))
    return services
