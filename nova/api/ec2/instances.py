"""
EC2 instance actions: RunInstances, DescribeInstances, TerminateInstances,
RebootInstances, StopInstances, StartInstances, GetConsoleOutput and
DescribeInstanceAttribute.

The API moves a record into the state the action leads through, in one
transaction that checks the state (so two concurrent actions cannot both
pass), then hands the work on: new instances to the scheduler, everything
else to the compute node that holds the instance. DescribeInstances reads
Redis only.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from nova.api.ec2 import instance_view
from nova.api.ec2.params import Params
from nova.api.ec2.xmlrender import format_timestamp
from nova.compute import instance_types, states
from nova.network.security_group_records import DEFAULT_GROUP
from nova.network.security_groups import SecurityGroupRepository
from nova.compute.records import (Instance, Reservation, check_user_data, new_instance_id,
                                  new_mac_address, new_reservation_id)
from nova.compute.repository import InstanceRepository, InvalidInstanceIDNotFound
from nova.compute.rpcapi import ComputeAPI
from nova.context import RequestContext
from nova.datastore.repositories import KeyPairRepository
from nova.exception import ClientError, InvalidParameterValue, MissingParameter
from nova.image import permissions
from nova.image.records import KERNEL, MACHINE, RAMDISK, Image
from nova.image.repository import ImageRepository
from nova.scheduler.hosts import parse_placement
from nova.scheduler.rpcapi import SchedulerAPI

#: AWS: a ClientToken is up to 64 ASCII characters
_CLIENT_TOKEN = re.compile(r"[\x21-\x7e]{1,64}\Z")
#: most instances one RunInstances may ask for (the quota decides how many run)
MAX_COUNT = 1000
#: DescribeInstances: the page sizes AWS accepts
MIN_RESULTS, MAX_RESULTS = 5, 1000
FILTERS = ("instance-state-name", "instance-state-code", "instance-id", "image-id",
           "key-name", "reservation-id", "instance-type", "availability-zone")
#: DescribeInstanceAttribute names this cloud answers
ATTRIBUTES = ("instanceType", "userData", "kernel", "ramdisk", "rootDeviceName",
              "disableApiTermination", "instanceInitiatedShutdownBehavior",
              "blockDeviceMapping", "groupSet")


class IdempotentParameterMismatch(ClientError):
    """A ClientToken reused with different launch parameters."""

    code = "IdempotentParameterMismatch"


class InstanceController:
    """
    @param instances: the instance records.
    @param images: the image registry.
    @param keypairs: the key pairs (KeyName must exist).
    @param scheduler: where new instances go.
    @param compute: where actions on placed instances go.
    @param clock: stamps new records.
    @param zone: the zone of a request that names none.
    """

    def __init__(self, instances: InstanceRepository, images: ImageRepository,
                 keypairs: KeyPairRepository, scheduler: SchedulerAPI, compute: ComputeAPI,
                 clock: Any, groups: SecurityGroupRepository) -> None:
        self._instances = instances
        self._images = images
        self._keypairs = keypairs
        self._scheduler = scheduler
        self._compute = compute
        self._clock = clock
        self._groups = groups
        self._views = instance_view.DescribeCache()

    # -- RunInstances ------------------------------------------------------------

    async def _launchable(self, context: RequestContext, image_id: str, image_type: str,
                          what: str) -> Image:
        image = await self._images.get_visible(image_id, context.project_id or "",
                                               context.is_admin)
        permissions.check_launchable(image, context.project_id or "", context.is_admin)
        if image.image_type != image_type:
            raise InvalidParameterValue(f"The {what} '{image_id}' is a {image.image_type} "
                                        f"image, not a {image_type} image")
        return image

    async def run_instances(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """RunInstances: write the reservation (quota checked), then ask the scheduler."""
        project = context.project_id or ""
        min_count = params.get_int("MinCount", 1, minimum=1, maximum=MAX_COUNT)
        max_count = params.get_int("MaxCount", min_count, minimum=1, maximum=MAX_COUNT)
        assert min_count is not None and max_count is not None
        if max_count < min_count:
            raise InvalidParameterValue(f"MinCount ({min_count}) is greater than "
                                        f"MaxCount ({max_count})")
        itype = instance_types.get(params.get("InstanceType",
                                              instance_types.DEFAULT_INSTANCE_TYPE) or "")
        user_data = check_user_data(params.get("UserData", "") or "")
        key_name = params.get("KeyName")
        if key_name:
            await self._keypairs.get(project, key_name)
        token = params.get("ClientToken")
        if token is not None and not _CLIENT_TOKEN.match(token):
            raise InvalidParameterValue("ClientToken must be 1 to 64 printable ASCII characters")
        zone, forced_host = parse_placement(params.get("Placement.AvailabilityZone"),
                                            context.is_admin)
        groups, group_ids = await self._group_names(context, params)
        image = await self._launchable(context, params.require("ImageId"), MACHINE, "image")
        kernel_id = params.get("KernelId") or image.kernel_id
        ramdisk_id = params.get("RamdiskId") or image.ramdisk_id
        if kernel_id:
            await self._launchable(context, kernel_id, KERNEL, "kernel")
        if ramdisk_id:
            await self._launchable(context, ramdisk_id, RAMDISK, "ramdisk")
        if ramdisk_id and not kernel_id:
            raise InvalidParameterValue("A ramdisk needs a kernel")

        now = self._clock.seconds()
        reservation_id = new_reservation_id()
        records = [
            Instance(instance_id=new_instance_id(), reservation_id=reservation_id,
                     project_id=project, user_id=context.user_id or "",
                     image_id=image.image_id, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                     instance_type=itype.name, key_name=key_name or None, user_data=user_data,
                     security_groups=groups, security_group_ids=group_ids,
                     availability_zone=zone or "",
                     launch_index=index, state_reason=states.PENDING_REASON,
                     mac_address=new_mac_address(), client_token=token,
                     created_at=now, updated_at=now)
            for index in range(max_count)]
        # in the groups before the records exist: a group deleted meanwhile
        # fails the launch instead of holding an instance it no longer knows
        for record in records:
            await self._groups.bind_instance(project, groups, record.instance_id,
                                             user_id=context.user_id)
        try:
            stored = await self._instances.create_reservation(
                Reservation(reservation_id=reservation_id, project_id=project,
                            user_id=context.user_id or "",
                            instance_ids=tuple(i.instance_id for i in records),
                            security_groups=groups, client_token=token, created_at=now),
                records, min_count=min_count)
        except BaseException:
            await self._unbind(project, groups, records)
            raise
        kept = {i.instance_id for i in stored.instances}
        await self._unbind(project, groups, [r for r in records if r.instance_id not in kept])
        if stored.replayed:
            _check_same_launch(stored.instances, records[0])
        else:
            for instance in stored.instances:
                await self._scheduler.run_instance(context, instance.instance_id, zone,
                                                   forced_host)
        return instance_view.reservation(list(stored.instances), context.is_admin)

    async def _group_names(self, context: RequestContext,
                           params: Params) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """
        @return: the launch's groups (SecurityGroup.N and SecurityGroupId.N):
            their names and their ids.
        """
        project = context.project_id or ""
        names = list(params.get_list("SecurityGroup"))
        for group_id in params.get_list("SecurityGroupId"):
            group = await self._groups.get(project, group_id=group_id)
            if group.project_id != project:
                raise InvalidParameterValue(f"The security group '{group_id}' belongs to "
                                            "another project")
            names.append(group.name)
        names = list(dict.fromkeys(names)) or [DEFAULT_GROUP]
        await self._groups.ensure_default(project, context.user_id or "")
        found = await self._groups.get_by_names(project, names)
        return tuple(names), tuple(g.group_id for g in found)

    async def _unbind(self, project: str, groups: tuple[str, ...],
                      records: list[Instance]) -> None:
        for record in records:
            await self._groups.unbind_instance(project, groups, record.instance_id)

    # -- DescribeInstances -------------------------------------------------------

    async def describe_instances(self, context: RequestContext,
                                 params: Params) -> dict[str, Any]:
        """DescribeInstances with InstanceId.N, Filter.N, MaxResults and NextToken."""
        ids = params.get_list("InstanceId")
        filters = params.get_filters(FILTERS)
        max_results = params.get_int("MaxResults")
        if max_results is not None:
            if ids:
                raise InvalidParameterValue("MaxResults cannot be used with InstanceId")
            max_results = min(max(max_results, MIN_RESULTS), MAX_RESULTS)
        project = None if context.is_admin else context.project_id
        if ids:
            found = [i for i in await self._instances.get_many(ids)
                     if project is None or i.project_id == project]
            if len(found) < len(set(ids)):
                missing = sorted(set(ids) - {i.instance_id for i in found})
                raise InvalidInstanceIDNotFound(
                    f"The instance IDs '{', '.join(missing)}' do not exist")
            if filters:
                page = await self._instances.list(project, filters={
                    **filters, "instance-id": [i.instance_id for i in found]})
                found = list(page.instances)
            return {"reservationSet": instance_view.describe_reservations(
                found, context.is_admin, self._views.describe)}
        page = await self._instances.list(project, filters=filters, max_results=max_results,
                                          next_token=params.get("NextToken"))
        return {"reservationSet": instance_view.describe_reservations(
                    page.instances, context.is_admin, self._views.describe),
                "nextToken": page.next_token}

    # -- actions on existing instances --------------------------------------------

    async def _own(self, context: RequestContext, params: Params) -> list[Instance]:
        ids = params.get_list("InstanceId")
        if not ids:
            raise MissingParameter("The request must contain the parameter InstanceId")
        found = await self._instances.get_many(ids)
        for instance in found:
            if not context.is_admin and instance.project_id != context.project_id:
                raise InvalidInstanceIDNotFound(
                    f"The instance ID '{instance.instance_id}' does not exist")
        return found

    @staticmethod
    def _check_all(found: Sequence[Instance], action: str) -> None:
        # AWS refuses the whole request when one instance cannot take the action
        for instance in found:
            states.check_transition(instance.instance_id, instance.state, action)

    async def terminate_instances(self, context: RequestContext,
                                  params: Params) -> dict[str, Any]:
        """TerminateInstances: shutting-down now, terminated once the node destroyed it."""
        found = await self._own(context, params)
        changes = []
        for instance in found:
            before, after = await self._instances.transition(
                instance.instance_id, "terminate", state_reason=states.USER_INITIATED_SHUTDOWN)
            if after.state == states.SHUTTING_DOWN and before.state != states.SHUTTING_DOWN:
                if after.host is None:
                    # never reached a node: nothing to destroy anywhere
                    _, after = await self._instances.transition(after.instance_id, "destroyed")
                else:
                    await self._compute.terminate_instance(context, after.host,
                                                           after.instance_id)
            changes.append(instance_view.state_change(before, after))
        return {"instancesSet": changes}

    async def reboot_instances(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """RebootInstances: a hard reboot of each running instance."""
        found = await self._own(context, params)
        self._check_all(found, "reboot")
        for instance in found:
            await self._instances.transition(instance.instance_id, "reboot")
            if instance.host is not None:
                await self._compute.reboot_instance(context, instance.host,
                                                    instance.instance_id)
        return {"return": True}

    async def _power(self, context: RequestContext, params: Params, action: str,
                     reason: tuple[str, str], cast: Any) -> dict[str, Any]:
        found = await self._own(context, params)
        self._check_all(found, action)
        changes = []
        for instance in found:
            before, after = await self._instances.transition(instance.instance_id, action,
                                                             state_reason=reason)
            if after.state != before.state and after.host is not None:
                await cast(context, after.host, after.instance_id)
            changes.append(instance_view.state_change(before, after))
        return {"instancesSet": changes}

    async def stop_instances(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """StopInstances: stopping now, stopped once the node powered it off."""
        return await self._power(context, params, "stop", states.USER_INITIATED_SHUTDOWN,
                                 self._compute.stop_instance)

    async def start_instances(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """StartInstances: pending now, running once the node powered it on."""
        return await self._power(context, params, "start", states.PENDING_REASON,
                                 self._compute.start_instance)

    async def get_console_output(self, context: RequestContext,
                                 params: Params) -> dict[str, Any]:
        """GetConsoleOutput: the serial log's tail, base64, from the instance's node."""
        instance_id = _one_id(params)
        instance = (await self._own(context, Params({"InstanceId.1": instance_id})))[0]
        output = ""
        if instance.host is not None and instance.state != states.TERMINATED:
            output = await self._compute.get_console_output(context, instance.host,
                                                            instance.instance_id)
        return {"instanceId": instance.instance_id,
                "timestamp": format_timestamp(self._clock.seconds()),
                "output": output}

    async def describe_instance_attribute(self, context: RequestContext,
                                          params: Params) -> dict[str, Any]:
        """DescribeInstanceAttribute: the attributes a launch fixed."""
        instance_id = _one_id(params)
        name = params.require("Attribute")
        if name not in ATTRIBUTES:
            raise InvalidParameterValue(f"Value ({name}) for parameter attribute is invalid. "
                                        "Unknown attribute.")
        instance = (await self._own(context, Params({"InstanceId.1": instance_id})))[0]
        values: dict[str, Any] = {
            "instanceType": {"value": instance.instance_type},
            "userData": {"value": instance.user_data} if instance.user_data else {},
            "kernel": {"value": instance.kernel_id} if instance.kernel_id else {},
            "ramdisk": {"value": instance.ramdisk_id} if instance.ramdisk_id else {},
            "rootDeviceName": {"value": "/dev/sda1"},
            "disableApiTermination": {"value": False},
            "instanceInitiatedShutdownBehavior": {"value": "stop"},
            "blockDeviceMapping": [],
            "groupSet": [{"groupId": g} for g in instance.security_groups],
        }
        return {"instanceId": instance.instance_id, name: values[name]}

    def actions(self) -> dict[str, Any]:
        """@return: the instance actions of the EC2 API."""
        return {
            "RunInstances": self.run_instances,
            "DescribeInstances": self.describe_instances,
            "TerminateInstances": self.terminate_instances,
            "RebootInstances": self.reboot_instances,
            "StopInstances": self.stop_instances,
            "StartInstances": self.start_instances,
            "GetConsoleOutput": self.get_console_output,
            "DescribeInstanceAttribute": self.describe_instance_attribute,
        }


def _one_id(params: Params) -> str:
    # boto 2 and euca2ools send InstanceId.1 where the current API has InstanceId
    single = params.get("InstanceId")
    if single:
        return single
    listed = params.get_list("InstanceId")
    if not listed:
        raise MissingParameter("The request must contain the parameter InstanceId")
    return listed[0]


def _check_same_launch(earlier: Sequence[Instance], asked: Instance) -> None:
    """A ClientToken replay must ask for the same launch (AWS: IdempotentParameterMismatch)."""
    if not earlier:
        return
    first = earlier[0]
    fields = ("image_id", "instance_type", "key_name", "kernel_id", "ramdisk_id", "user_data")
    if any(getattr(first, f) != getattr(asked, f) for f in fields):
        raise IdempotentParameterMismatch(
            "The client token was used before for a launch with other parameters")

