"""
A point-in-time copy of an in-use volume, for a crash-consistent snapshot.

Guests write to a volume through the volume host's qemu-storage-daemon (its
NBD export), so that daemon is where a consistent image can be cut: QMP
C{blockdev-backup} with C{sync: full} copies the volume's node into a
target file node and, while it runs, a copy-before-write filter it inserts
above the node copies every old block to the target before a guest write
replaces it. The target therefore holds the volume exactly as it was when
the job started (what a power cut at that instant would have left on disk),
while the guest goes on writing; the snapshot is then uploaded from it
(L{nova.volume.snapshots.upload_snapshot}) and it is deleted.

This module only builds the QMP commands (pure data) and reads the job's
state; the QMP client that sends them is L{nova.volume.exports.nbd}'s.
docs/snapshots.md gives the sequence with its failure paths.
"""

from __future__ import annotations

import os
import re
from typing import Any

from nova.volume.snapshot_format import SnapshotError

#: QEMU's well-formed ids (C{id_wellformed}): a letter, then letters, digits,
#: C{-}, C{.}, C{_}; a node name holds at most 31 characters
_QEMU_ID = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,30}")
_COPY_SUFFIX = "-pit"
#: how many of L{point_in_time_commands} to send before waiting for the job
COMMANDS_BEFORE_WAIT = 2


class PointInTimeFailed(SnapshotError):
    """The daemon's backup job failed or vanished: there is no point-in-time copy."""


def _check_id(what: str, value: str, longest: int = 31) -> None:
    if not _QEMU_ID.fullmatch(value) or len(value) > longest:
        raise ValueError(f"{what} {value!r} is not a QEMU id of at most {longest} "
                         "characters (a letter, then letters, digits, '-', '.', '_')")


def copy_node_name(job_id: str) -> str:
    """@return: the node name of the target file node of job C{job_id}."""
    _check_id("job id", job_id, 31 - len(_COPY_SUFFIX))
    return job_id + _COPY_SUFFIX


def create_copy_target(path: str, size: int) -> None:
    """
    Blocking: create the copy's target file, sparse, exactly C{size} bytes
    (C{blockdev-backup} wants a target of the source's size; C{blockdev-add}
    opens a file, it does not create one).

    @raise FileExistsError: something is at C{path} already.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def point_in_time_commands(node_name: str, target_path: str,
                           job_id: str) -> list[dict[str, Any]]:
    """
    The QMP commands that copy node C{node_name}, as it is when the job
    starts, into the file C{target_path} (made first with
    L{create_copy_target}, of the volume's size).

    Send the first L{COMMANDS_BEFORE_WAIT} (C{blockdev-add} of the target,
    C{blockdev-backup}); wait until L{backup_job_done} says the job
    concluded (poll C{query-jobs}, or wake up on the C{JOB_STATUS_CHANGE}
    / C{BLOCK_JOB_COMPLETED} events); then send the rest (C{job-dismiss},
    C{blockdev-del}) whether the job succeeded or not. The job is not
    dismissed automatically so that its outcome can still be read after
    an event was missed.

    @param node_name: the node the volume's export serves.
    @param target_path: an absolute path on the volume host.
    @param job_id: a QEMU id for the job (at most 27 characters); the
        target node is named after it (L{copy_node_name}).
    @return: C{{"execute": ..., "arguments": ...}} dicts, in order.
    @raise ValueError: a name QEMU would refuse, or a relative path.
    """
    _check_id("node name", node_name)
    target = copy_node_name(job_id)
    if not os.path.isabs(target_path) or "\0" in target_path:
        raise ValueError(f"the copy's path must be absolute: {target_path!r}")
    return [
        {"execute": "blockdev-add",
         "arguments": {"driver": "file", "node-name": target, "filename": target_path,
                       # the copy's zero ranges may stay holes: it is read, then deleted
                       "discard": "unmap"}},
        {"execute": "blockdev-backup",
         "arguments": {"job-id": job_id, "device": node_name, "target": target,
                       "sync": "full", "auto-finalize": True, "auto-dismiss": False,
                       "on-source-error": "report", "on-target-error": "report"}},
        {"execute": "job-dismiss", "arguments": {"id": job_id}},
        {"execute": "blockdev-del", "arguments": {"node-name": target}},
    ]


def cancel_command(job_id: str) -> dict[str, Any]:
    """
    @return: the command that stops a backup job still running (the
        snapshot is given up); wait for it to conclude, then send the
        clean-up commands as usual.
    """
    _check_id("job id", job_id)
    return {"execute": "job-cancel", "arguments": {"id": job_id}}


def backup_job_done(query_jobs: list[dict[str, Any]], job_id: str) -> bool:
    """
    Read a C{query-jobs} answer.

    @param query_jobs: the C{return} value of C{query-jobs}.
    @return: C{True} once job C{job_id} concluded successfully (the copy is
        complete), C{False} while it still runs.
    @raise PointInTimeFailed: the job concluded with an error (or was
        cancelled), or is not there.
    """
    for job in query_jobs:
        if job.get("id") != job_id:
            continue
        status = job.get("status")
        if status != "concluded":
            return False
        if "error" in job:
            raise PointInTimeFailed(f"the point-in-time copy {job_id} failed: {job['error']}")
        if job.get("current-progress") != job.get("total-progress"):
            raise PointInTimeFailed(f"the point-in-time copy {job_id} stopped at "
                                    f"{job.get('current-progress')} of "
                                    f"{job.get('total-progress')} bytes")
        return True
    raise PointInTimeFailed(f"the daemon has no job {job_id}")


__all__ = ["COMMANDS_BEFORE_WAIT", "PointInTimeFailed", "backup_job_done", "cancel_command",
           "copy_node_name", "create_copy_target", "point_in_time_commands"]
