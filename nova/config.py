"""
The one typed configuration every nova component is built from.

It is read from an INI file (C{etc/nova.conf}), then overridden by the
environment (C{NOVA_STATE_DIR}) and by twistd options, in that order. The
result is a frozen L{NovaConfig} that is passed to constructors: no module
reads configuration on its own.
"""

from __future__ import annotations

import configparser
import os
import socket
from pathlib import Path
from typing import Any, Mapping

import attr

from nova.exception import NovaError


class ConfigError(NovaError):
    """The configuration is invalid."""

    code = "ConfigError"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ApiConfig:
    """The EC2 API server: where it listens and what URLs clients are given."""

    listen: str = "127.0.0.1"
    ec2_port: int = 8773
    metadata_port: int = 8775
    #: the unix socket the network hosts' metadata proxies forward to (their
    #: X-Forwarded-For is trusted there only); empty: <state_dir>/metadata.sock
    metadata_socket: str = ""
    #: the host name written into credentials (EC2_URL, S3_URL)
    public_host: str = "127.0.0.1"
    #: largest request body accepted, in bytes
    max_body: int = 1024 * 1024
    #: largest allowed difference between a request's timestamp and ours, seconds
    max_clock_skew: int = 15 * 60


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ObjectStoreConfig:
    """The S3-compatible object store."""

    listen: str = "127.0.0.1"
    port: int = 3333
    #: virtual-host addressing: a request to C{<bucket>.<suffix>} names the
    #: bucket in its Host header (e.g. C{s3.nova.local}); empty: path style only
    virtual_host_suffix: str = ""
    #: largest single PUT (and multipart object), bytes: S3's 5 GiB
    max_object_size: int = 5 * 1024 ** 3


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class RedisConfig:
    """Where the system state lives."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    #: key prefix, so that several clouds (or test runs) can share one server
    prefix: str = "nova:"
    #: the all-in-one starts a redis-server of its own, data under the state dir
    spawn: bool = False
    pool_size: int = 8


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class RpcConfig:
    """The message bus: C{local} (in-process) or C{amqp} (RabbitMQ)."""

    transport: str = "local"
    amqp_host: str = "127.0.0.1"
    amqp_port: int = 5672
    amqp_user: str = "guest"
    amqp_password: str = "guest"
    amqp_vhost: str = "/"
    exchange: str = "nova"
    #: seconds a call waits for its reply
    call_timeout: float = 60.0


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class LdapConfig:
    """The user directory: embedded (empty C{url}) or a remote server."""

    url: str = ""
    base_dn: str = "dc=nova,dc=local"
    bind_dn: str = ""
    bind_password: str = ""


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ServiceConfig:
    """Heartbeats and periodic tasks."""

    report_interval: float = 10.0
    periodic_interval: float = 60.0
    #: a service whose last heartbeat is older than this is down
    service_down_time: float = 60.0


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ComputeConfig:
    """The compute node: which hypervisor, and where its host lives."""

    #: C{libvirt} (real guests) or C{fake} (no guests: control-plane tests
    #: and benchmarks)
    driver: str = "libvirt"
    #: the libvirt URI when nova does not run the host's libvirtd itself
    libvirt_uri: str = "qemu:///system"
    #: a network namespace that is this compute host: nova creates it and
    #: runs the host's own libvirtd inside (C{libvirt_uri} is then unused)
    host_netns: str = ""
    #: qemu capability cache shared by the hosts of one machine (empty: private)
    libvirt_cache_dir: str = ""
    #: C{kvm} or C{qemu} to force a domain type; empty decides by capability
    domain_type: str = ""
    #: kill the guests and delete the namespace when the service stops
    #: (tests); by default guests outlive nova-compute and are adopted again
    stop_guests_on_exit: bool = False
    #: kernel command line for kernel-booted (aki) instances
    kernel_cmdline: str = "root=/dev/vda1 console=ttyS0 no_timer_check quiet panic=-1"


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class NetworkConfig:
    """The network controller (2010 nova's network flags)."""

    #: C{vlan} (a network per project, created on first use) or C{flat}
    #: (one shared DHCP network)
    manager: str = "vlan"
    #: C{linux} (bridges, dnsmasq, iptables on the host) or C{fake} (in memory:
    #: for clouds whose compute driver is fake)
    driver: str = "linux"
    #: the range project networks are cut from
    fixed_range: str = "10.0.0.0/8"
    #: addresses per project network
    network_size: int = 256
    #: the first VLAN id (and VXLAN VNI where the host has no 802.1Q)
    vlan_start: int = 100
    #: how many project networks C{fixed_range} is cut into
    num_networks: int = 1000
    #: the flat manager's bridge (nova creates it: nova prefix)
    flat_network_bridge: str = "novaflat"
    #: seconds a DHCP lease lasts (a fixed IP is released after its lease ends)
    dhcp_lease_time: int = 120
    #: a network namespace that is the network host (empty: the root namespace)
    host_netns: str = ""
    #: the port, inside the network host, that 169.254.169.254:80 is redirected to
    #: (the metadata proxy listens there)
    metadata_proxy_port: int = 8775
    #: a network host in the root namespace: the address of the nova-api whose
    #: metadata port guests' 169.254.169.254:80 is DNATed to (empty: this
    #: machine's, by REDIRECT)
    metadata_host: str = ""
    #: guests of one project may reach each other on any port (2010's
    #: allow_project_net_traffic); otherwise only what their groups allow
    allow_project_net_traffic: bool = True
    #: the network host's interface that carries elastic IPs (empty: none)
    public_interface: str = ""
    #: the address outbound guest traffic is SNATed to (empty: no outbound NAT)
    routing_source_ip: str = ""
    #: elastic IPs a fresh cloud starts with (CIDR or first-last; empty: none,
    #: add them with nova-manage floating create)
    floating_range: str = ""


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class VolumeConfig:
    """The storage worker (nova-volume): where volumes live and how they are served."""

    #: C{nbd} (qemu-storage-daemon, unix socket), C{iscsi} (tgt), C{aoe}
    #: (vblade, as in 2010) or C{fake} (in memory: control-plane tests)
    driver: str = "nbd"
    #: C{file} (sparse files under the state directory) or C{lvm}
    backing: str = "file"
    #: the LVM volume group of C{backing = lvm}
    volume_group: str = "nova-volumes"
    #: the volume host's network namespace (empty: the root namespace)
    host_netns: str = ""
    #: iSCSI: the portal address compute hosts connect to
    iscsi_portal_address: str = "127.0.0.1"
    #: iSCSI: tgtd's management socket number (/var/run/tgtd/socket.N is
    #: machine-wide: each iSCSI volume host of one machine needs its own)
    iscsi_control_port: int = 0
    #: AoE: the interface vblade serves on
    aoe_interface: str = ""


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class SchedulerConfig:
    """How a host is chosen for new work."""

    #: C{simple} (least loaded) or C{chance} (random)
    driver: str = "simple"
    #: instance vCPUs a host may carry per real CPU (later nova's default)
    cpu_allocation_ratio: float = 16.0
    #: instance memory a host may carry per MiB it has
    ram_allocation_ratio: float = 1.5


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class NovaConfig:
    """
    Everything a nova process is configured with.

    @ivar state_dir: where every component keeps its files.
    @ivar host: this machine's name in the cloud (queues C{topic.<host>}).
    @ivar zone: the availability zone this host's services belong to.
    @ivar region: the region name (DescribeRegions).
    """

    state_dir: Path = Path("var")
    host: str = attr.Factory(socket.gethostname)
    zone: str = "nova"
    region: str = "nova"
    #: user and project made on the all-in-one's first start
    admin_user: str = "admin"
    admin_project: str = "admin"
    api: ApiConfig = attr.Factory(ApiConfig)
    objectstore: ObjectStoreConfig = attr.Factory(ObjectStoreConfig)
    redis: RedisConfig = attr.Factory(RedisConfig)
    rpc: RpcConfig = attr.Factory(RpcConfig)
    ldap: LdapConfig = attr.Factory(LdapConfig)
    service: ServiceConfig = attr.Factory(ServiceConfig)
    compute: ComputeConfig = attr.Factory(ComputeConfig)
    scheduler: SchedulerConfig = attr.Factory(SchedulerConfig)
    network: NetworkConfig = attr.Factory(NetworkConfig)
    volume: VolumeConfig = attr.Factory(VolumeConfig)

    @property
    def creds_dir(self) -> Path:
        """@return: where the all-in-one writes novarc and the credentials zip."""
        return self.state_dir / "creds"

    @property
    def objectstore_dir(self) -> Path:
        """@return: where the object store keeps bodies (objects, parts, temporary files)."""
        return self.state_dir / "objectstore"

    @property
    def instances_dir(self) -> Path:
        """@return: where a compute node keeps instance disks, console logs and its image cache."""
        return self.state_dir / "instances"

    @property
    def ca_dir(self) -> Path:
        """@return: where the cloud CA's key and certificate live."""
        return self.state_dir / "CA"

    def replace(self, **changes: Any) -> "NovaConfig":
        """@return: a copy with C{changes}; C{section__field} names a nested field."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if "__" in name:
                section, field = name.split("__", 1)
                nested.setdefault(section, {})[field] = value
            else:
                top[name] = value
        for section, fields in nested.items():
            top[section] = attr.evolve(getattr(self, section), **fields)
        return attr.evolve(self, **top)


_SECTIONS = {
    "api": ApiConfig,
    "objectstore": ObjectStoreConfig,
    "redis": RedisConfig,
    "rpc": RpcConfig,
    "ldap": LdapConfig,
    "service": ServiceConfig,
    "compute": ComputeConfig,
    "scheduler": SchedulerConfig,
    "network": NetworkConfig,
    "volume": VolumeConfig,
}


def _convert(cls: type, name: str, raw: str, where: str) -> Any:
    field = attr.fields_dict(cls).get(name)
    if field is None:
        raise ConfigError(f"{where}: unknown setting {name!r}")
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "str")
    try:
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{where}: {name} = {raw!r} is not a valid {kind}") from None
    return raw.strip()


def _relative_to_config(config_path: Path, state_dir: Path) -> Path:
    # A relative state_dir in etc/nova.conf means "under the checkout", wherever
    # the command runs from: resolve it against the directory above etc/.
    if state_dir.is_absolute():
        return state_dir
    base = config_path.resolve().parent
    if base.name == "etc":
        base = base.parent
    return base / state_dir


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> NovaConfig:
    """
    Build the configuration.

    @param path: an INI file; C{None} means defaults only. A missing file is an error.
    @param environ: the environment (C{NOVA_STATE_DIR} overrides C{state_dir}).
    @param overrides: values from command-line options, as for L{NovaConfig.replace}.
    @raise ConfigError: a file that is missing or a setting that is unknown or malformed.
    """
    environ = os.environ if environ is None else environ
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
        except configparser.Error as e:
            raise ConfigError(f"{path}: {e}") from None
        for section in parser.sections():
            where = f"{path} [{section}]"
            if section == "nova":
                for name, raw in parser.items(section):
                    top[name] = _convert(NovaConfig, name, raw, where)
                if "state_dir" in top:
                    top["state_dir"] = _relative_to_config(Path(path), top["state_dir"])
            elif section in _SECTIONS:
                cls = _SECTIONS[section]
                sections[section] = {
                    name: _convert(cls, name, raw, where) for name, raw in parser.items(section)
                }
            else:
                raise ConfigError(f"{path}: unknown section [{section}]")
    if environ.get("NOVA_STATE_DIR"):
        top["state_dir"] = Path(environ["NOVA_STATE_DIR"])
    for section, values in sections.items():
        top[section] = _SECTIONS[section](**values)
    try:
        config = NovaConfig(**top)
    except TypeError as e:
        raise ConfigError(str(e)) from None
    if overrides:
        config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    if config.rpc.transport not in ("local", "amqp"):
        raise ConfigError(f"rpc transport must be 'local' or 'amqp', not {config.rpc.transport!r}")
    return config
