"""
Backing stores: where a volume's blocks live on the volume host.

L{IBackingStore} makes, finds, lists and removes one block device or file
per volume, named after the volume id (so that nova only ever touches what
it made):

    - L{SparseFileBacking}: a sparse raw file C{<directory>/<volume-id>.img}
      (the default here: this machine has no LVM volume group);
    - L{LvmBacking}: a logical volume C{<vg>/<volume-id>} (2010 nova's
      C{nova-volumes} group), through C{lvcreate}, C{lvremove} and C{lvs};
    - L{MemoryBacking}: bookkeeping only, for unit tests of callers.

Every operation is idempotent: creating a volume that exists with the same
size returns its path, deleting one that does not exist does nothing.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Awaitable, Callable

from twisted.internet import defer
from zope.interface import Attribute, Interface, implementer

from nova.exception import Duplicate, ProcessError
from nova.utils.process import IProcessRunner
from nova.volume import host_ids

__all__ = ["IBackingStore", "SparseFileBacking", "LvmBacking", "MemoryBacking",
           "BackingError", "BackingConflict", "MAX_SIZE_GB", "GIB"]

GIB = 1024 ** 3
#: the largest volume a backing store makes (GiB); the API has its own limit
MAX_SIZE_GB = 16384


class BackingError(ProcessError):
    """The backing store could not make, find or remove a volume's storage."""


class BackingConflict(Duplicate):
    """The volume's storage already exists with another size."""

    code = "VolumeAlreadyExists"


def _size(size_gb: object) -> int:
    return host_ids.bounded_int("volume size (GiB)", size_gb, 1, MAX_SIZE_GB)


class IBackingStore(Interface):
    """One volume host's storage for volumes, one device or file per volume."""

    kind = Attribute("C{'file'}, C{'lvm'} or C{'memory'}.")

    def create(volume_id: str, size_gb: int) -> str:
        """
        Make the volume's storage (an C{async} method); idempotent.

        @param volume_id: C{vol-} and 17 hex digits.
        @param size_gb: its size in GiB (1 to L{MAX_SIZE_GB}).
        @return: the absolute path of its block device or file.
        @raise nova.utils.validate.InvalidIdentifier: for a bad id or size.
        @raise BackingConflict: it exists with another size.
        @raise BackingError: the host could not make it.
        """

    def delete(volume_id: str) -> None:
        """
        Remove the volume's storage and its data (C{async}); nothing when absent.

        @raise BackingError: the host could not remove it (e.g. still open).
        """

    def path(volume_id: str) -> str | None:
        """@return: (C{async}) the path of the volume's storage, or C{None}."""

    def exists(volume_id: str) -> bool:
        """@return: (C{async}) whether the volume's storage exists."""

    def list() -> list[str]:
        """@return: (C{async}) the ids of the volumes that have storage here, sorted."""


_FILE = re.compile(r"(vol-[0-9a-f]{17})\.img")


