"""
The cloud controller's EC2 actions: the table from action name to the
coroutine that performs it. Each area (key pairs, zones; later instances,
volumes, addresses ...) has its own controller module; this one composes them.
"""

from __future__ import annotations

from typing import Any

from nova.api.ec2.addresses import AddressController
from nova.api.ec2.handler import Action
from nova.api.ec2.images import ImageController
from nova.api.ec2.instances import InstanceController
from nova.api.ec2.keypairs import KeyPairController
from nova.api.ec2.security_groups import SecurityGroupController
from nova.api.ec2.volumes import VolumeController
from nova.api.ec2.zones import ZoneController
from nova.compute.rpcapi import ComputeAPI
from nova.compute.secgroup_refresh import SecurityGroupRefresher
from nova.network.rpcapi import NetworkAPI
from nova.scheduler.rpcapi import SchedulerAPI
from nova.volume.rpcapi import VolumeAPI


class CloudController:
    """
    @param server: the process's L{nova.server.NovaServer}.
    @param registrar: registers images (L{nova.image.registrar.ImageRegistrar}).
    """

    def __init__(self, server: Any, registrar: Any) -> None:
        config = server.config
        self.keypairs = KeyPairController(server.keypairs, server.run_in_thread, server.reactor)
        self.zones = ZoneController(server.services, config.region, server.ec2_url,
                                    config.service.service_down_time)
        self.images = ImageController(registrar)
        self.instances = InstanceController(server.instances, server.images, server.keypairs,
                                            SchedulerAPI(server.rpc), ComputeAPI(server.rpc),
                                            server.reactor, groups=server.security_groups)
        self.addresses = AddressController(server.floating_ips, NetworkAPI(server.rpc))
        self.volumes = VolumeController(server.volumes, server.snapshots, VolumeAPI(server.rpc),
                                        ComputeAPI(server.rpc), server.instances,
                                        server.reactor, zone=config.zone,
                                        services=server.services)
        # a rule change is applied by every live compute host before the
        # action answers (and undone if one fails)
        refresh = SecurityGroupRefresher(server.services, ComputeAPI(server.rpc),
                                         config.service.service_down_time)
        self.security_groups = SecurityGroupController(server.security_groups, refresh,
                                                       server.reactor)

    def actions(self) -> dict[str, Action]:
        """@return: every EC2 action this cloud implements."""
        return {
            "DescribeRegions": self.zones.describe_regions,
            "DescribeAvailabilityZones": self.zones.describe_availability_zones,
            "CreateKeyPair": self.keypairs.create_key_pair,
            "ImportKeyPair": self.keypairs.import_key_pair,
            "DescribeKeyPairs": self.keypairs.describe_key_pairs,
            "DeleteKeyPair": self.keypairs.delete_key_pair,
            **self.instances.actions(),
            **self.images.actions(),
            **self.addresses.actions(),
            **self.security_groups.actions(),
            **self.volumes.actions(),
        }
