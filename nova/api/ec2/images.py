"""
EC2 image actions: RegisterImage, DescribeImages, DeregisterImage and the
image attributes (Modify/Describe/ResetImageAttribute).

Launch permission changes come in two shapes, both accepted: the old one
boto 2 and euca2ools send (C{Attribute=launchPermission},
C{OperationType=add|remove}, C{UserId.N}, C{UserGroup.N}) and the one
boto3 sends (C{LaunchPermission.Add.N.Group}, C{LaunchPermission.Remove.N.UserId}).
"""

from __future__ import annotations

from typing import Any

import attr

from nova.api.ec2.params import Params
from nova.api.ec2.xmlrender import format_timestamp
from nova.context import RequestContext
from nova.exception import InvalidParameterValue, MissingParameter, UnsupportedOperation
from nova.image import permissions
from nova.image.records import FAILED, MACHINE, Image, check_description, check_image_id
from nova.image.registrar import ImageRegistrar
from nova.image.repository import FILTERS

#: DescribeImageAttribute's attributes; only the first two can be changed
ATTRIBUTES = ("launchPermission", "description", "kernel", "ramdisk", "blockDeviceMapping",
              "productCodes")
#: filters AWS has that match nothing here (every image is instance-store)
_EMPTY_FILTERS = {"root-device-type": "instance-store", "virtualization-type": None,
                  "hypervisor": None}


def describe_image(image: Image) -> dict[str, Any]:
    """@return: one C{imagesSet} item, as EC2 (and boto 2 and boto3) know it."""
    item: dict[str, Any] = {
        "imageId": image.image_id,
        "imageLocation": image.image_location,
        "imageState": image.state,
        "imageOwnerId": image.owner_project_id,
        "creationDate": format_timestamp(image.created_at),
        "isPublic": image.is_public,
        "architecture": image.architecture,
        "imageType": image.image_type,
        "kernelId": image.kernel_id,
        "ramdiskId": image.ramdisk_id,
        "name": image.name,
        "description": image.description,
        "rootDeviceType": "instance-store",
        "rootDeviceName": image.root_device_name,
        "blockDeviceMapping": [],
        "virtualizationType": "paravirtual" if image.kernel_id else "hvm",
    }
    if image.image_type != MACHINE:
        del item["rootDeviceName"], item["virtualizationType"]
    if image.state == FAILED and image.state_reason is not None:
        item["stateReason"] = {"code": image.state_reason[0], "message": image.state_reason[1]}
    return item