@implementer(IBackingStore)
class SparseFileBacking:
    """
    Volumes as sparse raw files C{<directory>/<volume-id>.img}.

    A file is made under a temporary name, given its size (no blocks are
    written: reads return zeros until the guest writes), fsync'd and renamed
    into place, so a crash never leaves a half-made volume under its real
    name. All file system work runs off the reactor thread.

    @param run_in_thread: runs a blocking function in a worker thread and
        returns its result (C{NovaServer.run_in_thread}).
    @param directory: where the files live (created); an absolute path.
    """

    kind = "file"

    def __init__(self, run_in_thread: Callable[..., Awaitable[Any]], directory: str) -> None:
        self.directory = host_ids.host_path(os.path.abspath(directory))
        self._run_in_thread = run_in_thread
        self._lock = defer.DeferredLock()

    def file_path(self, volume_id: str) -> str:
        """@return: where the volume's file is (whether or not it exists)."""
        return os.path.join(self.directory, host_ids.volume_id(volume_id) + ".img")

    async def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self._lock.acquire()
        try:
            return await self._run_in_thread(fn, *args)
        finally:
            self._lock.release()

    async def create(self, volume_id: str, size_gb: int) -> str:
        """See L{IBackingStore.create}."""
        target = self.file_path(volume_id)
        size = _size(size_gb) * GIB
        return await self._locked(self._create, target, size)

    def _create(self, target: str, size: int) -> str:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        try:
            existing = os.stat(target).st_size
        except FileNotFoundError:
            existing = None
        if existing is not None:
            if existing != size:
                raise BackingConflict(
                    f"{target} exists with {existing} bytes, not {size}")
            return target
        tmp = f"{target}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, target)
        except OSError as e:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise BackingError(f"cannot create {target}: {e}") from None
        self._sync_directory()
        return target

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def delete(self, volume_id: str) -> None:
        """See L{IBackingStore.delete}."""
        await self._locked(self._delete, self.file_path(volume_id))

    def _delete(self, target: str) -> None:
        try:
            os.unlink(target)
        except FileNotFoundError:
            return
        except OSError as e:
            raise BackingError(f"cannot remove {target}: {e}") from None
        self._sync_directory()

    async def path(self, volume_id: str) -> str | None:
        """See L{IBackingStore.path}."""
        target = self.file_path(volume_id)
        found = await self._run_in_thread(os.path.isfile, target)
        return target if found else None

    async def exists(self, volume_id: str) -> bool:
        """See L{IBackingStore.exists}."""
        return await self.path(volume_id) is not None

    async def list(self) -> list[str]:
        """See L{IBackingStore.list}."""
        return await self._run_in_thread(self._list)

    def _list(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(m.group(1) for m in map(_FILE.fullmatch, names) if m is not None)


@implementer(IBackingStore)
class LvmBacking:
    """
    Volumes as logical volumes C{<vg>/<volume-id>} (C{/dev/<vg>/<volume-id>}).

    State is read from C{lvs --reportformat json} before every change, so a
    repeated create or delete is harmless. Only logical volumes named like
    volume ids are listed or removed: a group shared with other users is safe.

    @param runner: runs C{lvcreate}, C{lvremove} and C{lvs} (as root).
    @param volume_group: the volume group (2010 nova: C{nova-volumes}).
    @param timeout: seconds each LVM command may take.
    """

    kind = "lvm"

    def __init__(self, runner: IProcessRunner, volume_group: str, *,
                 timeout: float = 120.0) -> None:
        self.volume_group = host_ids.volume_group(volume_group)
        self._runner = runner
        self._timeout = timeout
        self._lock = defer.DeferredLock()

    async def _volumes(self) -> dict[str, tuple[str, int]]:
        """@return: volume id -> (device path, size in bytes) for the group's volumes."""
        result = await self._runner.run(
            ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
             "-o", "lv_name,lv_path,lv_size", self.volume_group], timeout=self._timeout)
        try:
            report = json.loads(result.stdout)
            rows = [lv for part in report["report"] for lv in part.get("lv", [])]
            found = {}
            for lv in rows:
                name = lv["lv_name"]
                if host_ids.VOLUME_ID.fullmatch(name):
                    path = lv.get("lv_path") or f"/dev/{self.volume_group}/{name}"
                    found[name] = (path, int(lv["lv_size"]))
        except (ValueError, KeyError, TypeError) as e:
            raise BackingError(f"cannot read the output of lvs: {e}") from None
        return found

    async def create(self, volume_id: str, size_gb: int) -> str:
        """See L{IBackingStore.create}."""
        host_ids.volume_id(volume_id)
        size = _size(size_gb)
        await self._lock.acquire()
        try:
            existing = (await self._volumes()).get(volume_id)
            if existing is not None:
                if existing[1] != size * GIB:
                    raise BackingConflict(f"logical volume {self.volume_group}/{volume_id}"
                                          f" exists with {existing[1]} bytes, not {size} GiB")
                return existing[0]
            # --yes: answer lvcreate's "wipe signature?" question (stdin is closed).
            await self._runner.run(["lvcreate", "--yes", "-L", f"{size}G", "-n", volume_id,
                                    self.volume_group], timeout=self._timeout)
            made = (await self._volumes()).get(volume_id)
            if made is None:
                raise BackingError(f"lvcreate made no {self.volume_group}/{volume_id}")
            return made[0]
        finally:
            self._lock.release()

    async def delete(self, volume_id: str) -> None:
        """See L{IBackingStore.delete}."""
        host_ids.volume_id(volume_id)
        await self._lock.acquire()
        try:
            if volume_id in await self._volumes():
                await self._runner.run(["lvremove", "-f", f"{self.volume_group}/{volume_id}"],
                                       timeout=self._timeout)
        finally:
            self._lock.release()

    async def path(self, volume_id: str) -> str | None:
        """See L{IBackingStore.path}."""
        host_ids.volume_id(volume_id)
        found = (await self._volumes()).get(volume_id)
        return None if found is None else found[0]

    async def exists(self, volume_id: str) -> bool:
        """See L{IBackingStore.exists}."""
        return await self.path(volume_id) is not None

    async def list(self) -> list[str]:
        """See L{IBackingStore.list}."""
        return sorted(await self._volumes())


@implementer(IBackingStore)
class MemoryBacking:
    """
    Bookkeeping only: paths under a directory that is never touched.

    For unit tests of callers that need an L{IBackingStore} without files.

    @param directory: the prefix of the paths it reports.
    """

    kind = "memory"

    def __init__(self, directory: str = "/nonexistent/nova-volumes") -> None:
        self.directory = host_ids.host_path(directory)
        self.sizes: dict[str, int] = {}

    async def create(self, volume_id: str, size_gb: int) -> str:
        """See L{IBackingStore.create}."""
        host_ids.volume_id(volume_id)
        size = _size(size_gb)
        if self.sizes.setdefault(volume_id, size) != size:
            raise BackingConflict(f"{volume_id} exists with {self.sizes[volume_id]} GiB")
        return f"{self.directory}/{volume_id}.img"

    async def delete(self, volume_id: str) -> None:
        """See L{IBackingStore.delete}."""
        self.sizes.pop(host_ids.volume_id(volume_id), None)

    async def path(self, volume_id: str) -> str | None:
        """See L{IBackingStore.path}."""
        host_ids.volume_id(volume_id)
        return f"{self.directory}/{volume_id}.img" if volume_id in self.sizes else None

    async def exists(self, volume_id: str) -> bool:
        """See L{IBackingStore.exists}."""
        return await self.path(volume_id) is not None

    async def list(self) -> list[str]:
        """See L{IBackingStore.list}."""
        return sorted(self.sizes)
