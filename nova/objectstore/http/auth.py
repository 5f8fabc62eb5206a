"""
Who sends an S3 request (authentication) and what they may do (authorisation).

Authentication uses the shared signing code (L{nova.auth.signer}): S3
Signature Version 2 and 4, in the header or presigned in the query, checked
against the secret key the L{nova.auth.manager.AuthManager} knows for the
access key (C{access:project}, or a bare C{access} for the user's own
project). A request without any authentication is anonymous.

Authorisation follows S3's canned ACLs over nova's projects: a bucket (and
an object) belongs to a project; that project may do everything with it;
superusers (admins, cloudadmins) may do everything everywhere, which is how
nova's own services fetch images; C{public-read} lets anyone read,
C{public-read-write} lets anyone read and write, C{authenticated-read} lets
any authenticated user read. Reading and writing an ACL is the owner's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attr

from nova.auth import signer
from nova.auth.manager import Credentials as ProjectCredentials
from nova.exception import AuthFailure
from nova.objectstore.errors import AccessDenied
from nova.objectstore.http.errors import InvalidAccessKeyId, with_fields
from nova.objectstore.interfaces import Owner

READ = "READ"
WRITE = "WRITE"


def canonical_id(project_id: str) -> str:
    """
    @param project_id: a project (an S3 account here).
    @return: its S3 canonical user id: 64 hex digits, stable for the project.
    """
    return hashlib.sha256(b"nova-project:" + project_id.encode("utf-8")).hexdigest()


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class Identity:
    """
    An authenticated caller.

    @ivar credentials: who the access key stands for, in which project.
    @ivar claimed: what the request's authentication said (scheme, scope,
        payload hash...).
    @ivar secret: the secret key that checked the signature (streaming
        uploads check each chunk's signature with it).
    """

    credentials: ProjectCredentials
    claimed: signer.Credentials
    secret: str

    @property
    def project_id(self) -> str:
        """@return: the project the request acts in."""
        return self.credentials.project.id

    @property
    def is_superuser(self) -> bool:
        """@return: whether the caller may do everything."""
        return self.credentials.is_superuser

    @property
    def owner(self) -> Owner:
        """@return: the owner of what this caller creates."""
        return Owner(project_id=self.project_id, display_name=self.project_id)

    def chunk_signer(self) -> signer.ChunkSigner:
        """@return: the verifier of this streaming upload's chunk signatures."""
        return signer.streaming_chunk_signer(self.claimed, self.secret)


class Authenticator:
    """
    Checks S3 request signatures.

    @param auth: the L{nova.auth.manager.AuthManager}.
    @param clock: C{IReactorTime}, for the time checks.
    @param max_skew: how far a request's date may be from ours, seconds.
    """

    def __init__(self, auth: Any, clock: Any, max_skew: float = signer.DEFAULT_MAX_SKEW) -> None:
        self._auth = auth
        self._clock = clock
        self._max_skew = max_skew

    async def authenticate(self, view: signer.SignedRequest) -> Identity | None:
        """
        @param view: the request; its C{payload_sha256} is checked against a
            signed C{x-amz-content-sha256} when it is known.
        @return: the caller, or C{None} for an anonymous request.
        @raise InvalidAccessKeyId: the access key is unknown (or its project).
        @raise nova.exception.AuthFailure: the S3 authentication errors of
            L{nova.auth.signer} (C{SignatureDoesNotMatch},
            C{RequestTimeTooSkewed}, C{AccessDenied} for an expired URL...).
        """
        try:
            claimed = signer.identify_s3(view)
        except signer.AnonymousRequest:
            return None
        try:
            credentials = await self._auth.credentials_for(claimed.access_key)
        except AuthFailure:
            raise with_fields(InvalidAccessKeyId(), AWSAccessKeyId=claimed.access_key) from None
        try:
            signer.verify(view, claimed, credentials.user.secret, now=self._clock.seconds(),
                          max_skew=self._max_skew)
        except signer.SignatureMismatch as e:
            raise with_fields(e, AWSAccessKeyId=claimed.access_key)
        return Identity(credentials=credentials, claimed=claimed, secret=credentials.user.secret)


def is_owner(identity: Identity | None, owner: Owner) -> bool:
    """@return: whether C{identity} has full control of what C{owner} owns."""
    return identity is not None and (identity.is_superuser
                                     or identity.project_id == owner.project_id)


def acl_allows(acl: str, identity: Identity | None, permission: str) -> bool:
    """
    @param acl: a canned ACL.
    @param identity: the caller (C{None}: anonymous).
    @param permission: L{READ} or L{WRITE}.
    @return: whether the ACL grants C{permission} to a caller who is not the owner.
    """
    if permission == READ:
        return acl in ("public-read", "public-read-write") or (
            acl == "authenticated-read" and identity is not None)
    if permission == WRITE:
        return acl == "public-read-write"
    return False


def require(identity: Identity | None, owners: tuple[Owner, ...], acl: str | None,
            permission: str | None) -> None:
    """
    Allow the owner(s), superusers, and what the canned ACL grants.

    @param identity: the caller (C{None}: anonymous).
    @param owners: who has full control (a bucket's owner; for an object,
        the object's and its bucket's).
    @param acl: the canned ACL that may grant more, or C{None}.
    @param permission: L{READ} or L{WRITE}; C{None} for owner-only actions.
    @raise AccessDenied: when none of that allows it.
    """
    if any(is_owner(identity, owner) for owner in owners):
        return
    if acl is not None and permission is not None and acl_allows(acl, identity, permission):
        return
    raise AccessDenied("Access Denied")


def require_signed(identity: Identity | None) -> Identity:
    """
    @return: C{identity}, when the request is authenticated.
    @raise AccessDenied: an anonymous request.
    """
    if identity is None:
        raise AccessDenied("Anonymous users cannot do this: sign the request.")
    return identity


__all__ = ["Authenticator", "Identity", "READ", "WRITE", "acl_allows", "canonical_id",
           "is_owner", "require", "require_signed"]
