"""
Where the object store keeps its files, under one root (the config's
C{objectstore_dir})::

    objects/<aa>/<bb>/<sha256(bucket NUL key)>   one file per object (objectfile format)
    uploads/<upload id>/upload.json             a multipart upload in progress
    uploads/<upload id>/<part number>           its parts (objectfile format, part headers)
    buckets/<bucket name>.json                  a bucket's record (names are checked first)
    tmp/                                        bodies being written; emptied at start
    quarantine/                                 files found unreadable at recovery
    clean-shutdown                              present only after a clean stop

Every name under the root is made here; none comes from a user as given.
The blocking helpers at the end (rename into place, unlink, fsync of
directories) are meant to run in a worker thread.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from nova.objectstore.store.names import check_bucket_name, is_upload_id, object_digest


class Layout:
    """
    The paths of one store.

    @ivar root: the store's directory.
    """

    def __init__(self, root: Path) -> None:
        """@param root: the store's directory (made by L{make_dirs})."""
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.uploads = self.root / "uploads"
        self.buckets = self.root / "buckets"
        self.tmp = self.root / "tmp"
        self.quarantine = self.root / "quarantine"
        self.marker = self.root / "clean-shutdown"

    def make_dirs(self) -> None:
        """Create the top-level directories (blocking; at start)."""
        for path in (self.objects, self.uploads, self.buckets, self.tmp, self.quarantine):
            path.mkdir(parents=True, exist_ok=True)
        # All 256 fan-out directories up front: a PUT then never creates a
        # directory (a mkdir and a journal commit on the hot path).
        for n in range(256):
            (self.objects / f"{n:02x}").mkdir(exist_ok=True)
        fsync_dir(self.objects)

    def object_path(self, bucket: str, key: str) -> Path:
        """@return: the file of the object C{bucket/key} (whether it exists or not)."""
        digest = object_digest(bucket, key)
        # one level of 256 directories: ~40,000 files each at 10 million
        # objects, well within what ext4's hashed directories handle
        return self.objects / digest[:2] / digest

    def bucket_path(self, name: str) -> Path:
        """@return: the file holding bucket C{name}'s record."""
        return self.buckets / f"{check_bucket_name(name)}.json"

    def upload_dir(self, upload_id: str) -> Path:
        """
        @return: the directory of an upload.
        @raise ValueError: not an upload id this store makes.
        """
        if not is_upload_id(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.uploads / upload_id

    def upload_record_path(self, upload_id: str) -> Path:
        """@return: the file describing an upload (its presence is the upload's existence)."""
        return self.upload_dir(upload_id) / "upload.json"

    def part_path(self, upload_id: str, part_number: int) -> Path:
        """@return: the file of part C{part_number} of an upload."""
        return self.upload_dir(upload_id) / f"{part_number:05d}"

    def new_temp_path(self) -> Path:
        """@return: a fresh name in C{tmp/} for a body being written."""
        return self.tmp / f"{secrets.token_hex(12)}.tmp"


def fsync_dir(path: Path) -> None:
    """Make the entries of directory C{path} (renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, stop: Path) -> None:
    """
    Make directory C{path} and any missing parents below C{stop}, each new
    entry made durable (so a renamed file in it survives a power cut).
    """
    if path.is_dir() or path == stop:
        return
    ensure_dir(path.parent, stop)
    try:
        path.mkdir()
    except FileExistsError:
        return
    fsync_dir(path.parent)


def place(src: Path, dst: Path, stop: Path | None, sync: bool = True) -> None:
    """
    Rename C{src} over C{dst} (atomic: a reader opens the old file or the
    new one) and make the rename durable.

    @param stop: the directory below which missing parents of C{dst} are
        made; C{None}: the parent must exist.
    @param sync: make the rename durable here; C{False} when the caller makes
        it durable itself (a L{nova.objectstore.store.durability.GroupSync}).
    @raise FileNotFoundError: C{stop} is C{None} and the parent is missing.
    """
    if stop is not None:
        ensure_dir(dst.parent, stop)
    os.replace(src, dst)
    if sync:
        fsync_dir(dst.parent)


def remove(path: Path, sync: bool = True) -> bool:
    """
    Unlink C{path} and make that durable (unless C{sync} is false: see L{place}).

    @return: whether it existed.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    if sync:
        fsync_dir(path.parent)
    return True


def remove_quietly(path: Path) -> None:
    """Unlink C{path} if it is there, without waiting for the disk (clean-up of temporary files)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_tree(path: Path) -> None:
    """Remove directory C{path} and the files in it (one level: an upload's directory)."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(Path(entry.path))
        else:
            remove_quietly(Path(entry.path))
    try:
        os.rmdir(path)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
            raise
    else:
        fsync_dir(path.parent)
