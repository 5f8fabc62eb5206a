"""
Every key name nova stores under, built by one function each. No other module
writes a key name by hand, so the layout of the datastore can be read here.

Keys are relative: the datastore adds its prefix (C{RedisConfig.prefix}).

The pattern, for each kind of record:

 - C{<kind>:<id...>} holds one record, as a JSON string
   (see L{nova.datastore.records});
 - C{<kinds>} or C{<kinds>:<scope>:<id>} is an index: a set whose members
   are the record keys of the kind (a whole key, so a listing is SMEMBERS then
   MGET, with no key rebuilt from a member);
 - C{counter:<name>} is an INCR counter; C{pool:<...>} a set to SPOP from
   (free addresses); C{<kinds>:by_time} a sorted set scored by time.

Every variable part goes through L{part}, which percent-encodes C{:}, C{%},
glob characters and anything unusual, so that C{keypair("a", "b:c")} and
C{keypair("a:b", "c")} differ and a pattern such as C{keypair:<project>:*}
matches only that project's keys.

To add a kind (instances, volumes, networks, fixed and floating IPs, security
groups, images ...): add its functions in a new section below, following the
key pair one, and mention the index sets that a write must keep in step.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from nova.datastore._common import check_str


def part(value: str) -> str:
    """
    @param value: one variable component of a key (an id, a name ...).
    @return: C{value} encoded so that it contains no C{:} and no glob character.
    @raise TypeError: C{value} is not a str.
    """
    return quote(check_str("key part", value), safe="@")


def unpart(encoded: str) -> str:
    """@return: the component that L{part} encoded as C{encoded}."""
    return unquote(encoded)


# -- key pairs (EC2 CreateKeyPair, per project) --------------------------------

def keypair(project_id: str, name: str) -> str:
    """@return: the key holding the L{KeyPair} record named C{name} in a project."""
    return f"keypair:{part(project_id)}:{part(name)}"


def keypairs_of_project(project_id: str) -> str:
    """
    @return: the index set of a project's key pairs; members are
        L{keypair} keys. Written together with the record, in one transaction.
    """
    return f"keypairs:{part(project_id)}"


# -- services (heartbeats of nova-compute, nova-network ...) -------------------

def service(host: str, binary: str) -> str:
    """@return: the key holding the L{Service} record of C{binary} on C{host}."""
    return f"service:{part(host)}:{part(binary)}"


def services() -> str:
    """@return: the index set of every service; members are L{service} keys."""
    return "services"


# -- counters -----------------------------------------------------------------

def counter(name: str) -> str:
    """@return: an INCR counter, e.g. for sequential ids."""
    return f"counter:{part(name)}"


# -- object store (S3 buckets, the listing index, multipart uploads) -----------
#
# The bodies live on the filesystem (nova.objectstore.store); these keys hold
# what is needed to find and list them quickly. A bucket record is written
# with its membership of the two bucket index sets in one transaction; an
# object's entry in the bucket's lexicographic index and its summary are
# written together (ZADD + HSET in one MULTI).

def s3_bucket(name: str) -> str:
    """@return: the key holding a bucket's record (JSON)."""
    return f"s3:bucket:{part(name)}"


def s3_buckets() -> str:
    """@return: the index set of every bucket; members are L{s3_bucket} keys."""
    return "s3:buckets"


def s3_buckets_of_project(project_id: str) -> str:
    """@return: the index set of a project's buckets; members are L{s3_bucket} keys."""
    return f"s3:buckets:{part(project_id)}"


def s3_object_index(bucket: str) -> str:
    """
    @return: the sorted set of a bucket's object keys, every score 0, so that
        ZRANGEBYLEX lists them in UTF-8 byte order (S3's listing order).
    """
    return f"s3:objects:{part(bucket)}"


def s3_object_summaries(bucket: str) -> str:
    """
    @return: the hash from object key to its listing summary (JSON: size,
        etag, time, owner), written with the L{s3_object_index} entry.
    """
    return f"s3:summaries:{part(bucket)}"


def s3_upload(upload_id: str) -> str:
    """@return: the key holding a multipart upload's record (JSON)."""
    return f"s3:upload:{part(upload_id)}"


def s3_uploads_of_bucket(bucket: str) -> str:
    """@return: the index set of a bucket's uploads in progress; members are L{s3_upload} keys."""
    return f"s3:uploads:{part(bucket)}"


def s3_parts(upload_id: str) -> str:
    """@return: the hash from part number (decimal) to the part's record (JSON)."""
    return f"s3:parts:{part(upload_id)}"


