"""Registering small test images in a running all-in-one, as a user does."""

from __future__ import annotations

from typing import Any

from tests.support.s3 import S3User, wait_for

MIB = 1024 * 1024


def raw_disk(size: int = MIB) -> bytes:
    """@return: a raw disk image: an MBR with one Linux partition, then zeros."""
    mbr = bytearray(512)
    entry = bytes([0x80, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") \
        + ((size // 512) - 2048 if size // 512 > 2048 else 1).to_bytes(4, "little")
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(size - 512)


def register_raw_image(user: S3User, test: Any, name: str = "test disk",
                       public: bool = False, timeout: float = 60.0) -> str:
    """
    Upload a small raw disk to a bucket of C{user}'s, register it, wait until
    it is available. @return: its ami id.
    """
    bucket = user.bucket(test, "img")
    user.s3.put_object(Bucket=bucket, Key="disk.img", Body=raw_disk())
    ec2 = user.boto3()
    image_id = ec2.register_image(ImageLocation=f"{bucket}/disk.img", Name=name)["ImageId"]
    test.addCleanup(_deregister, ec2, image_id)

    def available() -> bool:
        [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
        if image["State"] == "failed":
            raise AssertionError(f"image {image_id} failed: {image.get('StateReason')}")
        return image["State"] == "available"
    wait_for(available, timeout, f"{image_id} available")
    if public:
        ec2.modify_image_attribute(ImageId=image_id,
                                   LaunchPermission={"Add": [{"Group": "all"}]})
    return image_id


def _deregister(ec2: Any, image_id: str) -> None:
    try:
        ec2.deregister_image(ImageId=image_id)
    except Exception:
        pass  # already gone
