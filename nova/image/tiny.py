"""
The tiny test image as registered images: on the all-in-one's first start
the kernel (C{aki}), the initramfs (C{ari}) and a small raw disk (C{ami},
booting that kernel and ramdisk) are uploaded to the bucket C{nova-tiny} of
the admin project, registered under the names L{NAMES}, made public, and
waited for. Later starts find them and register nothing (unless the build
changed: then the stale ones are deregistered and the new ones registered).

Set C{NOVA_SKIP_TINY_IMAGE=1} in the environment to start without it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import attr
from twisted.logger import Logger

from nova.context import RequestContext
from nova.exception import NovaError
from nova.image.records import AVAILABLE, FAILED, Image
from nova.image.registrar import ImageRegistrar
from nova.objectstore import errors as s3_errors

log = Logger()

#: the bucket the tiny image's files are uploaded to (admin project, private)
TINY_BUCKET = "nova-tiny"
#: image type to the name the tiny image is registered under
NAMES = {"kernel": "nova-tiny-kernel", "ramdisk": "nova-tiny-ramdisk", "machine": "nova-tiny"}
#: the raw disk's size: an MBR and one empty Linux partition
DISK_SIZE = 1024 * 1024
DEFAULT_CACHE = "/var/tmp/nova-tiny-image-cache"
#: the file under the credentials directory that names the tiny ami
AMI_FILE = "tiny-ami"


class TinyImageFailed(NovaError):
    """The tiny image could not be registered."""


def tiny_disk(size: int = DISK_SIZE) -> bytes:
    """
    @return: a raw disk of C{size} bytes, always the same: an MBR (fixed disk
        signature C{nova}) with one Linux (0x83) partition from sector 2048
        (or 63 for a small disk) to the end, all zeros inside.
    """
    sectors = size // 512
    start = 2048 if sectors > 4096 else 63
    mbr = bytearray(512)
    mbr[440:444] = b"nova"
    mbr[446:462] = bytes([0x00, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF]) + struct.pack(
        "<II", start, sectors - start)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr) + bytes(size - 512)


def skip_requested(environ: Mapping[str, str]) -> bool:
    """@return: whether C{NOVA_SKIP_TINY_IMAGE} asks to start without the tiny image."""
    return environ.get("NOVA_SKIP_TINY_IMAGE", "").strip().lower() in ("1", "true", "yes")


def cache_dir(environ: Mapping[str, str]) -> Path:
    """@return: where the tiny image is built (C{NOVA_TINY_IMAGE_CACHE}, else /var/tmp)."""
    return Path(environ.get("NOVA_TINY_IMAGE_CACHE") or DEFAULT_CACHE)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class TinyFiles:
    """The three files to register: local paths and their SHA-256."""

    kernel: Path
    ramdisk: Path
    disk: Path

    def of_type(self, image_type: str) -> Path:
        return {"kernel": self.kernel, "ramdisk": self.ramdisk, "machine": self.disk}[image_type]


def prepare_files(build_dir: Path, disk_dir: Path,
                  build: Callable[[Path], Mapping[str, Any]] | None = None) -> TinyFiles:
    """
    Build (or find cached) the tiny image and write its raw disk. Blocking.

    @param build: C{nova.virt.tinyimage.build.build}-like (tests substitute it).
    """
    if build is None:
        from nova.virt.tinyimage.build import build as build_image

        def build(out: Path) -> Mapping[str, Any]:
            return build_image(out, log=lambda line: log.info("{line}", line=line))
    build(build_dir)
    disk_dir.mkdir(parents=True, exist_ok=True)
    disk = disk_dir / "tiny-disk.img"
    data = tiny_disk()
    if not disk.exists() or disk.read_bytes() != data:
        temp = disk.with_suffix(".tmp")
        temp.write_bytes(data)
        os.replace(temp, disk)
    return TinyFiles(kernel=build_dir / "vmlinuz", ramdisk=build_dir / "initrd.img", disk=disk)


def sha256_of(path: Path) -> str:
    """@return: the file's hex SHA-256. Blocking."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def ensure_tiny_image(registrar: ImageRegistrar, client_factory: Callable[[], Awaitable[Any]],
                            admin: RequestContext,
                            run_in_thread: Callable[..., Awaitable[Any]],
                            files: TinyFiles) -> str:
    """
    Make sure the tiny image is registered, public and available in the
    admin project; register (and wait for) what is missing.

    @param registrar: registers as C{admin}; its jobs are waited for.
    @param client_factory: the service's object store client (uploads to L{TINY_BUCKET}).
    @param admin: the admin user in the admin project.
    @param files: the built files (L{prepare_files}).
    @return: the ami id.
    @raise TinyImageFailed: one of the three did not become available.
    """
    repo = registrar.repository
    wanted = {t: await run_in_thread(sha256_of, files.of_type(t)) for t in NAMES}
    current = await _current(repo, admin, wanted)
    if all(current.get(t) for t in NAMES):
        return current["machine"].image_id  # type: ignore[union-attr]
    # a rebuilt kernel or ramdisk makes the ami stale too: redo what is not current
    if not (current.get("kernel") and current.get("ramdisk")):
        current["machine"] = None
    for image in await repo.describe(admin.project_id or "", False, owners=["self"]):
        if image.name in NAMES.values() and image.state != FAILED and not any(
                c is not None and c.image_id == image.image_id for c in current.values()):
            log.info("deregistering the stale tiny image {image}", image=image.image_id)
            await registrar.deregister(admin, image.image_id)
    client = await client_factory()
    try:
        try:
            await client.create_bucket(TINY_BUCKET)
        except s3_errors.BucketAlreadyOwnedByYou:
            pass
        for image_type in NAMES:
            if current.get(image_type) is None:
                await client.put_object_from_file(TINY_BUCKET, files.of_type(image_type).name,
                                                  str(files.of_type(image_type)))
    finally:
        await client.close()
    made: dict[str, Image] = {}
    for image_type in ("kernel", "ramdisk"):
        made[image_type] = current.get(image_type) or await registrar.register(
            admin, f"{TINY_BUCKET}/{files.of_type(image_type).name}", name=NAMES[image_type],
            description=f"the tiny test image's {image_type}")
    made["machine"] = await registrar.register(
        admin, f"{TINY_BUCKET}/{files.disk.name}", name=NAMES["machine"],
        description="the tiny test image (busybox, dropbear; see docs/tiny-image.md)",
        kernel_id=made["kernel"].image_id, ramdisk_id=made["ramdisk"].image_id)
    await registrar.wait_idle()
    for image_type, image in made.items():
        stored = await repo.change(image.image_id, lambda i: attr.evolve(i, is_public=True))
        if stored.state != AVAILABLE:
            raise TinyImageFailed(f"the tiny {image_type} image {image.image_id} is "
                                  f"{stored.state}: {stored.state_reason}")
    log.info("registered the tiny image {ami} (kernel {aki}, ramdisk {ari})",
             ami=made["machine"].image_id, aki=made["kernel"].image_id,
             ari=made["ramdisk"].image_id)
    return made["machine"].image_id


