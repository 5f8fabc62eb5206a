"""
One background registration (L{Job}) and how its data becomes nova's copy
(L{ImageCopier}): a single object is downloaded (pinned to the ETag seen at
registration), checked and uploaded; a bundle's manifest signature and key
are checked (C{decrypting}), its parts downloaded as the registering user,
decrypted and unpacked (C{untarring}), and the result checked and uploaded.
The registrar (L{nova.image.registrar}) records the outcome and cleans up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable, Callable

from nova.image import importer, inspect
from nova.image.importer import ImageImporter, StoredImage
from nova.image.records import DECRYPTING, UNTARRING, Image
from nova.image.repository import ImageRepository


class Job:
    """
    One background registration and what it must clean up.

    @ivar image: the record as registered.
    @ivar user_id: who registered it (their certificate checks a bundle).
    @ivar source_etag: the ETag of the single object when it was registered.
    @ivar manifest: the parsed bundle manifest, or C{None} for a single object.
    @ivar uploading: set once nova's copy may exist (so a failure removes it).
    """

    def __init__(self, image: Image, user_id: str | None, source_etag: str | None,
                 manifest: Any = None) -> None:
        self.image = image
        self.user_id = user_id
        self.project_id = image.owner_project_id
        self.source_etag = source_etag
        self.manifest = manifest
        self.uploading = False


def read_head(path: str) -> bytes:
    """@return: the first L{inspect.HEAD_SIZE} bytes of a file. Blocking."""
    with open(path, "rb") as f:
        return f.read(inspect.HEAD_SIZE)


class ImageCopier:
    """
    Makes nova's copy of a job's image in its work directory and the store.

    @param importer: downloads, checks, stores.
    @param repository: for the bundle states (C{decrypting}, C{untarring}).
    @param client_factory: the service's object store client.
    @param user_client_factory: a user's client (bundle parts are read as the user).
    @param ca: decrypts bundle keys and lists user certificates.
    @param run_in_thread: runs blocking work off the reactor thread.
    """

    def __init__(self, importer: ImageImporter, repository: ImageRepository,
                 client_factory: Callable[[], Awaitable[Any]],
                 user_client_factory: Callable[[str, str], Awaitable[Any]], ca: Any,
                 run_in_thread: Callable[..., Awaitable[Any]]) -> None:
        self.importer = importer
        self._repo = repository
        self._client = client_factory
        self._user_client = user_client_factory
        self._ca = ca
        self._in_thread = run_in_thread

    async def copy(self, job: Job, work: Path) -> StoredImage:
        """
        @param work: the job's own work directory (exists; the caller removes it).
        @return: nova's copy.
        @raise NovaError: why the image cannot be registered.
        """
        if job.manifest is not None:
            return await self._copy_bundle(job, work)
        return await self._copy_object(job, work)

    async def _copy_object(self, job: Job, work: Path) -> StoredImage:
        bucket, _, key = job.image.image_location.partition("/")
        path = str(work / "image")
        client = await self._client()
        try:
            await self.importer.download(client, bucket, key, job.source_etag, path)
            checked = await self.importer.check_disk(path, job.image.image_type,
                                                     job.image.disk_format)
            job.uploading = True
            return await self.importer.store(client, job.image.image_id, path, checked)
        finally:
            await client.close()

    async def _copy_bundle(self, job: Job, work: Path) -> StoredImage:
        from nova.image import bundle
        manifest = job.manifest
        image_id = job.image.image_id
        await self._repo.update_state(image_id, DECRYPTING)
        if job.user_id is None:
            raise bundle.SignatureMismatch("no user certificate to check the manifest with")
        pems = await self._in_thread(self._ca.user_certificates, job.user_id)
        await self._in_thread(bundle.verify_signature, manifest, pems)
        await self._in_thread(bundle.decrypt_key, manifest, self._ca)
        if manifest.size > self.importer.max_size:
            raise inspect.ImageRejected(f"the image is {manifest.size} bytes: more than "
                                        f"{self.importer.max_size}")
        parts = await self._download_parts(job, work)
        await self._repo.update_state(image_id, UNTARRING)
        path = str(work / "image")
        await self.importer.unbundle(manifest, parts, self._ca, path)
        for part in parts:
            await self._in_thread(os.unlink, part)
        head = await self._in_thread(read_head, path)
        disk_format = importer.bundle_format(head, job.image.image_type)
        checked = await self.importer.check_disk(path, job.image.image_type, disk_format)
        client = await self._client()
        try:
            job.uploading = True
            return await self.importer.store(client, image_id, path, checked)
        finally:
            await client.close()

    async def _download_parts(self, job: Job, work: Path) -> list[str]:
        from nova.image import bundle
        bucket, _, key = job.image.image_location.partition("/")
        parts = []
        client = await self._user_client(job.user_id or "", job.project_id)
        try:
            for i, part_key in enumerate(bundle.part_keys(job.manifest, key)):
                path = str(work / f"part.{i}")
                try:
                    await self.importer.download(client, bucket, part_key, None, path)
                except inspect.ImageRejected:
                    raise bundle.PartError(
                        f"the part {bucket}/{part_key} cannot be read") from None
                parts.append(path)
        finally:
            await client.close()
        return parts
