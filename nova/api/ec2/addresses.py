"""
Elastic IPs (EC2-Classic's "standard" domain): AllocateAddress,
ReleaseAddress, AssociateAddress, DisassociateAddress, DescribeAddresses.

Allocation is a Redis operation; everything that changes NAT goes through
nova-network (L{nova.network.rpcapi.NetworkAPI}), which applies it on the
network host before answering, so the answer means "done".
"""

from __future__ import annotations

import ipaddress
from typing import Any

from nova.api.ec2.params import Params, matches
from nova.context import RequestContext
from nova.exception import InvalidParameterValue, MissingParameter, UnsupportedOperation
from nova.network.errors import InvalidAddressNotFound
from nova.network.floating_ips import FloatingIpRepository
from nova.network.records import FloatingIp
from nova.network.rpcapi import NetworkAPI

ADDRESS_FILTERS = ("public-ip", "instance-id", "domain", "private-ip-address")


def _address(value: str | None, name: str = "PublicIp") -> str:
    if value is None:
        raise MissingParameter(f"The request must contain the parameter {name}")
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise InvalidParameterValue(f"Invalid value '{value}' for {name}") from None


def _no_vpc(params: Params) -> None:
    for name in ("AllocationId", "AssociationId", "NetworkInterfaceId"):
        if params.get(name):
            raise UnsupportedOperation(f"{name}: this cloud has EC2-Classic (standard) "
                                       "addresses only; use PublicIp")


def _describe(record: FloatingIp) -> dict[str, Any]:
    return {"publicIp": record.address, "domain": "standard",
            "instanceId": record.instance_id or "",
            "privateIpAddress": record.fixed_address}


class AddressController:
    """
    @param floating_ips: the elastic IP records.
    @param network: nova-network's client.
    """

    def __init__(self, floating_ips: FloatingIpRepository, network: NetworkAPI) -> None:
        self._floating = floating_ips
        self._network = network

    def actions(self) -> dict[str, Any]:
        return {
            "AllocateAddress": self.allocate_address,
            "ReleaseAddress": self.release_address,
            "AssociateAddress": self.associate_address,
            "DisassociateAddress": self.disassociate_address,
            "DescribeAddresses": self.describe_addresses,
        }

    async def allocate_address(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """AllocateAddress: a free elastic IP for the caller's project."""
        domain = params.get("Domain", "standard")
        if domain != "standard":
            raise UnsupportedOperation("Domain vpc: this cloud has EC2-Classic addresses only")
        if params.get("Address") or params.get("PublicIpv4Pool"):
            raise UnsupportedOperation("choosing the address or pool is not supported")
        record = await self._floating.allocate_floating_ip(context.project_id)
        return {"publicIp": record.address, "domain": "standard"}

    async def release_address(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """ReleaseAddress: back to the pool, any association ended first."""
        _no_vpc(params)
        await self._network.release_floating_ip(context, _address(params.get("PublicIp")))
        return {"return": True}

    async def associate_address(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """AssociateAddress: NAT the address to the instance's fixed IP (moving it if need be)."""
        _no_vpc(params)
        if params.get("PrivateIpAddress"):
            raise UnsupportedOperation("PrivateIpAddress: an instance has one fixed address")
        address = _address(params.get("PublicIp"))
        instance_id = params.require("InstanceId")
        await self._network.associate_floating_ip(context, address, instance_id)
        return {"return": True}

    async def disassociate_address(self, context: RequestContext,
                                   params: Params) -> dict[str, Any]:
        """DisassociateAddress: the NAT removed; the project keeps the address."""
        _no_vpc(params)
        await self._network.disassociate_floating_ip(context, _address(params.get("PublicIp")))
        return {"return": True}

    async def describe_addresses(self, context: RequestContext,
                                 params: Params) -> dict[str, Any]:
        """DescribeAddresses: the caller's project's (an admin's: every allocated one)."""
        if params.get_list("AllocationId"):
            raise UnsupportedOperation("AllocationId: EC2-Classic addresses only")
        wanted = [_address(a, "PublicIp") for a in params.get_list("PublicIp")]
        filters = params.get_filters(ADDRESS_FILTERS)
        project = None if context.is_admin else context.project_id
        records = [r for r in await self._floating.list_floating_ips(project)
                   if r.project_id is not None]
        held = {r.address for r in records}
        for address in wanted:
            if address not in held:
                raise InvalidAddressNotFound(f"Address '{address}' not found.")
        selected = [
            r for r in records
            if (not wanted or r.address in wanted)
            and matches(filters, {"public-ip": r.address, "instance-id": r.instance_id,
                                  "domain": "standard",
                                  "private-ip-address": r.fixed_address})
        ]
        return {"addressesSet": [_describe(r) for r in selected]}
