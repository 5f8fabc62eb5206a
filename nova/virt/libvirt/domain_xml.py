"""
Pure functions between nova's records and libvirt XML: the domain of an
L{InstanceSpec}, the disk of a L{VolumeSource}, and the reverse reads the
driver needs (console path, attached volumes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from nova.virt.records import InstanceSpec, VolumeSource

DOMAIN_TYPES = ("kvm", "qemu")
ROOT_DEVICE = "vda"


def _sub(parent: ET.Element, tag: str, text: str | None = None,
         **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def build_domain(spec: InstanceSpec, domain_type: str, machine: str = "pc",
                 arch: str = "x86_64") -> str:
    """
    The libvirt domain XML of one guest.

    Kernel boot when C{spec.kernel} is set (aki/ari images), else boot from
    the disk. No graphics: the serial console, logged to
    C{spec.console_log}, is the only console.

    @param spec: the guest.
    @param domain_type: C{"kvm"} or C{"qemu"} (TCG); see
        L{nova.virt.libvirt.capability.choose_domain_type}.
    @param machine: the QEMU machine type (C{pc} hot-plugs virtio disks).
    @param arch: the guest architecture.
    @return: the XML document as a C{str}.
    @raise ValueError: for an unknown C{domain_type}.
    """
    if domain_type not in DOMAIN_TYPES:
        raise ValueError(f"domain type {domain_type!r} is not one of {DOMAIN_TYPES}")
    domain = ET.Element("domain", type=domain_type)
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", spec.uuid)
    _sub(domain, "memory", str(spec.memory_mb), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus))

    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch=arch, machine=machine)
    if spec.kernel is not None:
        _sub(os_el, "kernel", spec.kernel)
        if spec.initrd is not None:
            _sub(os_el, "initrd", spec.initrd)
        if spec.cmdline is not None:
            _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")

    if domain_type == "qemu":
        # TCG's default qemu64 CPU has no RDRAND: a guest's random pool then
        # fills only after ~1 s of boot, and its first SSH login waits for
        # it (docs/performance.md). TCG emulates RDRAND; ask for it.
        cpu = _sub(domain, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu, "model", "qemu64", fallback="forbid")
        _sub(cpu, "feature", policy="require", name="rdrand")
    features = _sub(domain, "features")
    _sub(features, "acpi")  # lets a guest with acpid power off gracefully
    _sub(features, "apic")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    if spec.disk is not None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type="qcow2", cache="none")
        _sub(disk, "source", file=spec.disk)
        _sub(disk, "target", dev=ROOT_DEVICE, bus="virtio")
    if spec.bridge is not None:
        iface = _sub(devices, "interface", type="bridge")
        _sub(iface, "mac", address=str(spec.mac))
        _sub(iface, "source", bridge=spec.bridge)
        if spec.target_dev is not None:
            _sub(iface, "target", dev=spec.target_dev)
        _sub(iface, "model", type="virtio")
    # append: a reboot or a stop/start adds to the log instead of truncating
    # it, so GetConsoleOutput still shows the earlier boots (EC2 does too).
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=spec.console_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=spec.console_log, append="on")
    _sub(console, "target", type="serial", port="0")
    # No balloon and no USB controller (libvirt adds one to a pc machine by
    # default): guests are small and fixed-size and have no USB devices, and
    # under TCG every emulated device costs boot time.
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")
    return ET.tostring(domain, encoding="unicode")


def build_volume_disk(device: str, source: VolumeSource) -> str:
    """
    The C{<disk>} XML that hot-plugs a volume.

    @param device: the guest device name (C{vdb}..).
    @param source: the volume.
    @return: the XML element as a C{str}.
    """
    if source.kind == "file":
        disk = ET.Element("disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=source.format)
        _sub(disk, "source", file=str(source.path))
    elif source.kind == "block":
        # a host block device (an AoE target the kernel's aoe module made)
        disk = ET.Element("disk", type="block", device="disk")
        _sub(disk, "driver", name="qemu", type="raw", cache="none", io="native")
        _sub(disk, "source", dev=str(source.path))
    elif source.kind == "nbd":
        disk = ET.Element("disk", type="network", device="disk")
        _sub(disk, "driver", name="qemu", type="raw")
        src_attrs = {"protocol": "nbd"}
        if source.export is not None:
            src_attrs["name"] = source.export
        src = _sub(disk, "source", **src_attrs)
        _sub(src, "host", transport="unix", socket=str(source.path))
    else:
        # QEMU's own initiator (libiscsi, Debian's qemu-block-extra) logs in
        # over TCP from the guest's host namespace; libvirt names the LUN
        # after the target: "IQN/LUN".
        disk = ET.Element("disk", type="network", device="disk")
        _sub(disk, "driver", name="qemu", type="raw")
        src = _sub(disk, "source", protocol="iscsi", name=f"{source.iqn}/{source.lun}")
        _sub(src, "host", name=str(source.host), port=str(source.port))
    _sub(disk, "target", dev=device, bus="virtio")
    if source.read_only:
        _sub(disk, "readonly")
    return ET.tostring(disk, encoding="unicode")


def console_path(domain_xml: str) -> str | None:
    """
    @param domain_xml: a domain's XML as libvirt returns it.
    @return: the file its first serial port logs to, or C{None}.
    """
    root = ET.fromstring(domain_xml)
    for serial in root.iterfind("./devices/serial"):
        if serial.get("type") == "file":
            source = serial.find("source")
            if source is not None and source.get("path"):
                return source.get("path")
    return None


def disk_element(domain_xml: str, device: str) -> str | None:
    """
    @param domain_xml: a domain's XML.
    @param device: a guest device name.
    @return: the XML of the C{<disk>} at C{device}, or C{None}.
    """
    root = ET.fromstring(domain_xml)
    for disk in root.iterfind("./devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev") == device:
            return ET.tostring(disk, encoding="unicode")
    return None


def disk_devices(domain_xml: str) -> list[str]:
    """@return: the target device names of every disk of a domain."""
    root = ET.fromstring(domain_xml)
    return [t.get("dev", "") for t in root.iterfind("./devices/disk/target")]


def parse_volumes(domain_xml: str) -> dict[str, VolumeSource]:
    """
    The volumes attached to a domain, read back from its XML.

    @param domain_xml: a domain's XML.
    @return: device name to L{VolumeSource}, for every disk but the root
        disk C{vda} (and disks of kinds nova does not attach).
    """
    found: dict[str, VolumeSource] = {}
    root = ET.fromstring(domain_xml)
    for disk in root.iterfind("./devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        if target is None or source is None or target.get("dev") == ROOT_DEVICE:
            continue
        device = target.get("dev", "")
        read_only = disk.find("readonly") is not None
        driver = disk.find("driver")
        fmt = driver.get("type", "raw") if driver is not None else "raw"
        if disk.get("type") == "file" and source.get("file"):
            found[device] = VolumeSource(kind="file", path=source.get("file", ""),
                                         format=fmt, read_only=read_only)
        elif disk.get("type") == "block" and source.get("dev"):
            try:
                found[device] = VolumeSource(kind="block", path=source.get("dev", ""),
                                             read_only=read_only)
            except ValueError:
                pass  # not a disk nova would have attached
        elif disk.get("type") == "network" and source.get("protocol") == "nbd":
            host = source.find("host")
            if host is not None and host.get("socket"):
                found[device] = VolumeSource(kind="nbd", path=host.get("socket", ""),
                                             export=source.get("name"),
                                             read_only=read_only)
        elif disk.get("type") == "network" and source.get("protocol") == "iscsi":
            iscsi = _parse_iscsi(source, read_only)
            if iscsi is not None:
                found[device] = iscsi
    return found


def _parse_iscsi(source: ET.Element, read_only: bool) -> VolumeSource | None:
    """@return: the iSCSI volume of a C{<source protocol='iscsi'>}, or C{None}."""
    host = source.find("host")
    iqn, _, lun = source.get("name", "").rpartition("/")
    if host is None or not lun.isdigit():
        return None
    try:
        # a disk defined without a port uses iSCSI's well-known one
        return VolumeSource(kind="iscsi", host=host.get("name"),
                            port=int(host.get("port", "3260")), iqn=iqn, lun=int(lun),
                            read_only=read_only)
    except ValueError:
        return None  # not a disk nova would have attached
