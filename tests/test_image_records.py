"""
The image record, ids and launch permissions (L{nova.image.records},
L{nova.image.permissions}): pure, no datastore.
"""

from __future__ import annotations

import attr
from twisted.trial import unittest

from nova.datastore.errors import CorruptRecord
from nova.exception import AuthFailure, InvalidParameterValue, MissingParameter
from nova.image import permissions
from nova.image.permissions import ImageAuthFailure, InvalidAMIAttributeItemValue
from nova.image.records import (
    AVAILABLE, IMAGE_ID, Image, InvalidAMIIDMalformed, InvalidAMIIDNotFound,
    InvalidAMIIDUnavailable, InvalidAMINameMalformed, check_image_id, check_location,
    check_name, new_image_id, type_of_id)

_FORMAT = {"machine": "raw", "kernel": "aki", "ramdisk": "ari"}


def an_image(image_type: str = "machine", owner: str = "proj", **changes: object) -> Image:
    """@return: a fresh available image of C{owner}."""
    fields: dict[str, object] = dict(
        image_id=new_image_id(image_type), image_location="bucket/disk.img",
        image_type=image_type, state=AVAILABLE, owner_project_id=owner,
        disk_format=_FORMAT[image_type], created_at=1000.0)
    fields.update(changes)
    return Image(**fields)  # type: ignore[arg-type]


class IdTests(unittest.TestCase):

    def test_prefix_follows_type(self) -> None:
        for image_type, prefix in [("machine", "ami-"), ("kernel", "aki-"),
                                   ("ramdisk", "ari-")]:
            image_id = new_image_id(image_type)
            self.assertTrue(image_id.startswith(prefix))
            self.assertEqual(len(image_id), 4 + 17)
            self.assertTrue(IMAGE_ID.match(image_id))
            self.assertEqual(type_of_id(image_id), image_type)
        self.assertRaises(ValueError, new_image_id, "disk")

    def test_check_image_id(self) -> None:
        self.assertEqual(check_image_id("ami-0123456789abcdef0"), "ami-0123456789abcdef0")
        self.assertEqual(check_image_id("aki-00000001"), "aki-00000001")  # 2010 form
        for bad in ["ami-", "ami-XYZ", "ami-0123456789ABCDEF0", "i-0123456789abcdef0",
                    "ami-0123456789", "ami-00000001 ", 7, None]:
            e = self.assertRaises(InvalidAMIIDMalformed, check_image_id, bad)
            self.assertEqual(e.code, "InvalidAMIID.Malformed")
            self.assertIsInstance(e, InvalidParameterValue)
        self.assertRaises(InvalidAMIIDMalformed, check_image_id, "ami-00000001", "kernel")

    def test_names_and_locations(self) -> None:
        self.assertEqual(check_name("my image (v1.0) [x86]"), "my image (v1.0) [x86]")
        for bad in ["ab", "x" * 129, "bad*name", "tab\there"]:
            e = self.assertRaises(InvalidAMINameMalformed, check_name, bad)
            self.assertEqual(e.code, "InvalidAMIName.Malformed")
        self.assertEqual(check_location("b/k/x.manifest.xml"), "b/k/x.manifest.xml")
        for bad in ["bucket", "/key", "bucket/", "", 3]:
            self.assertRaises(InvalidParameterValue, check_location, bad)


class RecordTests(unittest.TestCase):

    def test_json_round_trip(self) -> None:
        image = an_image(name="tiny", description="d", kernel_id="aki-00000001",
                         ramdisk_id="ari-00000002", launch_permission_users=["b", "a", "b"],
                         size=42, checksum="ab" * 32, state_reason=("c", "m"))
        self.assertEqual(image.launch_permission_users, ("a", "b"))
        self.assertEqual(Image.from_json(image.to_json()), image)

    def test_consistency_is_checked(self) -> None:
        # the id's prefix follows the type
        self.assertRaises(InvalidAMIIDMalformed, an_image, image_id=new_image_id("kernel"))
        # formats per type
        self.assertRaises(ValueError, an_image, disk_format="aki")
        self.assertRaises(ValueError, an_image, "kernel", disk_format="qcow2")
        an_image("kernel", disk_format="bundle")
        # only machine images have default kernel and ramdisk, of the right type
        self.assertRaises(ValueError, an_image, "kernel", kernel_id="aki-00000001")
        self.assertRaises(InvalidAMIIDMalformed, an_image, kernel_id="ari-00000001")
        self.assertRaises(InvalidAMIIDMalformed, an_image, ramdisk_id="aki-00000001")
        for bad in [dict(state="deregistered"), dict(architecture="arm"),
                    dict(checksum="ABC"), dict(image_location="nobucket"),
                    dict(is_public="yes"), dict(launch_permission_users="a")]:
            self.assertRaises((ValueError, TypeError), an_image, **bad)
        self.assertRaises(TypeError, an_image, size=-1)

    def test_corrupt_record(self) -> None:
        data = an_image().to_dict()
        data["image_type"] = "kernel"  # the id says machine
        self.assertRaises(CorruptRecord, Image.from_dict, data)
        self.assertRaises(CorruptRecord, Image.from_json, "{")


