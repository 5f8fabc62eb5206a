"""
The instance types (flavors) of 2010 nova (C{nova/compute/instance_types.py}),
with the figures AWS gave the same names at the time.

The figures are kept as in 2010 even where they are generous for our use: the
project's tiny test image boots in 80-128 MiB, far below m1.tiny's 512 MiB, and
its root disk needs well under a GB (m1.tiny's C{root_gb} of 0 means "the size
of the image", as in nova). Quotas (cores, RAM) count these figures, so ten
m1.tiny guests take 5 GiB of a project's RAM quota whatever they really use.
"""

from __future__ import annotations

import types

import attr

from nova.exception import InvalidParameterValue


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class InstanceType:
    """
    One instance type.

    @ivar name: the EC2 name, e.g. C{m1.small}.
    @ivar vcpus: virtual CPUs.
    @ivar memory_mb: RAM in MiB.
    @ivar root_gb: root disk in GB; 0 means the size of the image.
    @ivar flavor_id: the numeric id 2010 nova gave it.
    """

    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    flavor_id: int


_ALL = (
    InstanceType(name="m1.tiny", vcpus=1, memory_mb=512, root_gb=0, flavor_id=1),
    InstanceType(name="m1.small", vcpus=1, memory_mb=2048, root_gb=20, flavor_id=2),
    InstanceType(name="m1.medium", vcpus=2, memory_mb=4096, root_gb=40, flavor_id=3),
    InstanceType(name="m1.large", vcpus=4, memory_mb=8192, root_gb=80, flavor_id=4),
    InstanceType(name="m1.xlarge", vcpus=8, memory_mb=16384, root_gb=160, flavor_id=5),
)

#: every instance type by name (read-only), smallest first
INSTANCE_TYPES: types.MappingProxyType[str, InstanceType] = types.MappingProxyType(
    {t.name: t for t in _ALL})

#: what RunInstances uses when the request names no InstanceType (as 2010 nova)
DEFAULT_INSTANCE_TYPE = "m1.small"


def get(name: str) -> InstanceType:
    """
    @param name: an EC2 instance type name.
    @return: that instance type.
    @raise InvalidParameterValue: no instance type has that name.
    """
    found = INSTANCE_TYPES.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidParameterValue(f"Invalid value '{name}' for InstanceType")
    return found
