"""
Errors raised by the datastore and its repositories.

They subclass the shared hierarchy in L{nova.exception}, so the API boundary
renders them with their EC2 codes without a table of its own.
"""

from __future__ import annotations

from nova.exception import Duplicate, NotFound, NovaError


class DatastoreError(NovaError):
    """The datastore refused a command (wrong type of value, bad argument ...)."""

    code = "InternalError"
    status = 500


class DatastoreUnavailable(DatastoreError):
    """The datastore (Redis) cannot be reached, or this client is closed."""

    code = "ServiceUnavailable"
    status = 503


class CorruptRecord(DatastoreError):
    """A stored record could not be decoded."""


class KeyPairNotFound(NotFound):
    """The key pair does not exist."""

    code = "InvalidKeyPair.NotFound"


class KeyPairDuplicate(Duplicate):
    """A key pair with that name already exists."""

    code = "InvalidKeyPair.Duplicate"


class ServiceNotFound(NotFound):
    """No service with that host and binary has ever reported."""

    code = "ServiceNotFound"
