"""
The background half of image registration: turn what a user registered (one
object, or a bundle's manifest and parts) into nova's own checked copy in
C{nova-images/<image id>}.

L{ImageImporter} knows nothing of image records or states: it downloads into
a work directory it is given, checks the bytes (L{nova.image.inspect}, and
C{qemu-img} for machine images), uploads, and returns what the record needs.
The registrar (L{nova.image.registrar}) moves the states, records failures and
cleans up.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Any, Awaitable, Callable

import attr

from nova.image import inspect
from nova.image.inspect import ImageRejected
from nova.image.records import KERNEL, MACHINE, RAMDISK
from nova.objectstore import errors as s3_errors
from nova.utils.process import CommandFailed, CommandTimedOut, IProcessRunner

#: the bucket of nova's own copies of registered images (admin project, private)
IMAGES_BUCKET = "nova-images"
#: seconds qemu-img may take to read an image's metadata
QEMU_IMG_TIMEOUT = 60.0
_CHUNK = 1024 * 1024

#: runs a blocking function off the reactor thread: C{(fn, *args) -> awaitable}
ThreadRunner = Callable[..., Awaitable[Any]]


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class StoredImage:
    """
    nova's copy of an image, as the record needs it.

    @ivar disk_format: C{raw}, C{qcow2}, C{aki} or C{ari}.
    @ivar size: bytes stored.
    @ivar checksum: lowercase hex SHA-256 of them.
    @ivar data_location: C{nova-images/<image id>}.
    """

    disk_format: str
    size: int
    checksum: str
    data_location: str


def head_and_digest(path: str) -> tuple[bytes, int, str]:
    """
    Read a file once: its first L{inspect.HEAD_SIZE} bytes, its size and its
    SHA-256. Blocking.

    @return: C{(head, size, sha256_hex)}.
    """
    digest = hashlib.sha256()
    size = 0
    head = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            if len(head) < inspect.HEAD_SIZE:
                head += chunk[:inspect.HEAD_SIZE - len(head)]
            digest.update(chunk)
            size += len(chunk)
    return head, size, digest.hexdigest()


def remove_tree(path: str) -> None:
    """Remove a work directory and what is in it (no error when it is gone). Blocking."""
    shutil.rmtree(path, ignore_errors=True)


class ImageImporter:
    """
    Downloads, checks and stores image data.

    @param run_in_thread: hashing, unbundling and file removal run off the
        reactor thread through it.
    @param runner: runs C{qemu-img}.
    @param max_size: the largest image (bytes, unpacked) accepted.
    """

    def __init__(self, run_in_thread: ThreadRunner, runner: IProcessRunner,
                 max_size: int) -> None:
        self._in_thread = run_in_thread
        self._runner = runner
        self.max_size = max_size

    async def check_disk(self, path: str, image_type: str, disk_format: str) -> StoredImage:
        """
        Check a local file as the image type and format registered.

        @return: what it is (C{data_location} still empty).
        @raise ImageRejected: it is not a bootable image of that type.
        """
        head, size, checksum = await self._in_thread(head_and_digest, path)
        if size == 0:
            raise ImageRejected("the image is empty")
        if size > self.max_size:
            raise ImageRejected(f"the image is {size} bytes: more than {self.max_size}")
        inspect.check_kind(head, image_type, disk_format)
        if image_type == MACHINE:
            if disk_format == "qcow2":
                inspect.check_qcow2_header(head)
            else:
                inspect.check_raw_disk(head)
            await self._qemu_img_checks(path, disk_format, size)
        return StoredImage(disk_format=disk_format, size=size, checksum=checksum,
                           data_location="")

    async def _qemu_img_checks(self, path: str, disk_format: str, size: int) -> None:
        # -f: never let qemu-img guess the format of a user's file
        argv = ["qemu-img", "info", "--output=json", "-f", disk_format, path]
        try:
            result = await self._runner.run(argv, timeout=QEMU_IMG_TIMEOUT)
        except CommandFailed as e:
            raise ImageRejected(f"qemu-img cannot read the image as {disk_format}: "
                                f"{e.stderr[-300:].decode('utf-8', 'replace').strip()}") from None
        except CommandTimedOut:
            raise ImageRejected("qemu-img took too long to read the image") from None
        virtual = inspect.check_qemu_info(result.stdout, disk_format, size)
        if virtual > 64 * self.max_size:
            raise ImageRejected(f"the disk's virtual size ({virtual} bytes) is too large")
        if disk_format == "qcow2":
            check = await self._runner.run(
                ["qemu-img", "check", "--output=json", "-f", "qcow2", path],
                timeout=QEMU_IMG_TIMEOUT, check=False)
            # 0: clean; 3: leaked clusters only (harmless); 2 corrupt; 1 unreadable
            if check.exit_code not in (0, 3):
                raise ImageRejected(f"qemu-img check finds the qcow2 image damaged "
                                    f"(status {check.exit_code})")

    async def download(self, client: Any, bucket: str, key: str, etag: str | None,
                       path: str) -> None:
        """
        Download one object, pinned to the ETag seen at registration.

        @raise ImageRejected: it was changed or deleted since.
        """
        try:
            await client.get_object_to_file(bucket, key, path, expected_etag=etag)
        except (s3_errors.PreconditionFailed, s3_errors.NoSuchKey, s3_errors.NoSuchBucket):
            raise ImageRejected(f"{bucket}/{key} was changed or deleted during "
                                f"registration") from None
        except s3_errors.AccessDenied:
            raise ImageRejected(f"{bucket}/{key} can no longer be read") from None

    async def store(self, client: Any, image_id: str, path: str,
                    checked: StoredImage) -> StoredImage:
        """
        Upload a checked file as C{nova-images/<image_id>} (creating the bucket,
        private to the admin project, on first use).

        @param client: signed as the cloud's admin.
        @return: C{checked} with its C{data_location}.
        """
        await ensure_images_bucket(client)
        await client.put_object_from_file(IMAGES_BUCKET, image_id, path,
                                          metadata={"sha256": checked.checksum})
        return attr.evolve(checked, data_location=f"{IMAGES_BUCKET}/{image_id}")

    async def unbundle(self, manifest: Any, part_paths: list[str], ca: Any,
                       out_path: str) -> None:
        """
        Decrypt and unpack downloaded bundle parts into C{out_path} (in a thread).

        @raise nova.image.bundle.InvalidManifest: a part, the key or the data is bad.
        """
        from nova.image import bundle
        try:
            await self._in_thread(bundle.unbundle, manifest, part_paths, ca, out_path)
        except BaseException:
            if os.path.exists(out_path):
                os.unlink(out_path)
            raise


async def ensure_images_bucket(client: Any) -> None:
    """
    Create C{nova-images} (private) unless the admin project has it already.

    @raise ImageStoreUnavailable: another project owns that bucket name.
    """
    try:
        await client.create_bucket(IMAGES_BUCKET)
    except s3_errors.BucketAlreadyOwnedByYou:
        pass
    except s3_errors.BucketAlreadyExists:
        raise ImageStoreUnavailable(
            f"the bucket {IMAGES_BUCKET} belongs to another project: nova cannot keep "
            "images there (an operator must remove it)") from None


class ImageStoreUnavailable(s3_errors.S3Error):
    """nova's image bucket cannot be used."""

    code = "Server.InternalError"


def type_from_manifest(image_type: str) -> str:
    """@return: the record's image type for a manifest's C{image/type}."""
    return {"machine": MACHINE, "kernel": KERNEL, "ramdisk": RAMDISK}[image_type]


def bundle_format(head: bytes, image_type: str) -> str:
    """
    @return: the disk format of an unbundled image of C{image_type}.
    @raise ImageRejected: its bytes are of another type.
    """
    found_type, disk_format = inspect.kind_of(head)
    if found_type != image_type:
        raise ImageRejected(f"the bundle says {image_type} but holds a {found_type} image")
    return disk_format