class ImageController:
    """
    @param registrar: registers and deregisters; its repository answers the rest.
    """

    def __init__(self, registrar: ImageRegistrar) -> None:
        self._registrar = registrar
        self._repo = registrar.repository

    def actions(self) -> dict[str, Any]:
        """@return: the image actions by EC2 name."""
        return {
            "RegisterImage": self.register_image,
            "DescribeImages": self.describe_images,
            "DeregisterImage": self.deregister_image,
            "ModifyImageAttribute": self.modify_image_attribute,
            "DescribeImageAttribute": self.describe_image_attribute,
            "ResetImageAttribute": self.reset_image_attribute,
        }

    async def register_image(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """RegisterImage of a bundle manifest or a single image object (instance-store)."""
        location = params.get("ImageLocation")
        if not location:
            if params.get("RootDeviceName") or params.get_list("BlockDeviceMapping") \
                    or any(k.startswith("BlockDeviceMapping.") for k in params.raw):
                raise UnsupportedOperation(
                    "EBS-backed images are not supported: register an ImageLocation")
            raise MissingParameter("The request must contain the parameter ImageLocation")
        image = await self._registrar.register(
            context, location, name=params.get("Name"), description=params.get("Description"),
            architecture=params.get("Architecture"), kernel_id=params.get("KernelId") or None,
            ramdisk_id=params.get("RamdiskId") or None)
        return {"imageId": image.image_id}

    async def describe_images(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DescribeImages with ImageId.N, Owner.N, ExecutableBy.N and Filter.N."""
        filters = params.get_filters(list(FILTERS) + list(_EMPTY_FILTERS))
        for name, wanted in _EMPTY_FILTERS.items():
            values = filters.pop(name, None)
            if values is not None and wanted not in values:
                return {"imagesSet": []}
        images = await self._repo.describe(
            context.project_id or "", context.is_admin, image_ids=params.get_list("ImageId"),
            owners=params.get_list("Owner"), executable_by=params.get_list("ExecutableBy"),
            filters=filters)
        return {"imagesSet": [describe_image(i) for i in images]}

    async def deregister_image(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DeregisterImage: the record and nova's copy of the data go; the user's bucket stays."""
        await self._registrar.deregister(context, params.require("ImageId"))
        return {"return": True}

    async def _image(self, context: RequestContext, params: Params) -> Image:
        image_id = check_image_id(params.require("ImageId"))
        return await self._repo.get_visible(image_id, context.project_id or "",
                                            context.is_admin)

    async def describe_image_attribute(self, context: RequestContext,
                                       params: Params) -> dict[str, Any]:
        """DescribeImageAttribute: launchPermission (the owner's), description, kernel ..."""
        attribute = _attribute(params.require("Attribute"))
        image = await self._image(context, params)
        if attribute == "launchPermission":
            return permissions.describe(image, context.project_id or "", context.is_admin)
        body: dict[str, Any] = {"imageId": image.image_id}
        if attribute in ("blockDeviceMapping", "productCodes"):
            body[attribute] = []
        else:
            value = {"description": image.description, "kernel": image.kernel_id,
                     "ramdisk": image.ramdisk_id}[attribute]
            body[attribute] = {"value": value} if value is not None else {}
        return body

    async def modify_image_attribute(self, context: RequestContext,
                                     params: Params) -> dict[str, Any]:
        """ModifyImageAttribute: launchPermission (both request shapes) or description."""
        image = await self._image(context, params)
        project, admin = context.project_id or "", context.is_admin
        attribute = params.get("Attribute")
        description = params.get("Description.Value")
        if attribute is not None:
            attribute = _attribute(attribute)
        elif description is not None:
            attribute = "description"
        elif any(k.startswith("LaunchPermission.") for k in params.raw):
            attribute = "launchPermission"
        else:
            raise MissingParameter("The request must contain the parameter Attribute")
        if attribute == "description":
            text = description if description is not None else params.get("Value")
            if text is None:
                raise MissingParameter("The request must contain the parameter Value")
            check_description(text)

            def describe(old: Image) -> Image:
                permissions.check_owner(old, project, admin)
                return attr.evolve(old, description=text)
            await self._repo.change(image.image_id, describe)
            return {"return": True}
        if attribute != "launchPermission":
            raise InvalidParameterValue(
                f"The attribute {attribute} of an image cannot be changed")
        changes = _launch_permission_changes(params)
        if not changes:
            raise MissingParameter("No launch permission group or user id was given")
        for operation, groups, users in changes:
            await self._repo.change(image.image_id, lambda old: permissions.modify(
                old, project, admin, operation, groups=groups, user_ids=users))
        return {"return": True}

    async def reset_image_attribute(self, context: RequestContext,
                                    params: Params) -> dict[str, Any]:
        """ResetImageAttribute: only launchPermission (private, nobody named), as in AWS."""
        attribute = _attribute(params.require("Attribute"))
        if attribute != "launchPermission":
            raise InvalidParameterValue(
                f"Value ({attribute}) for parameter attribute is invalid. Only "
                "launchPermission can be reset")
        image = await self._image(context, params)
        project, admin = context.project_id or "", context.is_admin
        await self._repo.change(image.image_id,
                                lambda old: permissions.reset(old, project, admin))
        return {"return": True}


def _attribute(name: str) -> str:
    if name not in ATTRIBUTES:
        raise InvalidParameterValue(
            f"Value ({name}) for parameter attribute is invalid. Unknown attribute.")
    return name


def _launch_permission_changes(params: Params) -> list[tuple[str, list[str], list[str]]]:
    """@return: C{(operation, groups, user ids)} for each shape present in the request."""
    changes = []
    groups, users = params.get_list("UserGroup"), params.get_list("UserId")
    if groups or users:
        operation = params.require("OperationType")
        changes.append((operation, groups, users))
    for operation, prefix in (("add", "LaunchPermission.Add"),
                              ("remove", "LaunchPermission.Remove")):
        entries = params.get_indexed(prefix)
        if not entries:
            continue
        groups, users = [], []
        for index in sorted(entries):
            for field, value in entries[index].items():
                if field == "Group":
                    groups.append(value)
                elif field == "UserId":
                    users.append(value)
                else:
                    raise InvalidParameterValue(
                        f"The parameter {prefix}.{index}.{field} is not supported")
        changes.append((operation, groups, users))
    return changes