def s3_clean_token() -> str:
    """
    @return: the key holding the token the object store wrote at its last
        clean shutdown (the same token is in a marker file next to the bodies;
        when they differ, the next start reconciles the index with the files).
    """
    return "s3:clean-shutdown"


# -- instances and reservations (nova.compute.repository) ----------------------
#
# One transaction writes an instance record with its entries in the global and
# the project's by-time indexes (sorted sets scored by created_at: the stable
# order of DescribeInstances and its paging), in its host's set once it has a
# host, and in the terminated index (scored by terminated_at) once terminated.
# Reservation, client token and quota usage are written in the same
# transaction as the reservation's instances.

def instance(instance_id: str) -> str:
    """@return: the key holding an L{Instance} record."""
    return f"instance:{part(instance_id)}"


def instances_by_time() -> str:
    """@return: the sorted set of every instance key, scored by creation time."""
    return "instances:by_time"


def instances_of_project(project_id: str) -> str:
    """@return: the sorted set of a project's instance keys, scored by creation time."""
    return f"instances:project:{part(project_id)}"


def instances_on_host(host: str) -> str:
    """@return: the index set of the instance keys placed on a compute host."""
    return f"instances:host:{part(host)}"


def instances_terminated() -> str:
    """@return: the sorted set of terminated instance keys, scored by termination time."""
    return "instances:terminated"


def reservation(reservation_id: str) -> str:
    """@return: the key holding a L{Reservation} record."""
    return f"reservation:{part(reservation_id)}"


def instance_client_token(project_id: str, token: str) -> str:
    """@return: the key holding the reservation id a project's ClientToken made."""
    return f"client-token:{part(project_id)}:{part(token)}"


def quota(project_id: str) -> str:
    """@return: the hash of a project's quota overrides (name to decimal value)."""
    return f"quota:{part(project_id)}"


def quota_usage(project_id: str) -> str:
    """
    @return: the hash of what a project's non-terminated instances use
        (C{instances}, C{cores}, C{ram_mb}) and its volumes (C{volumes},
        C{gigabytes}), decimal, kept in step with the instance and volume
        records in the same transactions.
    """
    return f"quota-usage:{part(project_id)}"


# -- images (nova.image.repository) ---------------------------------------------
#
# One JSON record per image; registration writes it with its member in the
# index set in one transaction, deregistration removes both in one. Image data
# lives in the object store, not here.

def image(image_id: str) -> str:
    """@return: the key holding an L{nova.image.records.Image} record."""
    return f"image:{part(image_id)}"


def images() -> str:
    """
    @return: the index set of every registered image; members are L{image}
        keys (DescribeImages reads it, then MGETs the records).
    """
    return "images"


# -- networks, fixed and floating IPs (nova.network) -----------------------------
#
# A network record is written with its member of the network index, of the
# free-network set (while no project has it) and its pool of free fixed
# addresses, all in the transaction that creates it. A project's network is
# bound (network-of-project key + the record's project_id + leaving the free
# set) in one transaction. A fixed IP has a record only while it is in use:
# allocation SPOPs the address from the pool, then writes the record and its
# two index sets in one transaction; releasing deletes them and SADDs the
# address back, in one transaction. Floating IP records exist from
# `nova-manage floating create` to `delete`; the free ones are also in the
# floating pool, and an allocated one is in its project's set.

def network(network_id: int) -> str:
    """@return: the key holding a L{nova.network.records.Network} record."""
    return f"network:{int(network_id)}"


def networks() -> str:
    """@return: the index set of every network; members are L{network} keys."""
    return "networks"


def networks_free() -> str:
    """@return: the set of the ids (decimal) of networks no project has yet."""
    return "networks:free"


def network_of_project(project_id: str) -> str:
    """@return: the key holding the id (decimal) of a project's network."""
    return f"network-of-project:{part(project_id)}"


def network_counter() -> str:
    """@return: the last network id handed out (read and set in a transaction)."""
    return counter("network")


def fixed_ip_pool(network_id: int) -> str:
    """@return: the set of a network's free fixed addresses (SPOP allocates)."""
    return f"pool:fixed:{int(network_id)}"


def fixed_ip(address: str) -> str:
    """@return: the key holding the L{nova.network.records.FixedIp} of an address in use."""
    return f"fixed_ip:{part(address)}"


def fixed_ips_of_network(network_id: int) -> str:
    """@return: the index set of a network's fixed IPs in use; members are L{fixed_ip} keys."""
    return f"fixed_ips:network:{int(network_id)}"


def fixed_ips_of_instance(instance_id: str) -> str:
    """@return: the index set of an instance's fixed IPs; members are L{fixed_ip} keys."""
    return f"fixed_ips:instance:{part(instance_id)}"


