"""
How volumes and snapshots look in EC2 responses (the C{volumeSet},
C{attachmentSet} and C{snapshotSet} items), the values their filters match,
and the paging of DescribeVolumes and DescribeSnapshots. Pure functions of
the records.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from nova.api.ec2.xmlrender import format_timestamp
from nova.utils import paging
from nova.volume import states
from nova.volume.records import Snapshot, Volume

#: DescribeVolumes filter names (EC2's, less tags and VPC-only ones)
VOLUME_FILTERS = ("volume-id", "status", "size", "availability-zone", "create-time",
                  "snapshot-id", "volume-type", "encrypted", "attachment.instance-id",
                  "attachment.status", "attachment.device", "attachment.attach-time",
                  "attachment.delete-on-termination")
#: DescribeSnapshots filter names
SNAPSHOT_FILTERS = ("snapshot-id", "volume-id", "status", "owner-id", "description",
                    "progress", "start-time", "volume-size", "encrypted", "owner-alias")

#: every volume is of the one type this cloud has
VOLUME_TYPE = "standard"


def attachment(volume: Volume) -> dict[str, Any]:
    """
    @return: one C{attachmentSet} item (also AttachVolume's and
        DetachVolume's whole answer).
    """
    return {
        "volumeId": volume.volume_id,
        "instanceId": volume.instance_id,
        "device": volume.device,
        "status": volume.attach_status,
        "attachTime": format_timestamp(volume.attach_time)
        if volume.attach_time is not None else None,
        "deleteOnTermination": False,
    }


def describe_volume(volume: Volume) -> dict[str, Any]:
    """@return: one C{volumeSet} item of DescribeVolumes."""
    return {
        "volumeId": volume.volume_id,
        "size": volume.size,
        # EC2 writes an empty element for a volume made from nothing
        "snapshotId": volume.snapshot_id or "",
        "availabilityZone": volume.availability_zone,
        "status": volume.status,
        "createTime": format_timestamp(volume.created_at),
        "attachmentSet": [attachment(volume)] if volume.instance_id is not None else [],
        "volumeType": VOLUME_TYPE,
        "encrypted": False,
        "multiAttachEnabled": False,
        # 2010 nova's extension (UpdateVolume); absent unless set
        "displayName": volume.display_name,
        "displayDescription": volume.display_description,
    }


def created_volume(volume: Volume) -> dict[str, Any]:
    """@return: CreateVolume's answer: the DescribeVolumes item without attachments or names."""
    answer = describe_volume(volume)
    for name in ("attachmentSet", "displayName", "displayDescription"):
        del answer[name]
    return answer


def volume_fields(volume: Volume) -> dict[str, str | None]:
    """@return: the value each of L{VOLUME_FILTERS} matches (C{None}: nothing)."""
    attached = volume.attach_status != states.DETACHED
    return {
        "volume-id": volume.volume_id,
        "status": volume.status,
        "size": str(volume.size),
        "availability-zone": volume.availability_zone,
        "create-time": format_timestamp(volume.created_at),
        "snapshot-id": volume.snapshot_id,
        "volume-type": VOLUME_TYPE,
        "encrypted": "false",
        "attachment.instance-id": volume.instance_id,
        "attachment.status": volume.attach_status if attached else None,
        "attachment.device": volume.device,
        "attachment.attach-time": format_timestamp(volume.attach_time)
        if volume.attach_time is not None else None,
        "attachment.delete-on-termination": "false" if attached else None,
    }


def describe_snapshot(snapshot: Snapshot) -> dict[str, Any]:
    """@return: one C{snapshotSet} item (also CreateSnapshot's answer)."""
    return {
        "snapshotId": snapshot.snapshot_id,
        "volumeId": snapshot.volume_id,
        "status": snapshot.status,
        "stateMessage": snapshot.status_reason,
        "startTime": format_timestamp(snapshot.started_at),
        "progress": snapshot.progress,
        "ownerId": snapshot.project_id,
        "volumeSize": snapshot.volume_size,
        "description": snapshot.description,
        "encrypted": False,
    }


def snapshot_fields(snapshot: Snapshot) -> dict[str, str | None]:
    """@return: the value each of L{SNAPSHOT_FILTERS} matches (C{None}: nothing)."""
    return {
        "snapshot-id": snapshot.snapshot_id,
        "volume-id": snapshot.volume_id,
        "status": snapshot.status,
        "owner-id": snapshot.project_id,
        "description": snapshot.description,
        "progress": snapshot.progress,
        "start-time": format_timestamp(snapshot.started_at),
        "volume-size": str(snapshot.volume_size),
        "encrypted": "false",
        "owner-alias": None,
    }


# -- paging ------------------------------------------------------------------------

T = TypeVar("T", Volume, Snapshot)


def _position(record: Volume | Snapshot) -> list[Any]:
    record_id = record.volume_id if isinstance(record, Volume) else record.snapshot_id
    return [record.created_at, record_id]


def encode_token(record: Volume | Snapshot) -> str:
    """@return: a NextToken that resumes after C{record}."""
    created, record_id = _position(record)
    return paging.encode_token(created, record_id)


decode_token = paging.decode_token


def page(records: Sequence[T], max_results: int | None,
         next_token: str | None) -> tuple[list[T], str | None]:
    """
    @param records: oldest first (as the repositories list them).
    @param max_results: page size, or C{None} for all.
    @param next_token: where the previous page ended.
    @return: this page and the token of the next (C{None} on the last).
    """
    chosen = list(records)
    if next_token is not None:
        after = decode_token(next_token)
        chosen = [r for r in chosen if tuple(_position(r)) > after]
    if max_results is None or len(chosen) <= max_results:
        return chosen, None
    shown = chosen[:max_results]
    return shown, encode_token(shown[-1])
