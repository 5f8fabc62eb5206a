"""
L{ImageRegistrar}: RegisterImage and DeregisterImage.

RegisterImage answers at once. Synchronously it checks the arguments and that
the caller may read the location (a HEAD signed as the caller), decides the
image type (a bundle's manifest says it; a single object's first bytes do,
L{nova.image.inspect.kind_of}) and writes the record C{pending}. In the
background it then makes nova's own checked copy, C{nova-images/<image id>}
(L{nova.image.importer}): bundles go C{decrypting} (signature, parts) then
C{untarring} (decrypt, unpack) then C{available}; single objects are
downloaded, checked and copied, then C{available}. Any failure makes the
image C{failed} with a stateReason saying why, and leaves neither a work
file nor a C{nova-images} object behind.

Background jobs are tracked: L{ImageRegistrar.close} cancels them (their
images become C{failed}: "registration interrupted"), and
L{ImageRegistrar.recover} at start fails the images a crash left unfinished
and removes what they left. Only one process per cloud should run recovery
(the one hosting the EC2 API; see docs/images.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from nova.context import RequestContext
from nova.exception import InvalidParameterValue, NovaError
from nova.image import importer, inspect, permissions
from nova.image.copying import ImageCopier, Job
from nova.image.importer import IMAGES_BUCKET, ImageImporter
from nova.image.records import (
    ARCHITECTURES, AVAILABLE, DECRYPTING, FAILED, IMAGE_ID, KERNEL, MACHINE, PENDING,
    RAMDISK, UNTARRING, Image, IncorrectImageState, InvalidAMIIDNotFound,
    InvalidAMIIDUnavailable, check_description, check_image_id, check_name,
    new_image_id, type_of_id)
from nova.image.registrar_checks import (
    InvalidAMINameDuplicate, InvalidManifestLocation, RegistrarClosed, check_image_location,
    reason_of)
from nova.image.repository import ImageRepository
from nova.objectstore import errors as s3_errors

log = Logger()

__all__ = ["ImageRegistrar", "INTERRUPTED", "IMAGES_BUCKET", "InvalidAMINameDuplicate",
           "InvalidManifestLocation", "RegistrarClosed", "check_image_location"]

#: the stateReason of an image whose registration a stop or a crash cut short
INTERRUPTED = ("Server.InternalError", "registration interrupted")
UNFINISHED = frozenset({PENDING, DECRYPTING, UNTARRING})
#: the largest manifest read (real ones are a few KiB)
MAX_MANIFEST_BYTES = 1024 * 1024
DEFAULT_MAX_SIZE = 20 * 1024 ** 3

#: makes an object store client: the service's (no argument) or a user's in a project
ClientFactory = Callable[[], Awaitable[Any]]
UserClientFactory = Callable[[str, str], Awaitable[Any]]


class ImageRegistrar:
    """
    Registers and deregisters images.

    @param repository: the image records.
    @param client_factory: makes an object store client signed as the cloud's
        admin (reads every bucket, owns C{nova-images}); the caller closes it.
    @param user_client_factory: C{(user_id, project_id)} to a client signed as
        that user, for the access check at registration and bundle parts.
    @param ca: the cloud's certificate authority (bundle keys, user certificates).
    @param run_in_thread: runs blocking functions off the reactor thread.
    @param runner: runs C{qemu-img}.
    @param work_dir: where downloads and unpacked bundles are kept meanwhile.
    @param clock: the time of registration.
    @param max_size: the largest image accepted, in bytes (unpacked).
    """

    def __init__(self, repository: ImageRepository, client_factory: ClientFactory,
                 user_client_factory: UserClientFactory, ca: Any,
                 run_in_thread: Callable[..., Awaitable[Any]], runner: Any,
                 work_dir: Path, clock: Any, *, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.repository = repository
        self._client = client_factory
        self._user_client = user_client_factory
        self._ca = ca
        self._in_thread = run_in_thread
        self._copier = ImageCopier(ImageImporter(run_in_thread, runner, max_size), repository,
                                   client_factory, user_client_factory, ca, run_in_thread)
        self._work_dir = Path(work_dir)
        self._clock = clock
        # images registered from now on cannot be a crashed run's leftovers
        self._born = clock.seconds()
        self._max_size = max_size
        self._jobs: dict[str, defer.Deferred[None]] = {}
        self._closed = False

    # -- RegisterImage --------------------------------------------------------

    async def register(self, context: RequestContext, location: str,
                       name: str | None = None, description: str | None = None,
                       architecture: str | None = None, kernel_id: str | None = None,
                       ramdisk_id: str | None = None) -> Image:
        """
        Register the image at C{location}; its data is copied in the background.

        @param context: the caller; its project owns the image.
        @param location: C{bucket/key} of a bundle manifest (C{*.manifest.xml})
            or of a single raw, qcow2, kernel or ramdisk object.
        @param architecture: C{x86_64} (default) or C{i386}.
        @param kernel_id: the default kernel (C{aki-}) of a machine image.
        @param ramdisk_id: the default ramdisk (C{ari-}) of a machine image.
        @return: the new record, C{pending}.
        @raise InvalidParameterValue: a malformed location, an unknown
            architecture, a kernel or ramdisk for a non-machine image, a too
            large or empty object.
        @raise InvalidManifestLocation: the location does not exist or the
            caller may not read it (C{InvalidManifest}).
        @raise nova.image.bundle.InvalidManifest: an unparsable manifest.
        @raise InvalidAMINameMalformed: a bad name or description.
        @raise InvalidAMINameDuplicate: the project has an image of that name.
        @raise InvalidAMIIDMalformed: a kernel or ramdisk id is not an image id.
        @raise InvalidAMIIDNotFound: the caller may not use that kernel or ramdisk.
        @raise RegistrarClosed: the registrar is shutting down.
        """
        if self._closed:
            raise RegistrarClosed()
        if context.project_id is None:
            raise InvalidParameterValue("RegisterImage needs a project")
        bucket, key, is_bundle = check_image_location(location)
        location = f"{bucket}/{key}"
        if name is not None:
            check_name(name)
        if description is not None:
            check_description(description)
        if architecture is not None and architecture not in ARCHITECTURES:
            raise InvalidParameterValue(
                f"Value ({architecture}) for parameter architecture is invalid. "
                f"Valid values: {', '.join(sorted(ARCHITECTURES))}")
        manifest = None
        client = await self._client_for(context)
        try:
            head = await self._readable(client, bucket, key)
            if is_bundle:
                manifest = await self._manifest(client, bucket, key)
                image_type = importer.type_from_manifest(manifest.image_type)
                disk_format = "bundle"
                architecture = architecture or (
                    manifest.architecture if manifest.architecture in ARCHITECTURES
                    else None)
                kernel_id = kernel_id or _manifest_id(manifest.kernel_id)
                ramdisk_id = ramdisk_id or _manifest_id(manifest.ramdisk_id)
            else:
                if head.size == 0:
                    raise InvalidParameterValue(f"The image object {location} is empty")
                if head.size > self._max_size:
                    raise InvalidParameterValue(
                        f"The image object {location} is {head.size} bytes; this cloud "
                        f"accepts at most {self._max_size}")
                first = await client.get_object_range(bucket, key, 0, inspect.HEAD_SIZE,
                                                      expected_etag=head.etag or None)
                image_type, disk_format = inspect.kind_of(first)
        finally:
            await client.close()
        if image_type != MACHINE and (kernel_id or ramdisk_id):
            raise InvalidParameterValue(
                f"Only machine images have a kernel or ramdisk; {location} is a {image_type} "
                "image")
        if kernel_id:
            await self._check_default(context, kernel_id, KERNEL, "KernelId")
        if ramdisk_id:
            await self._check_default(context, ramdisk_id, RAMDISK, "RamdiskId")
        if name is not None:
            await self._check_unique_name(context.project_id, name)
        record = Image(
            image_id=new_image_id(image_type), image_location=location,
            image_type=image_type, state=PENDING, owner_project_id=context.project_id,
            architecture=architecture or "x86_64", kernel_id=kernel_id or None,
            ramdisk_id=ramdisk_id or None, disk_format=disk_format, name=name,
            description=description, created_at=self._clock.seconds())
        await self.repository.register(record)
        self._start(Job(record, context.user_id, head.etag or None, manifest))
        return record

    async def _client_for(self, context: RequestContext) -> Any:
        if context.user_id is None:
            return await self._client()
        return await self._user_client(context.user_id, context.project_id or "")

    @staticmethod
    async def _readable(client: Any, bucket: str, key: str) -> Any:
        location = f"{bucket}/{key}"
        try:
            return await client.head_object(bucket, key)
        except (s3_errors.NoSuchKey, s3_errors.NoSuchBucket):
            raise InvalidManifestLocation(
                f"The image location {location} does not exist") from None
        except s3_errors.AccessDenied:
            raise InvalidManifestLocation(
                f"You may not read the image location {location}") from None

    @staticmethod
    async def _manifest(client: Any, bucket: str, key: str) -> Any:
        from nova.image import bundle
        try:
            data = await client.get_object_bytes(bucket, key, MAX_MANIFEST_BYTES)
        except s3_errors.EntityTooLarge:
            raise bundle.InvalidManifest(
                f"The manifest {bucket}/{key} is larger than {MAX_MANIFEST_BYTES} bytes"
            ) from None
        except (s3_errors.NoSuchKey, s3_errors.NoSuchBucket, s3_errors.AccessDenied):
            raise InvalidManifestLocation(
                f"The manifest {bucket}/{key} cannot be read") from None
        return bundle.parse_manifest(data)

    async def _check_default(self, context: RequestContext, image_id: str,
                             image_type: str, what: str) -> None:
        if type_of_id(check_image_id(image_id)) != image_type:
            raise InvalidParameterValue(
                f"Value ({image_id}) for parameter {what} is invalid: not a {image_type} image")
        image = await self.repository.get_visible(image_id, context.project_id or "",
                                                  context.is_admin)
        if image.state == FAILED:
            raise InvalidAMIIDUnavailable(f"The {image_type} image '{image_id}' failed to "
                                          "register and cannot be used")

    async def _check_unique_name(self, project_id: str, name: str) -> None:
        # AWS keeps AMI names unique per account; failed images do not count.
        # Not atomic: two registrations racing with one name may both pass.
        same = await self.repository.describe(project_id, False, owners=["self"],
                                              filters={"name": [name.replace("*", "\\*")
                                                                .replace("?", "\\?")]})
        if any(i.state != FAILED and i.name == name for i in same):
            raise InvalidAMINameDuplicate(f"AMI name {name} is already in use by AMI "
                                          f"{next(i.image_id for i in same if i.name == name)}")

    # -- the background job ---------------------------------------------------

    def _start(self, job: Job) -> None:
        image_id = job.image.image_id
        d = defer.Deferred.fromCoroutine(self._run(job))

        def done(result: Any) -> None:
            self._jobs.pop(image_id, None)
            if isinstance(result, Failure) and not result.check(
                    defer.CancelledError):
                log.failure("registering {image} failed", result, image=image_id)
        d.addBoth(done)
        if not d.called:
            self._jobs[image_id] = d

    async def _run(self, job: Job) -> None:
        image_id = job.image.image_id
        work = self._work_dir / image_id
        try:
            await self._in_thread(lambda: os.makedirs(work, exist_ok=True))
            stored = await self._copier.copy(job, work)
            await self.repository.update_state(
                image_id, AVAILABLE, disk_format=stored.disk_format, size=stored.size,
                checksum=stored.checksum, data_location=stored.data_location)
            log.info("image {image} is available ({size} bytes, {fmt})", image=image_id,
                     size=stored.size, fmt=stored.disk_format)
        except defer.CancelledError:
            await self._fail(job, INTERRUPTED)
            raise
        except InvalidAMIIDNotFound:
            # deregistered meanwhile: nothing to record, only to clean
            await self._fail(job, None)
        except IncorrectImageState:
            await self._fail(job, None)
        except Exception as e:
            if not isinstance(e, NovaError):
                log.failure("registering {image}", image=image_id)
            await self._fail(job, reason_of(e))
        finally:
            await self._in_thread(importer.remove_tree, str(work))

    async def _fail(self, job: Job, reason: tuple[str, str] | None) -> None:
        """Record the failure (unless C{reason} is C{None}) and remove the copy."""
        image_id = job.image.image_id
        if reason is not None:
            log.warn("image {image} failed: {code}: {message}", image=image_id,
                     code=reason[0], message=reason[1])
            try:
                await self.repository.update_state(image_id, FAILED, reason)
            except (InvalidAMIIDNotFound, IncorrectImageState):
                pass
            except Exception:
                log.failure("could not mark {image} failed", image=image_id)
        if job.uploading:
            await self._delete_copy(image_id)

    async def _delete_copy(self, image_id: str) -> None:
        try:
            client = await self._client()
            try:
                await client.delete_object(IMAGES_BUCKET, image_id)
            finally:
                await client.close()
        except (s3_errors.NoSuchBucket, s3_errors.NoSuchKey):
            pass
        except Exception:
            log.failure("could not delete {bucket}/{image}", bucket=IMAGES_BUCKET,
                        image=image_id)

    # -- DeregisterImage ------------------------------------------------------

    async def deregister(self, context: RequestContext, image_id: str) -> Image:
        """
        Remove an image's record and nova's copy of its data (not what the
        user registered: that stays in the user's bucket, as in AWS). A
        registration still running is cancelled.

        @return: the removed record.
        @raise InvalidAMIIDMalformed: not an image id.
        @raise InvalidAMIIDNotFound: no such image, or one the caller may not see.
        @raise permissions.ImageAuthFailure: another project's image.
        """
        image = await self.repository.get(check_image_id(image_id))
        permissions.check_owner(image, context.project_id or "", context.is_admin)
        removed = await self.repository.deregister(image_id)
        running = self._jobs.get(image_id)
        if running is not None:
            running.cancel()
            await _settled(running)
        await self._delete_copy(image_id)
        return removed

    # -- life cycle -----------------------------------------------------------

    async def recover(self) -> list[str]:
        """
        At start: fail the images a crash left unfinished (those registered
        before this registrar was made and still unfinished), remove their
        work files, and remove C{nova-images} objects that no image names.

        @return: the ids of the images marked failed.
        """
        failed = []
        for image in await self.repository.describe("", True):
            if (image.state in UNFINISHED and image.image_id not in self._jobs
                    and image.created_at < self._born):
                try:
                    await self.repository.update_state(image.image_id, FAILED, INTERRUPTED)
                    failed.append(image.image_id)
                except (InvalidAMIIDNotFound, IncorrectImageState):
                    pass
        await self._clean_work_dir()
        try:
            await self._collect_orphans()
        except NovaError as e:
            # e.g. the first start: no admin user yet, hence no image copies either
            log.info("not looking for orphaned image copies: {error}", error=e)
        if failed:
            log.warn("registration of {images} was interrupted: marked failed",
                     images=", ".join(failed))
        return failed

    async def _clean_work_dir(self) -> None:
        # another registrar of this process (the all-in-one's tiny image) may
        # be working here: keep what belongs to an image still being registered
        for name in await self._in_thread(_entries, self._work_dir):
            if name in self._jobs:
                continue
            if IMAGE_ID.match(name):
                try:
                    if (await self.repository.get(name)).state in UNFINISHED:
                        continue
                except InvalidAMIIDNotFound:
                    pass
            await self._in_thread(_remove, self._work_dir / name)

    async def _collect_orphans(self) -> None:
        client = await self._client()
        try:
            try:
                listing = await client.list_objects(IMAGES_BUCKET)
            except s3_errors.NoSuchBucket:
                return
            for item in listing.objects:
                if not IMAGE_ID.match(item.key):
                    continue
                try:
                    await self.repository.get(item.key)
                except InvalidAMIIDNotFound:
                    await client.delete_object(IMAGES_BUCKET, item.key)
        finally:
            await client.close()

    async def wait_idle(self) -> None:
        """Wait until no registration runs in the background."""
        while self._jobs:
            await _settled(next(iter(self._jobs.values())))

    def running(self) -> frozenset[str]:
        """@return: the ids of the images being registered in the background."""
        return frozenset(self._jobs)

    async def close(self) -> None:
        """Refuse new registrations; cancel the running ones and wait for their clean-up."""
        self._closed = True
        for d in list(self._jobs.values()):
            d.cancel()
        await self.wait_idle()


async def _settled(d: defer.Deferred[Any]) -> None:
    waiting: defer.Deferred[Any] = defer.Deferred()
    d.addBoth(lambda r: (waiting.callback(None), r)[1])
    await waiting


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


def _remove(path: Path) -> None:
    if path.is_dir():
        importer.remove_tree(str(path))
    else:
        path.unlink(missing_ok=True)


def _manifest_id(value: str | None) -> str | None:
    # euca2ools writes the --kernel/--ramdisk it was given; anything that is
    # not an image id (e.g. "true" from old tools) is no default
    return value if value and IMAGE_ID.match(value) else None