class PermissionTests(unittest.TestCase):

    def test_visibility_matrix(self) -> None:
        private = an_image()
        public = an_image(is_public=True)
        shared = an_image(launch_permission_users=["friend"])
        cases = [
            # image, project, admin, may launch
            (private, "proj", False, True),
            (private, "other", False, False),
            (private, "other", True, True),
            (public, "other", False, True),
            (shared, "friend", False, True),
            (shared, "other", False, False),
        ]
        for image, project, admin, expected in cases:
            self.assertEqual(permissions.can_launch(image, project, admin), expected,
                             (image, project, admin))

    def test_check_launchable(self) -> None:
        image = an_image()
        self.assertIs(permissions.check_launchable(image, "proj", False), image)
        e = self.assertRaises(InvalidAMIIDNotFound, permissions.check_launchable,
                              image, "other", False)
        self.assertEqual((e.code, e.status), ("InvalidAMIID.NotFound", 400))
        self.assertIn(image.image_id, str(e))
        e2 = self.assertRaises(InvalidAMIIDUnavailable, permissions.check_launchable,
                               attr.evolve(image, state="pending"), "proj", False)
        self.assertEqual(e2.code, "InvalidAMIID.Unavailable")

    def test_modify_add_remove(self) -> None:
        image = an_image()
        image = permissions.modify(image, "proj", False, "add", groups=["all"],
                                   user_ids=["p2", "p1"])
        self.assertEqual((image.is_public, image.launch_permission_users), (True, ("p1", "p2")))
        self.assertEqual(permissions.describe(image, "proj", False), {
            "imageId": image.image_id,
            "launchPermission": [{"group": "all"}, {"userId": "p1"}, {"userId": "p2"}]})
        image = permissions.modify(image, "proj", False, "remove", user_ids=["p1", "absent"])
        self.assertEqual((image.is_public, image.launch_permission_users), (True, ("p2",)))
        image = permissions.modify(image, "proj", False, "remove", groups="all")
        self.assertEqual((image.is_public, image.launch_permission_users), (False, ("p2",)))
        image = permissions.modify(image, "proj", False, "add", user_ids=["p2"])
        self.assertEqual(image.launch_permission_users, ("p2",))
        image = permissions.reset(image, "proj", False)
        self.assertEqual((image.is_public, image.launch_permission_users), (False, ()))
        self.assertEqual(permissions.describe(image, "proj", False)["launchPermission"], [])

    def test_modify_bad_input(self) -> None:
        image = an_image()
        e = self.assertRaises(InvalidAMIAttributeItemValue, permissions.modify,
                              image, "proj", False, "add", groups=["everyone"])
        self.assertEqual(e.code, "InvalidAMIAttributeItemValue")
        self.assertIn("everyone", str(e))
        self.assertRaises(InvalidAMIAttributeItemValue, permissions.modify,
                          image, "proj", False, "add", user_ids=["has space"])
        self.assertRaises(InvalidAMIAttributeItemValue, permissions.modify,
                          image, "proj", False, "add", user_ids=[""])
        e2 = self.assertRaises(InvalidParameterValue, permissions.modify,
                               image, "proj", False, "replace", groups=["all"])
        self.assertEqual(e2.code, "InvalidParameterValue")
        self.assertRaises(MissingParameter, permissions.modify, image, "proj", False, "add")

    def test_only_owner_or_admin(self) -> None:
        public = an_image(is_public=True)
        private = an_image()
        for fn, args in [(permissions.modify, ("add",)), (permissions.reset, ()),
                         (permissions.describe, ())]:
            kwargs = {"groups": ["all"]} if fn is permissions.modify else {}
            e = self.assertRaises(ImageAuthFailure, fn, public, "other", False, *args, **kwargs)
            self.assertIsInstance(e, AuthFailure)
            self.assertEqual(e.code, "AuthFailure")
            self.assertIn(public.image_id, str(e))
            # an image the caller cannot see does not exist for it
            self.assertRaises(InvalidAMIIDNotFound, fn, private, "other", False, *args, **kwargs)
        # an admin may change any image
        self.assertTrue(permissions.modify(private, "admin-proj", True, "add",
                                           groups=["all"]).is_public)
        self.assertIs(permissions.check_owner(private, "proj", False), private)


class DataLocationTests(unittest.TestCase):
    """C{data_location}: where nova's copy of the bytes is (added later: old records load)."""

    def test_old_record_loads(self) -> None:
        image = an_image()
        data = image.to_dict()
        del data["data_location"]
        self.assertIsNone(Image.from_dict(data).data_location)

    def test_round_trip_and_validation(self) -> None:
        image = an_image(data_location="nova-images/ami-0123456789abcdef0")
        self.assertEqual(Image.from_json(image.to_json()), image)
        for bad in ["nobucket", "/key", "bucket/", 7]:
            self.assertRaises((ValueError, TypeError), an_image, data_location=bad)
        self.assertRaises(CorruptRecord, Image.from_dict,
                          dict(image.to_dict(), data_location="x"))
