"""
The bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
GetBucketLocation, Get/PutBucketAcl, and the answers about the bucket
configurations this store never has (policy, CORS, lifecycle, versioning...).
"""

from __future__ import annotations

from typing import Any

from nova.objectstore.http import errors as http_errors, xmlrender
from nova.objectstore.http.auth import canonical_id, require_signed
from nova.objectstore.http.call import Response, S3Call
from nova.objectstore.http.common import bucket_for, canned_acl
from nova.objectstore.http.listing import list_objects, list_objects_v2
from nova.objectstore.http.xmlparse import parse_acl, parse_create_bucket

#: GET of an absent configuration: the error S3 answers with
_MISSING = {
    "policy": http_errors.NoSuchBucketPolicy,
    "cors": http_errors.NoSuchCORSConfiguration,
    "lifecycle": http_errors.NoSuchLifecycleConfiguration,
    "tagging": http_errors.NoSuchTagSet,
    "website": http_errors.NoSuchWebsiteConfiguration,
    "encryption": http_errors.NoEncryptionConfiguration,
    "replication": http_errors.NoReplicationConfiguration,
    "object-lock": http_errors.NoObjectLockConfiguration,
    "ownershipControls": http_errors.NoOwnershipControls,
    "publicAccessBlock": http_errors.NoPublicAccessBlock,
}
#: GET of a configuration that has an "empty" document: (root, children)
_EMPTY = {
    "versioning": ("VersioningConfiguration", ()),
    "logging": ("BucketLoggingStatus", ()),
    "notification": ("NotificationConfiguration", ()),
    "requestPayment": ("RequestPaymentConfiguration", (("Payer", "BucketOwner"),)),
    "accelerate": ("AccelerateConfiguration", ()),
    "policyStatus": ("PolicyStatus", (("IsPublic", "false"),)),
}


async def list_buckets(service: Any, call: S3Call) -> Response:
    """ListBuckets: the project's buckets (every bucket, for a superuser)."""
    identity = require_signed(call.identity)
    project = None if identity.is_superuser else identity.project_id
    found = await service.store.list_buckets(project)
    owner = identity.owner
    return Response.xml(xmlrender.list_buckets(owner, canonical_id(owner.project_id), found))


async def create_bucket(service: Any, call: S3Call) -> Response:
    """CreateBucket, owned by the caller's project; a LocationConstraint is accepted."""
    identity = require_signed(call.identity)
    parse_create_bucket(call.body)
    acl = canned_acl(call.headers) or "private"
    assert call.route.bucket is not None
    await service.store.create_bucket(call.route.bucket, identity.owner, acl)
    return Response(headers=[("Location", f"/{call.route.bucket}"), ("Content-Length", "0")])


async def head_bucket(service: Any, call: S3Call) -> Response:
    """HeadBucket: whether it exists and the caller may list it."""
    await bucket_for(service, call, "READ")
    return Response(headers=[("Content-Length", "0")])


async def delete_bucket(service: Any, call: S3Call) -> Response:
    """DeleteBucket: the owner's; it must be empty."""
    bucket = await bucket_for(service, call, None)
    await service.store.delete_bucket(bucket.name)
    return Response(status=204)


async def get_bucket_location(service: Any, call: S3Call) -> Response:
    """GetBucketLocation: the cloud's region (every bucket lives there)."""
    await bucket_for(service, call, None)
    return Response.xml(xmlrender.location(service.region))


async def get_bucket_acl(service: Any, call: S3Call) -> Response:
    """GetBucketAcl: the owner and the grants of the bucket's canned ACL."""
    bucket = await bucket_for(service, call, None)
    return Response.xml(xmlrender.access_control_policy(
        bucket.owner, canonical_id(bucket.owner.project_id), bucket.acl))


async def put_bucket_acl(service: Any, call: S3Call) -> Response:
    """PutBucketAcl: a canned ACL, from x-amz-acl or an equivalent policy document."""
    bucket = await bucket_for(service, call, None)
    acl = acl_from_call(call, canonical_id(bucket.owner.project_id))
    await service.store.set_bucket_acl(bucket.name, acl)
    return Response(headers=[("Content-Length", "0")])


def acl_from_call(call: S3Call, owner_id: str) -> str:
    """
    @return: the canned ACL a Put*Acl request sets: its C{x-amz-acl} header,
        or the canned ACL its C{AccessControlPolicy} body amounts to.
    @raise UnexpectedContent: both at once.
    @raise MalformedACLError: neither.
    """
    header = canned_acl(call.headers, default=None)
    if header is not None:
        if call.body.strip():
            raise http_errors.UnexpectedContent("This request does not support content "
                                                "together with x-amz-acl.")
        return header
    return parse_acl(call.body, owner_id)


async def get_bucket_config(service: Any, call: S3Call) -> Response:
    """GET of a bucket configuration this store never has: S3's "none" answer."""
    await bucket_for(service, call, None)
    name = call.action.split(":", 1)[1]
    if name in _MISSING:
        raise _MISSING[name]()
    root, children = _EMPTY[name]
    return Response.xml(xmlrender.empty_configuration(root, children))


async def delete_bucket_config(service: Any, call: S3Call) -> Response:
    """DELETE of a bucket configuration: there is none, which is what was asked."""
    await bucket_for(service, call, None)
    return Response(status=204)


HANDLERS = {
    "ListBuckets": list_buckets,
    "CreateBucket": create_bucket,
    "HeadBucket": head_bucket,
    "DeleteBucket": delete_bucket,
    "GetBucketLocation": get_bucket_location,
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "ListObjects": list_objects,
    "ListObjectsV2": list_objects_v2,
    **{f"GetBucketConfig:{name}": get_bucket_config for name in list(_MISSING) + list(_EMPTY)},
    **{f"DeleteBucketConfig:{name}": delete_bucket_config
       for name in ("policy", "cors", "lifecycle", "tagging", "website", "encryption",
                    "replication", "ownershipControls", "publicAccessBlock")},
}

__all__ = ["HANDLERS", "acl_from_call"]
