"""
Reconciling the datastore with the files after a run that did not stop
cleanly (a crash, a kill -9, a power cut, a datastore that lost its data).

The files are the truth: a bucket exists when its C{buckets/<name>.json}
does, an object when its file does (with a readable header whose bucket and
key hash to its name), an upload when its C{upload.json} does. The walk of
the files runs in a worker thread (L{scan_files}); the datastore is then
brought in line (L{reconcile}): missing records and index entries added,
stale ones removed. Unreadable files are moved to C{quarantine/}; objects
and uploads of buckets that do not exist are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import attr
from twisted.logger import Logger

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.objectstore.store.index import ObjectIndex
from nova.objectstore.store.layout import Layout, remove_quietly, remove_tree
from nova.objectstore.store.names import is_bucket_name, is_upload_id, object_digest
from nova.objectstore.store.objectfile import CorruptObjectFile, info_from_header
from nova.objectstore.store.reader import open_file
from nova.objectstore.store.records import (BadRecord, bucket_from_json, part_from_header,
                                            part_to_json, summary_to_json, upload_from_json)

log = Logger()

#: how many index entries one datastore write carries
_CHUNK = 1000


@attr.s(auto_attribs=True)
class RecoveryReport:
    """What a recovery found and changed (counts)."""

    tmp_removed: int = 0
    buckets: int = 0
    objects: int = 0
    uploads: int = 0
    quarantined: int = 0
    orphans_removed: int = 0
    records_fixed: int = 0
    index_added: int = 0
    index_removed: int = 0


@attr.s(auto_attribs=True)
class FileScan:
    """What the files hold: the truth a reconcile applies."""

    #: bucket name to its record text
    buckets: dict[str, str] = attr.Factory(dict)
    #: bucket name to {key: summary text}
    objects: dict[str, dict[str, str]] = attr.Factory(dict)
    #: upload id to (bucket, record text, {part number: part record text})
    uploads: dict[str, tuple[str, str, dict[str, str]]] = attr.Factory(dict)


def clear_tmp(layout: Layout) -> int:
    """Remove every leftover of the writers in C{tmp/}. Blocking. @return: how many."""
    removed = 0
    for entry in os.scandir(layout.tmp):
        if entry.is_dir(follow_symlinks=False):
            remove_tree(Path(entry.path))
        else:
            remove_quietly(Path(entry.path))
        removed += 1
    return removed


def _quarantine(layout: Layout, path: Path, report: RecoveryReport, why: str) -> None:
    log.warn("object store: moving unreadable {path} to quarantine: {why}",
             path=str(path), why=why)
    target = layout.quarantine / f"{path.parent.name}-{path.name}"
    os.replace(path, target)
    report.quarantined += 1


def scan_files(layout: Layout, report: RecoveryReport) -> FileScan:
    """Walk the store's files; remove what no longer belongs. Blocking: run it in a thread."""
    scan = FileScan()
    for entry in os.scandir(layout.buckets):
        path = Path(entry.path)
        name = entry.name[:-len(".json")] if entry.name.endswith(".json") else None
        if name is None or not is_bucket_name(name):
            remove_quietly(path)  # a temporary file of an interrupted write
            continue
        text = path.read_text("utf-8", errors="replace")
        try:
            bucket, _ = bucket_from_json(text)
        except BadRecord as e:
            _quarantine(layout, path, report, str(e))
            continue
        if bucket.name == name:
            scan.buckets[name] = text
    report.buckets = len(scan.buckets)
    for name in scan.buckets:
        scan.objects[name] = {}
    for path in _object_files(layout):
        _scan_object(layout, path, scan, report)
    for entry in os.scandir(layout.uploads):
        _scan_upload(layout, Path(entry.path), scan, report)
    return scan


def _object_files(layout: Layout) -> list[Path]:
    found = []
    for top in os.scandir(layout.objects):
        if not top.is_dir(follow_symlinks=False):
            continue
        found.extend(Path(e.path) for e in os.scandir(top.path)
                     if e.is_file(follow_symlinks=False))
    return found


def _scan_object(layout: Layout, path: Path, scan: FileScan, report: RecoveryReport) -> None:
    try:
        opened = open_file(path)
        if opened is None:
            return
        fd, header, _ = opened
        os.close(fd)
        info = info_from_header(header)
        if object_digest(info.bucket, info.key) != path.name:
            raise CorruptObjectFile("its name is not the hash of its bucket and key")
    except (CorruptObjectFile, UnicodeError, OSError) as e:
        _quarantine(layout, path, report, str(e))
        return
    if info.bucket not in scan.buckets:
        remove_quietly(path)  # the bucket is gone: an orphan of a crash
        report.orphans_removed += 1
        return
    scan.objects[info.bucket][info.key] = summary_to_json(info)
    report.objects += 1


