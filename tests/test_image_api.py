"""
The EC2 image actions (L{nova.api.ec2.images.ImageController}) on a
registrar with the memory datastore and the fake object store: parameters
in both the boto 2 / euca2ools shape and the boto3 shape, and what the
responses hold.
"""

from __future__ import annotations

from typing import Any

from nova.api.ec2.images import ImageController, describe_image
from nova.api.ec2.params import Params
from nova.api.ec2.xmlrender import render_response
from nova.exception import InvalidParameterValue, MissingParameter, UnsupportedOperation
from nova.image.permissions import ImageAuthFailure
from nova.image.records import FAILED, InvalidAMIIDNotFound
from tests.test_image_fakes import RegistrarHarness, context, kernel_bytes, raw_disk
from tests.test_image_records import an_image


class ImageActionTests(RegistrarHarness):

    def setUp(self) -> None:
        super().setUp()
        self.api = ImageController(self.registrar)

    async def call(self, action: str, project: str = "proj", **params: Any) -> dict[str, Any]:
        perform = self.api.actions()[action]
        return await perform(context(project), Params({k: str(v) for k, v in params.items()}))

    async def fails(self, exc: type[BaseException], action: str, **params: Any) -> Any:
        try:
            await self.call(action, **params)
        except exc as e:
            return e
        raise AssertionError(f"{action} did not raise {exc.__name__}")

    async def test_register_describe_deregister(self) -> None:
        location = self.s3.add("proj", "mine", "vmlinuz", kernel_bytes())
        kernel = (await self.call("RegisterImage", ImageLocation=location,
                                  Name="kernel one"))["imageId"]
        self.assertTrue(kernel.startswith("aki-"))
        location = self.s3.add("proj", "mine", "disk.img", raw_disk())
        ami = (await self.call("RegisterImage", ImageLocation=location, Name="disk one",
                               Description="d", Architecture="x86_64",
                               KernelId=kernel))["imageId"]
        await self.registrar.wait_idle()
        found = await self.call("DescribeImages", **{"ImageId.1": ami})
        (item,) = found["imagesSet"]
        self.assertEqual({k: item[k] for k in ("imageId", "imageLocation", "imageState",
                                                "imageOwnerId", "isPublic", "imageType",
                                                "kernelId", "name", "rootDeviceType")},
                         {"imageId": ami, "imageLocation": "mine/disk.img",
                          "imageState": "available", "imageOwnerId": "proj",
                          "isPublic": False, "imageType": "machine", "kernelId": kernel,
                          "name": "disk one", "rootDeviceType": "instance-store"})
        self.assertNotIn("stateReason", item)
        xml = render_response("DescribeImages", "r", found)
        self.assertIn(b"<imageState>available</imageState>", xml)
        by_filter = await self.call("DescribeImages", **{
            "Filter.1.Name": "image-type", "Filter.1.Value.1": "kernel"})
        self.assertEqual([i["imageId"] for i in by_filter["imagesSet"]], [kernel])
        mine = await self.call("DescribeImages", **{"Owner.1": "self"})
        self.assertEqual(len(mine["imagesSet"]), 2)
        self.assertEqual((await self.call("DescribeImages", project="other"))["imagesSet"], [])
        none = await self.call("DescribeImages", **{
            "Filter.1.Name": "root-device-type", "Filter.1.Value.1": "ebs"})
        self.assertEqual(none["imagesSet"], [])
        self.assertEqual(await self.call("DeregisterImage", ImageId=ami), {"return": True})
        await self.fails(InvalidAMIIDNotFound, "DescribeImages", **{"ImageId.1": ami})

    async def test_register_errors(self) -> None:
        await self.fails(MissingParameter, "RegisterImage", Name="abc")
        await self.fails(UnsupportedOperation, "RegisterImage", Name="abc",
                         RootDeviceName="/dev/sda1")
        e = await self.fails(Exception, "RegisterImage", ImageLocation="nothere/x")
        self.assertEqual(e.code, "InvalidManifest")

    async def test_failed_image_has_state_reason(self) -> None:
        image = an_image(state=FAILED, state_reason=("Client.InvalidImage", "not a disk"))
        item = describe_image(image)
        self.assertEqual(item["stateReason"], {"code": "Client.InvalidImage",
                                               "message": "not a disk"})
        kernel = describe_image(an_image("kernel"))
        self.assertNotIn("rootDeviceName", kernel)

    async def test_launch_permission_boto2_shape(self) -> None:
        image = await self.repo.register(an_image(owner="proj"))
        await self.call("ModifyImageAttribute", ImageId=image.image_id,
                        Attribute="launchPermission", OperationType="add",
                        **{"UserId.1": "other", "UserGroup.1": "all"})
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="launchPermission")
        self.assertEqual(got, {"imageId": image.image_id,
                               "launchPermission": [{"group": "all"}, {"userId": "other"}]})
        await self.call("ModifyImageAttribute", ImageId=image.image_id,
                        Attribute="launchPermission", OperationType="remove",
                        **{"UserGroup.1": "all"})
        self.assertFalse((await self.repo.get(image.image_id)).is_public)
        # the project named may launch and see it, but not change it
        seen = await self.call("DescribeImages", project="other")
        self.assertEqual([i["imageId"] for i in seen["imagesSet"]], [image.image_id])
        e = await self.fails(ImageAuthFailure, "ModifyImageAttribute", project="other",
                             ImageId=image.image_id, Attribute="launchPermission",
                             OperationType="add", **{"UserGroup.1": "all"})
        self.assertEqual(e.code, "AuthFailure")
        await self.call("ResetImageAttribute", ImageId=image.image_id,
                        Attribute="launchPermission")
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="launchPermission")
        self.assertEqual(got["launchPermission"], [])

    async def test_launch_permission_boto3_shape(self) -> None:
        image = await self.repo.register(an_image(owner="proj"))
        await self.call("ModifyImageAttribute", ImageId=image.image_id, **{
            "LaunchPermission.Add.1.Group": "all", "LaunchPermission.Add.2.UserId": "u1",
            "LaunchPermission.Add.3.UserId": "u2"})
        stored = await self.repo.get(image.image_id)
        self.assertEqual((stored.is_public, stored.launch_permission_users),
                         (True, ("u1", "u2")))
        await self.call("ModifyImageAttribute", ImageId=image.image_id, **{
            "LaunchPermission.Remove.1.UserId": "u1"})
        self.assertEqual((await self.repo.get(image.image_id)).launch_permission_users,
                         ("u2",))
        await self.fails(InvalidParameterValue, "ModifyImageAttribute",
                         ImageId=image.image_id, **{"LaunchPermission.Add.1.Group": "staff"})
        await self.fails(InvalidParameterValue, "ModifyImageAttribute",
                         ImageId=image.image_id,
                         **{"LaunchPermission.Add.1.OrganizationArn": "arn:x"})
        await self.fails(MissingParameter, "ModifyImageAttribute", ImageId=image.image_id)

    async def test_other_attributes(self) -> None:
        kernel = await self.repo.register(an_image("kernel", owner="proj"))
        image = await self.repo.register(an_image(owner="proj", kernel_id=kernel.image_id,
                                                  description="old"))
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="kernel")
        self.assertEqual(got, {"imageId": image.image_id, "kernel": {"value": kernel.image_id}})
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="ramdisk")
        self.assertEqual(got["ramdisk"], {})
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="blockDeviceMapping")
        self.assertEqual(got["blockDeviceMapping"], [])
        await self.call("ModifyImageAttribute", ImageId=image.image_id,
                        **{"Description.Value": "new (boto3)"})
        self.assertEqual((await self.repo.get(image.image_id)).description, "new (boto3)")
        await self.call("ModifyImageAttribute", ImageId=image.image_id,
                        Attribute="description", Value="new (boto 2)")
        got = await self.call("DescribeImageAttribute", ImageId=image.image_id,
                              Attribute="description")
        self.assertEqual(got["description"], {"value": "new (boto 2)"})
        for attribute in ("kernel", "ramdisk", "blockDeviceMapping"):
            await self.fails(InvalidParameterValue, "ModifyImageAttribute",
                             ImageId=image.image_id, Attribute=attribute, Value="x")
        await self.fails(InvalidParameterValue, "ResetImageAttribute",
                         ImageId=image.image_id, Attribute="kernel")
        await self.fails(InvalidParameterValue, "DescribeImageAttribute",
                         ImageId=image.image_id, Attribute="bogus")
        await self.fails(InvalidAMIIDNotFound, "DescribeImageAttribute", project="other",
                         ImageId=image.image_id, Attribute="description")
        await self.fails(InvalidAMIIDNotFound, "ModifyImageAttribute", project="other",
                         ImageId=image.image_id, Attribute="description", Value="x")
