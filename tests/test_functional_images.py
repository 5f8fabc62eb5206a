"""
Functional: image registration on a running all-in-one, through boto3 and
boto 2 as users drive it: a qcow2 made by qemu-img and a raw disk uploaded
to S3 and registered, polled until available; launch permission between two
projects; junk that ends failed with a stateReason; locations that cannot be
registered; euca-style bundles (good and tampered); and the tiny image the
all-in-one registers on first start, the same across a restart.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

from boto.exception import EC2ResponseError
from botocore.exceptions import ClientError
from twisted.trial import unittest

from nova.image import bundle
from nova.image.tiny import tiny_disk
from tests.support.allinone import AllInOne, shared
from tests.support.s3 import S3User, bucket_name, s3_users, wait_for


def _name(prefix: str = "image") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(call: Any, **kwargs: Any) -> str:
    """@return: the EC2 error code C{call} fails with, through boto3."""
    try:
        call(**kwargs)
    except ClientError as e:
        return str(e.response["Error"]["Code"])
    raise AssertionError(f"{call} did not fail")


class ImageTestCase(unittest.TestCase):
    """Two users in two projects, each with a bucket of their own."""

    def setUp(self) -> None:
        self.cloud = shared()
        self.alice, self.bob = s3_users(self.cloud)
        self.ec2 = self.alice.boto3()
        self.bucket = bucket_name("img")
        self.alice.s3.create_bucket(Bucket=self.bucket)
        self.addCleanup(self.alice.purge, self.bucket)
        self.tmp = Path(os.path.abspath(self.mktemp()))
        self.tmp.mkdir(parents=True)

    def upload(self, key: str, data: bytes, user: S3User | None = None,
               bucket: str | None = None) -> str:
        (user or self.alice).s3.put_object(Bucket=bucket or self.bucket, Key=key, Body=data)
        return f"{bucket or self.bucket}/{key}"

    def register(self, location: str, ec2: Any = None, **kwargs: Any) -> str:
        ec2 = ec2 or self.ec2
        image_id = ec2.register_image(ImageLocation=location, Name=_name(), **kwargs)["ImageId"]
        self.addCleanup(self.deregister, ec2, image_id)
        return str(image_id)

    @staticmethod
    def deregister(ec2: Any, image_id: str) -> None:
        try:
            ec2.deregister_image(ImageId=image_id)
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidAMIID.NotFound":
                raise

    def settled(self, image_id: str, ec2: Any = None) -> dict[str, Any]:
        """Poll DescribeImages until the image is available or failed; @return: it."""
        ec2 = ec2 or self.ec2
        found: dict[str, Any] = {}

        def done() -> bool:
            found.update(ec2.describe_images(ImageIds=[image_id])["Images"][0])
            return found["State"] in ("available", "failed")
        wait_for(done, timeout=60, what=f"{image_id} available or failed")
        return found


class RegisterTests(ImageTestCase):

    def test_qcow2_and_raw_with_boto3(self) -> None:
        qcow2 = self.tmp / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "16M"],
                       check=True)
        raw = tiny_disk(256 * 1024)
        for location, fmt, size in [
                (self.upload("disk.qcow2", qcow2.read_bytes()), "qcow2",
                 qcow2.stat().st_size),
                (self.upload("disk.raw", raw), "raw", len(raw))]:
            image_id = self.register(location, Description=f"a {fmt} disk")
            self.assertTrue(image_id.startswith("ami-"))
            image = self.settled(image_id)
            self.assertEqual(image["State"], "available", image.get("StateReason"))
            self.assertEqual((image["ImageType"], image["ImageLocation"],
                              image["RootDeviceType"], image["OwnerId"], image["Public"],
                              image["Description"], image["Architecture"]),
                             ("machine", location, "instance-store", self.alice.project,
                              False, f"a {fmt} disk", "x86_64"))
            self.assertNotIn("StateReason", image)
            self.ec2.deregister_image(ImageId=image_id)
            self.assertEqual(error_code(self.ec2.describe_images, ImageIds=[image_id]),
                             "InvalidAMIID.NotFound")

    def test_boto2_register_describe_deregister(self) -> None:
        location = self.upload("disk.raw", tiny_disk(128 * 1024))
        conn = self.alice.boto2()
        name = _name()
        image_id = conn.register_image(name=name, image_location=location,
                                       architecture="i386")
        self.addCleanup(self.deregister, self.ec2, image_id)
        self.assertEqual(self.settled(image_id)["State"], "available")
        (image,) = conn.get_all_images(image_ids=[image_id])
        self.assertEqual((image.id, image.name, image.state, image.type, image.architecture,
                          image.is_public, image.owner_id, image.location,
                          image.root_device_type),
                         (image_id, name, "available", "machine", "i386", False,
                          self.alice.project, location, "instance-store"))
        mine = [i.id for i in conn.get_all_images(owners=["self"])]
        self.assertIn(image_id, mine)
        self.assertTrue(conn.deregister_image(image_id))
        with self.assertRaises(EC2ResponseError) as caught:
            conn.get_all_images(image_ids=[image_id])
        self.assertEqual(caught.exception.error_code, "InvalidAMIID.NotFound")

    def test_junk_ends_failed(self) -> None:
        image_id = self.register(self.upload("notes.txt", b"not a disk image\n" * 200))
        image = self.settled(image_id)
        self.assertEqual(image["State"], "failed")
        self.assertEqual(image["StateReason"]["Code"], "Client.InvalidImage")
        self.assertIn("neither a disk", image["StateReason"]["Message"])
        (old,) = self.alice.boto2().get_all_images(image_ids=[image_id])
        self.assertEqual(old.state, "failed")

    def test_kernel_and_ramdisk_defaults(self) -> None:
        import gzip
        kernel = bytearray(4096)
        kernel[0x202:0x206] = b"HdrS"
        aki = self.register(self.upload("vmlinuz", bytes(kernel)))
        ari = self.register(self.upload("initrd", gzip.compress(b"070701 cpio")))
        self.assertTrue(aki.startswith("aki-") and ari.startswith("ari-"))
        ami = self.register(self.upload("disk", tiny_disk(64 * 1024)), KernelId=aki,
                            RamdiskId=ari)
        image = self.settled(ami)
        self.assertEqual((image["KernelId"], image["RamdiskId"]), (aki, ari))
        self.assertEqual(self.settled(aki)["ImageType"], "kernel")
        attribute = self.ec2.describe_image_attribute(ImageId=ami, Attribute="kernel")
        self.assertEqual(attribute["KernelId"], {"Value": aki})

    def test_unregistrable_locations(self) -> None:
        private = self.upload("disk.raw", tiny_disk(64 * 1024))
        for location in [f"{bucket_name('none')}/disk.raw", f"{self.bucket}/missing"]:
            self.assertEqual(error_code(self.ec2.register_image, ImageLocation=location,
                                        Name=_name()), "InvalidManifest")
        # another project's private object
        self.assertEqual(error_code(self.bob.boto3().register_image, ImageLocation=private,
                                    Name=_name()), "InvalidManifest")
        self.assertEqual(error_code(self.ec2.register_image, ImageLocation="no-slash",
                                    Name=_name()), "InvalidParameterValue")
        self.assertEqual(error_code(self.ec2.register_image, ImageLocation=private,
                                    Name="bad*name"), "InvalidAMIName.Malformed")


class LaunchPermissionTests(ImageTestCase):

    def test_share_between_projects(self) -> None:
        image_id = self.register(self.upload("disk.raw", tiny_disk(64 * 1024)))
        self.settled(image_id)
        bob3, bob2, alice2 = self.bob.boto3(), self.bob.boto2(), self.alice.boto2()
        self.assertEqual(error_code(bob3.describe_images, ImageIds=[image_id]),
                         "InvalidAMIID.NotFound")
        # boto3's shape: LaunchPermission.Add.N.UserId
        self.ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={
            "Add": [{"UserId": self.bob.project}]})
        shared_with_bob = bob3.describe_images(ExecutableUsers=["self"])["Images"]
        self.assertIn(image_id, [i["ImageId"] for i in shared_with_bob])
        self.assertEqual(error_code(bob3.modify_image_attribute, ImageId=image_id,
                                    LaunchPermission={"Add": [{"Group": "all"}]}),
                         "AuthFailure")
        got = self.ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
        self.assertEqual(got["LaunchPermissions"], [{"UserId": self.bob.project}])
        # boto 2's shape: OperationType, UserId.N, UserGroup.N
        self.assertTrue(alice2.modify_image_attribute(
            image_id, attribute="launchPermission", operation="remove",
            user_ids=[self.bob.project]))
        self.assertEqual(error_code(bob3.describe_images, ImageIds=[image_id]),
                         "InvalidAMIID.NotFound")
        self.assertTrue(alice2.modify_image_attribute(
            image_id, attribute="launchPermission", operation="add", groups=["all"]))
        (seen,) = bob2.get_all_images(image_ids=[image_id])
        self.assertTrue(seen.is_public)
        public = [i["ImageId"] for i in bob3.describe_images(
            Owners=[self.alice.project], ExecutableUsers=["all"])["Images"]]
        self.assertEqual(public, [image_id])
        attribute = alice2.get_image_attribute(image_id, attribute="launchPermission")
        self.assertEqual(attribute.attrs.get("groups"), ["all"])
        self.assertTrue(alice2.reset_image_attribute(image_id))
        self.assertEqual(error_code(bob3.describe_images, ImageIds=[image_id]),
                         "InvalidAMIID.NotFound")
        self.assertEqual(error_code(bob3.deregister_image, ImageId=image_id),
                         "InvalidAMIID.NotFound")


class BundleTests(ImageTestCase):

    def credentials(self) -> dict[str, str]:
        """@return: alice's pk.pem, cert.pem and cacert.pem, issued by the cloud."""
        path = self.tmp / "nova.zip"
        self.cloud.nova_manage("project", "zipfile", self.alice.project, self.alice.user,
                               str(path))
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
            return {name: archive.read(name).decode() for name in
                    ("pk.pem", "cert.pem", "cacert.pem")}

    def upload_bundle(self, data: bytes, prefix: str, creds: dict[str, str]) -> tuple[str, list[str]]:
        image = self.tmp / f"{prefix}.img"
        image.write_bytes(data)
        out = self.tmp / f"{prefix}-out"
        out.mkdir()
        manifest, parts = bundle.make_bundle(
            str(image), str(out), prefix, user_cert_pem=creds["cert.pem"],
            user_key_pem=creds["pk.pem"], cloud_cert_pem=creds["cacert.pem"],
            part_size=64 * 1024)
        keys = []
        for path in [manifest, *parts]:
            keys.append(f"bundles/{os.path.basename(path)}")
            self.upload(keys[-1], Path(path).read_bytes())
        shutil.rmtree(out)
        return f"{self.bucket}/{keys[0]}", keys[1:]

    def test_good_and_tampered_bundles(self) -> None:
        creds = self.credentials()
        disk = tiny_disk(256 * 1024)[:512] + os.urandom(256 * 1024 - 512)
        location, _parts = self.upload_bundle(disk, "good", creds)
        image_id = self.register(location)
        image = self.settled(image_id)
        self.assertEqual(image["State"], "available", image.get("StateReason"))
        self.assertEqual(image["ImageLocation"], location)
        location, parts = self.upload_bundle(disk, "bad", creds)
        part = self.alice.s3.get_object(Bucket=self.bucket, Key=parts[1])["Body"].read()
        self.upload(parts[1], bytes([part[0] ^ 0xFF]) + part[1:])
        image_id = self.register(location)
        image = self.settled(image_id)
        self.assertEqual(image["State"], "failed")
        self.assertEqual(image["StateReason"]["Code"], "InvalidManifest")


