"""
Errors of the network controller's allocation layer, with the EC2 codes the
API answers with (AllocateAddress, ReleaseAddress, AssociateAddress ...).

They subclass L{nova.exception}, so the three translation boundaries render
them without a table of their own.
"""

from __future__ import annotations

from nova.exception import ClientError, Duplicate, InvalidParameterValue, NotFound, NovaError


class InvalidNetworkRange(InvalidParameterValue, ValueError):
    """A range, size, VLAN id or address that cannot make the networks asked for."""


class NetworkNotFound(NotFound):
    """No network with that id."""

    code = "InvalidNetwork.NotFound"


class NoMoreNetworks(NovaError):
    """Every network already belongs to a project (create more with nova-manage)."""

    code = "InsufficientAddressCapacity"
    status = 503


class NoMoreFixedIps(NovaError):
    """A network's pool of fixed addresses is empty."""

    code = "InsufficientAddressCapacity"
    status = 503


class FixedIpNotFound(NotFound):
    """The address is not a fixed IP in use."""

    code = "InvalidAddress.NotFound"


class FixedIpMacMismatch(ClientError):
    """A DHCP event names a fixed IP with another MAC than the one it was given to."""

    code = "InvalidParameterValue"


class AddressLimitExceeded(ClientError):
    """No elastic IP left, or the project holds as many as its quota allows."""

    code = "AddressLimitExceeded"


class InvalidAddressNotFound(NotFound):
    """The elastic IP does not exist."""

    code = "InvalidAddress.NotFound"


class AddressNotOwned(ClientError):
    """
    The elastic IP exists but belongs to another project (or none): EC2
    answers C{AuthFailure} ("The address ... does not belong to you").
    """

    code = "AuthFailure"


class AddressDuplicate(Duplicate):
    """nova-manage floating create: some of the addresses exist already."""

    code = "InvalidAddress.Duplicate"


class AddressInUse(ClientError):
    """nova-manage floating delete: an address is still allocated to a project."""

    code = "InvalidIPAddress.InUse"
