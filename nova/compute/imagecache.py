"""
The compute node's image cache: each image's bytes fetched from the object
store once per host, checked against the image's SHA-256, and kept under
C{<instances dir>/_base/<sha256>} as the read-only base of every instance
disk made from it (and as the kernel and ramdisk files of aki/ari images).

Files are named by content, so two images with the same bytes share one
file, and a base file is complete by construction: a download goes to a
temporary name and is renamed only after its hash matched.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Awaitable, Callable

from twisted.internet import defer

from nova.exception import ClientError, NovaError
from nova.image.records import Image

_SHA256 = re.compile(r"[0-9a-f]{64}\Z")

ThreadRunner = Callable[..., Awaitable[Any]]


class ImageUnavailable(ClientError):
    """The image cannot be launched: not available, or its data is missing."""

    code = "InvalidAMIID.Unavailable"


class ImageCorrupted(NovaError):
    """The bytes fetched from the object store are not those the image registered."""


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _install(temp: str, target: str) -> None:
    os.chmod(temp, 0o444)
    os.replace(temp, target)


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class ImageCache:
    """
    @param base_dir: where base files live (created).
    @param client_factory: returns a service L{nova.objectstore.client.ObjectStoreClient}
        (an admin's: it reads every bucket); called once, on first use.
    @param run_in_thread: runs blocking file work off the reactor thread.
    """

    def __init__(self, base_dir: Path, client_factory: Callable[[], Awaitable[Any]],
                 run_in_thread: ThreadRunner) -> None:
        self.base_dir = Path(base_dir)
        self._client_factory = client_factory
        self._client: Any = None
        self._run_in_thread = run_in_thread
        self._fetching: dict[str, list[defer.Deferred[str]]] = {}

    def path_of(self, image: Image) -> Path:
        """@return: where the base file of C{image} is (or will be)."""
        return self.base_dir / self._checksum(image)

    @staticmethod
    def _checksum(image: Image) -> str:
        if not image.is_available or image.checksum is None or not image.data_location:
            raise ImageUnavailable(f"The image '{image.image_id}' is not available "
                                   f"(state {image.state})")
        if not _SHA256.match(image.checksum):
            raise ImageUnavailable(f"The image '{image.image_id}' has no usable checksum")
        return image.checksum

    async def fetch(self, image: Image) -> Path:
        """
        @return: the path of the image's verified base file, downloading it
            first when this host does not have it. Concurrent fetches of one
            image share one download.
        @raise ImageUnavailable: the image is not available.
        @raise ImageCorrupted: the downloaded bytes do not have its checksum.
        """
        target = self.path_of(image)
        if await self._run_in_thread(target.exists):
            return target
        checksum = self._checksum(image)
        # every waiter gets its own Deferred, so one cancelled waiter cancels nothing else
        mine: defer.Deferred[str] = defer.Deferred()
        waiters = self._fetching.get(checksum)
        if waiters is not None:
            waiters.append(mine)
        else:
            self._fetching[checksum] = [mine]

            def finish(result: object) -> None:
                for waiter in self._fetching.pop(checksum, []):
                    waiter.callback(result)

            defer.Deferred.fromCoroutine(self._download(image, target)).addBoth(finish)
        await mine
        return target

    async def _download(self, image: Image, target: Path) -> str:
        await self._run_in_thread(self.base_dir.mkdir, 0o755, True, True)
        bucket, _, key = (image.data_location or "").partition("/")
        temp = str(target) + ".download"
        client = await self._get_client()
        try:
            await client.get_object_to_file(bucket, key, temp)
            found = await self._run_in_thread(_sha256_file, temp)
            if found != image.checksum:
                raise ImageCorrupted(f"image {image.image_id}: fetched data has SHA-256 {found},"
                                     f" registered {image.checksum}")
            await self._run_in_thread(_install, temp, str(target))
        except BaseException:
            await self._run_in_thread(_discard, temp)
            raise
        return str(target)

    async def _get_client(self) -> Any:
        if self._client is None:
            self._client = await self._client_factory()
        return self._client

    async def close(self) -> None:
        """Close the object store client."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