def _scan_upload(layout: Layout, path: Path, scan: FileScan, report: RecoveryReport) -> None:
    upload_id = path.name
    try:
        record = (path / "upload.json").read_text("utf-8") if is_upload_id(upload_id) else None
        upload = upload_from_json(record) if record is not None else None
    except (OSError, UnicodeError, BadRecord):
        upload = None
    if upload is None or upload.upload_id != upload_id or upload.bucket not in scan.buckets:
        remove_tree(path)  # aborted, completed or orphaned: not an upload any more
        report.orphans_removed += 1
        return
    parts: dict[str, str] = {}
    for entry in os.scandir(path):
        if entry.name == "upload.json":
            continue
        file = Path(entry.path)
        try:
            opened = open_file(file) if entry.name.isdigit() else None
            if opened is None:
                raise CorruptObjectFile("not a part")
            os.close(opened[0])
            part = part_from_header(opened[1])
            if f"{part.part_number:05d}" != entry.name:
                raise CorruptObjectFile("a part under another number")
        except (CorruptObjectFile, BadRecord, OSError):
            remove_quietly(file)
            continue
        parts[str(part.part_number)] = part_to_json(part)
    scan.uploads[upload_id] = (upload.bucket, record, parts)  # type: ignore[assignment]
    report.uploads += 1


async def reconcile(datastore: IDatastore, index: ObjectIndex, scan: FileScan,
                    report: RecoveryReport) -> None:
    """Make the datastore say what the files say."""
    listed = await datastore.smembers(keys.s3_buckets())
    known: dict[str, tuple[str, str | None]] = {}  # member -> (raw, name)
    for member in sorted(listed):
        raw = await datastore.get(member)
        name = None
        if raw is not None:
            try:
                name = bucket_from_json(raw)[0].name
            except BadRecord:
                pass
        known[member] = (raw or "", name)
    names = set(scan.buckets) | {name for _, name in known.values() if name is not None}
    await _reconcile_uploads(datastore, scan, names, report)
    # buckets: records and index sets
    for member, (raw, name) in known.items():
        if name is None or name not in scan.buckets:
            await _drop_bucket(datastore, member, raw, name)
            report.records_fixed += 1
    for name, text in scan.buckets.items():
        key = keys.s3_bucket(name)
        old = await datastore.get(key)
        if old != text or key not in listed:
            await _put_bucket(datastore, key, text, old)
            report.records_fixed += 1
    # the listing index of each bucket
    for name, wanted in scan.objects.items():
        current = await index.all_summaries(name)
        stale = [k for k in current if k not in wanted]
        for i in range(0, len(stale), _CHUNK):
            await index.remove(name, *stale[i:i + _CHUNK])
        changed = [k for k, text in wanted.items() if current.get(k) != text]
        for i in range(0, len(changed), _CHUNK):
            await _put_summaries(datastore, name, {k: wanted[k] for k in changed[i:i + _CHUNK]})
        report.index_removed += len(stale)
        report.index_added += len(changed)


async def _reconcile_uploads(datastore: IDatastore, scan: FileScan, names: set[str],
                             report: RecoveryReport) -> None:
    """Drop the upload records no upload file backs; write those of the upload files."""
    wanted = {keys.s3_upload(upload_id): bucket
              for upload_id, (bucket, _, _) in scan.uploads.items()}
    for name in sorted(names):
        uploads_key = keys.s3_uploads_of_bucket(name)
        for member in sorted(await datastore.smembers(uploads_key)):
            if wanted.get(member) == name:
                continue
            raw = await datastore.get(member)
            stale = [member]
            try:
                if raw is not None:
                    stale.append(keys.s3_parts(upload_from_json(raw).upload_id))
            except BadRecord:
                pass
            if member not in wanted:
                await datastore.delete(*stale)
            await datastore.srem(uploads_key, member)
            report.records_fixed += 1
    for upload_id, (bucket, record, parts) in scan.uploads.items():
        await _put_upload(datastore, upload_id, bucket, record, parts)


async def _drop_bucket(datastore: IDatastore, member: str, raw: str,
                       name: str | None) -> None:
    async def drop(txn: ITransaction) -> None:
        txn.delete(member)
        txn.srem(keys.s3_buckets(), member)
        if raw:
            try:
                owner = bucket_from_json(raw)[0].owner
                txn.srem(keys.s3_buckets_of_project(owner.project_id), member)
            except BadRecord:
                pass
        if name is not None:
            txn.delete(keys.s3_object_index(name), keys.s3_object_summaries(name),
                       keys.s3_uploads_of_bucket(name))

    await datastore.transact([], drop)


async def _put_bucket(datastore: IDatastore, key: str, text: str, old: str | None) -> None:
    owner = bucket_from_json(text)[0].owner.project_id
    try:
        was = bucket_from_json(old)[0].owner.project_id if old is not None else None
    except BadRecord:
        was = None

    async def put(txn: ITransaction) -> None:
        txn.set(key, text)
        txn.sadd(keys.s3_buckets(), key)
        if was is not None and was != owner:
            txn.srem(keys.s3_buckets_of_project(was), key)
        txn.sadd(keys.s3_buckets_of_project(owner), key)

    await datastore.transact([], put)


async def _put_summaries(datastore: IDatastore, bucket: str, summaries: dict[str, str]) -> None:
    async def put(txn: ITransaction) -> None:
        txn.zadd(keys.s3_object_index(bucket), {k: 0 for k in summaries})
        txn.hset(keys.s3_object_summaries(bucket), summaries)

    await datastore.transact([], put)


async def _put_upload(datastore: IDatastore, upload_id: str, bucket: str, record: str,
                      parts: dict[str, str]) -> None:
    upload_key = keys.s3_upload(upload_id)

    async def put(txn: ITransaction) -> None:
        txn.set(upload_key, record)
        txn.sadd(keys.s3_uploads_of_bucket(bucket), upload_key)
        txn.delete(keys.s3_parts(upload_id))
        txn.hset(keys.s3_parts(upload_id), parts)

    await datastore.transact([], put)
