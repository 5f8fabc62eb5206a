"""
How instances look in EC2 responses: the C{instancesSet} items of
DescribeInstances and RunInstances, the state changes of Terminate/Stop/Start,
and C{reservationSet} grouping. Pure functions of the records.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from nova.api.ec2.xmlrender import RenderOnce, format_timestamp
from nova.compute.records import Instance


def state_of(name: str, code: int) -> dict[str, Any]:
    """@return: an EC2 C{instanceState}."""
    return {"code": code, "name": name}


def _groups(instance: Instance) -> list[dict[str, str]]:
    ids = instance.security_group_ids
    if len(ids) != len(instance.security_groups):
        ids = instance.security_groups  # a record from before groups had ids
    return [{"groupId": group_id, "groupName": name}
            for group_id, name in zip(ids, instance.security_groups)]


def describe_instance(instance: Instance, *, show_host: bool = False) -> dict[str, Any]:
    """
    @param show_host: add the compute host (admins: 2010 nova showed it too).
    @return: one C{instancesSet} item.
    """
    reason = instance.state_reason
    item: dict[str, Any] = {
        "instanceId": instance.instance_id,
        "imageId": instance.image_id,
        "instanceState": state_of(instance.state, instance.state_code),
        "privateDnsName": instance.private_ip or "",
        "dnsName": instance.public_ip or "",
        "reason": reason[1] if reason else "",
        "keyName": instance.key_name,
        "amiLaunchIndex": instance.launch_index,
        "productCodes": [],
        "instanceType": instance.instance_type,
        "launchTime": format_timestamp(instance.launched_at or instance.created_at),
        "placement": {"availabilityZone": instance.availability_zone, "groupName": "",
                      "tenancy": "default"},
        "kernelId": instance.kernel_id,
        "ramdiskId": instance.ramdisk_id,
        "monitoring": {"state": "disabled"},
        "privateIpAddress": instance.private_ip,
        "ipAddress": instance.public_ip,
        "groupSet": _groups(instance),
        "stateReason": {"code": reason[0], "message": reason[1]} if reason else None,
        "architecture": "x86_64",
        "rootDeviceType": "instance-store",
        "rootDeviceName": "/dev/sda1",
        "blockDeviceMapping": [],
        "virtualizationType": "hvm",
        "clientToken": instance.client_token,
        "hypervisor": "kvm",
    }
    if show_host:
        item["hostName"] = instance.host
    return item


Describe = Callable[[Instance, bool], dict[str, Any]]


def _describe(instance: Instance, show_host: bool) -> dict[str, Any]:
    return describe_instance(instance, show_host=show_host)


def describe_reservations(instances: Iterable[Instance], show_host: bool = False,
                          describe: Describe = _describe) -> list[dict[str, Any]]:
    """
    @param instances: in listing order.
    @param describe: makes one C{instancesSet} item (e.g. L{DescribeCache.describe}).
    @return: C{reservationSet} items: instances grouped by reservation, in the
        order each reservation first appears.
    """
    grouped: dict[str, list[Instance]] = {}
    for instance in instances:
        grouped.setdefault(instance.reservation_id, []).append(instance)
    return [reservation(members, show_host, describe) for members in grouped.values()]


def reservation(members: list[Instance], show_host: bool = False,
                describe: Describe = _describe) -> dict[str, Any]:
    """@return: one reservation (RunInstances' whole answer) of its instances."""
    first = members[0]
    return {
        "reservationId": first.reservation_id,
        "ownerId": first.project_id,
        "groupSet": _groups(first),
        "instancesSet": [describe(i, show_host) for i in members],
    }


class DescribeCache:
    """
    The C{instancesSet} items of records seen before, rendered once
    (L{RenderOnce}). The repository hands out the same record object for an
    unchanged record, so the record's identity is the key.

    @param size: how many items to keep.
    """

    def __init__(self, size: int = 20_000) -> None:
        self._size = size
        self._items: dict[tuple[int, bool], tuple[Instance, RenderOnce]] = {}

    def describe(self, instance: Instance, show_host: bool) -> dict[str, Any]:
        """@return: the item of C{instance}, as L{describe_instance} makes it."""
        key = (id(instance), show_host)
        cached = self._items.get(key)
        if cached is not None and cached[0] is instance:
            return cached[1]
        item = RenderOnce(describe_instance(instance, show_host=show_host))
        if len(self._items) >= self._size:
            del self._items[next(iter(self._items))]  # the oldest entry
        self._items[key] = (instance, item)
        return item


def state_change(before: Instance, after: Instance) -> dict[str, Any]:
    """@return: an C{instancesSet} item of TerminateInstances, StopInstances, StartInstances."""
    return {"instanceId": after.instance_id,
            "currentState": state_of(after.state, after.state_code),
            "previousState": state_of(before.state, before.state_code)}