class TinyImageTests(unittest.TestCase):
    """The all-in-one's tiny image: registered on first start, found on the next."""

    def test_registered_once(self) -> None:
        cloud = AllInOne(tiny_image=True, host="tiny-image-test")
        self.addCleanup(cloud.remove)
        self.addCleanup(cloud.stop)
        cloud.start(timeout=600)
        ami_file = cloud.state_dir / "creds" / "tiny-ami"
        ami = ami_file.read_text().strip()
        self.assertTrue(ami.startswith("ami-"))
        from tests.support.clients import Tenant
        user = Tenant(cloud)
        self.addCleanup(user.remove)
        images = {i["Name"]: i for i in user.boto3().describe_images(
            ExecutableUsers=["all"])["Images"]}
        self.assertEqual(sorted(images), ["nova-tiny", "nova-tiny-kernel", "nova-tiny-ramdisk"])
        self.assertEqual(images["nova-tiny"]["ImageId"], ami)
        self.assertEqual(images["nova-tiny"]["KernelId"], images["nova-tiny-kernel"]["ImageId"])
        self.assertTrue(all(i["State"] == "available" and i["Public"]
                            for i in images.values()))
        cloud.stop()
        cloud.start(timeout=600)
        self.assertEqual(ami_file.read_text().strip(), ami)
        again = user.boto3().describe_images(Owners=["admin"])["Images"]
        self.assertEqual(sorted(i["ImageId"] for i in again),
                         sorted(i["ImageId"] for i in images.values()))
