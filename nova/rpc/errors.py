"""
The errors of the RPC layer.

Errors raised by a remote method travel back as a structured failure and are
raised on the caller's side as L{nova.exception.RemoteError}; the errors here
are the ones the RPC machinery itself raises: a method that is not callable, a
message that cannot be encoded, a broker that is not there.
"""

from __future__ import annotations

from nova.exception import ClientError, InvalidParameterValue, NovaError


class UnknownMethod(ClientError):
    """The method does not exist or is not exposed over RPC."""

    code = "InvalidAction"


class InvalidArguments(InvalidParameterValue):
    """The arguments do not match the remote method's parameters."""


class InvalidTopic(InvalidParameterValue):
    """The topic is not a valid routing key for nova's queues."""


class MalformedMessage(NovaError):
    """A message on the bus is not a valid nova RPC envelope."""


class MessageEncodingError(NovaError):
    """Arguments or a result cannot be encoded as JSON."""


class TransportError(NovaError):
    """The message bus cannot carry the message now."""

    code = "Unavailable"
    status = 503


class NotConnected(TransportError):
    """The transport is not connected to its broker (not started, or reconnecting)."""


class ConnectionLost(TransportError):
    """The connection to the broker was lost while the call was pending; its outcome is unknown."""


class TransportStopped(TransportError):
    """The transport was stopped while the call was pending."""


class BrokerUnavailable(TransportError):
    """The broker could not be reached or refused the connection."""