async def _current(repo: Any, admin: RequestContext,
                   wanted: dict[str, str]) -> dict[str, Image | None]:
    """@return: image type to the available, public tiny image with the wanted bytes."""
    found: dict[str, Image | None] = {t: None for t in NAMES}
    for image in await repo.describe(admin.project_id or "", False, owners=["self"]):
        for image_type, name in NAMES.items():
            if (image.name == name and image.image_type == image_type
                    and image.state == AVAILABLE and image.is_public
                    and image.checksum == wanted[image_type]):
                found[image_type] = image
    machine = found["machine"]
    if machine is not None and (machine.kernel_id != getattr(found["kernel"], "image_id", None)
                                or machine.ramdisk_id != getattr(found["ramdisk"], "image_id",
                                                                 None)):
        found["machine"] = None
    return found


async def register_tiny_image(server: Any, environ: Mapping[str, str]) -> str | None:
    """
    The all-in-one's first-start step: build, upload, register and wait for
    the tiny image, then write its ami id to C{<creds dir>/tiny-ami}.

    @param server: the opened L{nova.server.NovaServer}.
    @param environ: the process environment (C{NOVA_SKIP_TINY_IMAGE},
        C{NOVA_TINY_IMAGE_CACHE}).
    @return: the ami id, or C{None} when skipped or when it failed (logged:
        the cloud works without it).
    """
    from nova.image.wiring import image_registrar, work_dir
    if skip_requested(environ):
        log.info("NOVA_SKIP_TINY_IMAGE is set: not registering the tiny image")
        return None
    config = server.config
    user = await server.auth.get_user(config.admin_user)
    admin = RequestContext(user_id=user.id, project_id=config.admin_project, is_admin=True)
    registrar = image_registrar(server)
    try:
        files = await server.run_in_thread(prepare_files, cache_dir(environ),
                                           work_dir(config).parent / "tiny")
        ami = await ensure_tiny_image(registrar, server.service_objectstore_client, admin,
                                      server.run_in_thread, files)
    except Exception as e:
        log.failure("the tiny image could not be registered: {error}", error=e)
        return None
    finally:
        await registrar.close()
    from nova.utils.files import write_atomically
    await server.run_in_thread(write_atomically, config.creds_dir / AMI_FILE,
                               (ami + "\n").encode(), 0o644)
    return ami