def fixed_ips_releasing() -> str:
    """
    @return: the sorted set of L{fixed_ip} keys deallocated while their DHCP
        lease still ran, scored by the time the lease is over at the latest.
    """
    return "fixed_ips:releasing"


def floating_ip(address: str) -> str:
    """@return: the key holding a L{nova.network.records.FloatingIp} record."""
    return f"floating_ip:{part(address)}"


def floating_ips() -> str:
    """@return: the index set of every floating IP; members are L{floating_ip} keys."""
    return "floating_ips"


def floating_ips_of_project(project_id: str) -> str:
    """@return: the index set of a project's floating IPs; members are L{floating_ip} keys."""
    return f"floating_ips:project:{part(project_id)}"


def floating_ip_pool() -> str:
    """@return: the set of the floating addresses no project has (SPOP allocates)."""
    return "pool:floating"


def floating_ip_of_instance(instance_id: str) -> str:
    """@return: the key holding the floating address associated with an instance."""
    return f"floating-ip-of-instance:{part(instance_id)}"


# -- security groups (nova.network.security_groups) ------------------------------
#
# A group's record holds its rules. Creating one writes the record, its id key
# and its members of the two index sets in one transaction; deleting removes
# them together with its member and referrer sets. A rule naming a source
# group adds the naming group's key to the source's referrer set in the
# transaction that writes the rule (and the last such rule's revocation
# removes it), so that deleting a source group still named is refused without
# reading every group. Binding an instance SADDs its id to each group's member
# set in a transaction that watches the group records.

def security_group(project_id: str, name: str) -> str:
    """@return: the key holding a L{nova.network.security_group_records.SecurityGroup}."""
    return f"security_group:{part(project_id)}:{part(name)}"


def security_groups() -> str:
    """@return: the index set of every security group; members are L{security_group} keys."""
    return "security_groups"


def security_groups_of_project(project_id: str) -> str:
    """@return: the index set of a project's groups; members are L{security_group} keys."""
    return f"security_groups:project:{part(project_id)}"


def security_group_id(group_id: str) -> str:
    """@return: the key holding the L{security_group} key of a group id (C{sg-...})."""
    return f"security_group_id:{part(group_id)}"


def security_group_members(project_id: str, name: str) -> str:
    """@return: the set of the ids (not keys) of the instances bound to a group."""
    return f"security_group_members:{part(project_id)}:{part(name)}"


def security_group_referrers(project_id: str, name: str) -> str:
    """
    @return: the set of the L{security_group} keys of the groups having a rule
        that names this group as its source (the group itself included, when
        it names itself).
    """
    return f"security_group_referrers:{part(project_id)}:{part(name)}"


# -- volumes and snapshots (nova.volume.repository) -------------------------------
#
# One JSON record per volume and per snapshot. Creating a volume writes its
# record, its members of the two by-time sorted sets (every volume, the
# project's) and the project's quota usage (volumes, gigabytes) in one
# transaction; removing it undoes all of them in one. A volume is in its
# host's set once scheduled, and in its instance's set while attached (or
# being attached or detached): the attach transaction watches that set, so two
# volumes cannot take one device of an instance. A snapshot is written with
# its by-time members and its member of its volume's set (which the volume's
# delete watches: a volume is not deleted under a snapshot in progress).

def volume(volume_id: str) -> str:
    """@return: the key holding a L{nova.volume.records.Volume} record."""
    return f"volume:{part(volume_id)}"


def volumes_by_time() -> str:
    """@return: the sorted set of every volume key, scored by creation time."""
    return "volumes:by_time"


def volumes_of_project(project_id: str) -> str:
    """@return: the sorted set of a project's volume keys, scored by creation time."""
    return f"volumes:project:{part(project_id)}"


def volumes_on_host(host: str) -> str:
    """@return: the index set of the volume keys a volume host holds."""
    return f"volumes:host:{part(host)}"


def volumes_of_instance(instance_id: str) -> str:
    """@return: the index set of the volume keys attached (or attaching) to an instance."""
    return f"volumes:instance:{part(instance_id)}"


def snapshot(snapshot_id: str) -> str:
    """@return: the key holding a L{nova.volume.records.Snapshot} record."""
    return f"snapshot:{part(snapshot_id)}"


def snapshots_by_time() -> str:
    """@return: the sorted set of every snapshot key, scored by creation time."""
    return "snapshots:by_time"


def snapshots_of_project(project_id: str) -> str:
    """@return: the sorted set of a project's snapshot keys, scored by creation time."""
    return f"snapshots:project:{part(project_id)}"


def snapshots_of_volume(volume_id: str) -> str:
    """@return: the index set of the snapshot keys taken of a volume."""
    return f"snapshots:volume:{part(volume_id)}"
