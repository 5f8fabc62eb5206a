"""
Unit tests of the pure functions of the libvirt driver: domain and disk XML
(parsed back with ElementTree) and the KVM-or-TCG decision.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import attrs
from twisted.trial import unittest

from nova.virt.libvirt import domain_xml
from nova.virt.libvirt.capability import (choose_domain_type, cpu_has_virtualisation,
                                          libvirt_offers_kvm)
from nova.virt.records import InstanceSpec, VolumeSource

UUID = "0b9c6d1e-6f5e-4f69-9a43-3d1c1e0b2f11"
IQN = "iqn.2010-10.org.openstack:vol-0123456789abcdef0"


def kernel_spec(**overrides: object) -> InstanceSpec:
    fields: dict[str, object] = dict(
        name="instance-0000002a", uuid=UUID, memory_mb=80, vcpus=2,
        console_log="/var/lib/nova/instances/i-2a/console.log",
        kernel="/var/lib/nova/images/aki-1/image", initrd="/var/lib/nova/images/ari-1/image",
        cmdline="console=ttyS0 no_timer_check",
        disk="/var/lib/nova/instances/i-2a/disk")
    fields.update(overrides)
    return InstanceSpec(**fields)  # type: ignore[arg-type]


class DomainXMLTests(unittest.TestCase):
    def parse(self, spec: InstanceSpec, domain_type: str = "qemu") -> ET.Element:
        return ET.fromstring(domain_xml.build_domain(spec, domain_type))

    def test_identity_and_size(self) -> None:
        root = self.parse(kernel_spec())
        self.assertEqual(root.tag, "domain")
        self.assertEqual(root.findtext("name"), "instance-0000002a")
        self.assertEqual(root.findtext("uuid"), UUID)
        self.assertEqual(root.find("memory").attrib, {"unit": "MiB"})
        self.assertEqual(root.findtext("memory"), "80")
        self.assertEqual(root.findtext("vcpu"), "2")

    def test_domain_type(self) -> None:
        self.assertEqual(self.parse(kernel_spec(), "qemu").get("type"), "qemu")
        self.assertEqual(self.parse(kernel_spec(), "kvm").get("type"), "kvm")
        self.assertRaises(ValueError, domain_xml.build_domain, kernel_spec(), "xen")

    def test_tcg_guests_get_rdrand(self) -> None:
        """Under TCG the CPU offers RDRAND (the guest's random pool fills at once)."""
        cpu = self.parse(kernel_spec(), "qemu").find("cpu")
        self.assertEqual(cpu.findtext("model"), "qemu64")
        self.assertEqual(cpu.find("feature").attrib, {"policy": "require", "name": "rdrand"})
        self.assertIsNone(self.parse(kernel_spec(), "kvm").find("cpu"))

    def test_kernel_boot(self) -> None:
        os_el = self.parse(kernel_spec()).find("os")
        self.assertEqual(os_el.find("type").attrib, {"arch": "x86_64", "machine": "pc"})
        self.assertEqual(os_el.findtext("type"), "hvm")
        self.assertEqual(os_el.findtext("kernel"), "/var/lib/nova/images/aki-1/image")
        self.assertEqual(os_el.findtext("initrd"), "/var/lib/nova/images/ari-1/image")
        self.assertEqual(os_el.findtext("cmdline"), "console=ttyS0 no_timer_check")
        self.assertIsNone(os_el.find("boot"))

    def test_kernel_boot_without_disk_or_initrd(self) -> None:
        root = self.parse(kernel_spec(disk=None, initrd=None))
        self.assertIsNone(root.find("os/initrd"))
        self.assertEqual(root.findall("devices/disk"), [])

    def test_disk_boot(self) -> None:
        root = self.parse(kernel_spec(kernel=None, initrd=None, cmdline=None))
        self.assertIsNone(root.find("os/kernel"))
        self.assertEqual(root.find("os/boot").get("dev"), "hd")
        disk = root.find("devices/disk")
        self.assertEqual((disk.get("type"), disk.get("device")), ("file", "disk"))
        self.assertEqual(disk.find("driver").get("type"), "qcow2")
        self.assertEqual(disk.find("source").get("file"), "/var/lib/nova/instances/i-2a/disk")
        self.assertEqual(disk.find("target").attrib, {"dev": "vda", "bus": "virtio"})

    def test_serial_console_to_file_and_no_graphics(self) -> None:
        root = self.parse(kernel_spec())
        serial = root.find("devices/serial")
        self.assertEqual(serial.get("type"), "file")
        self.assertEqual(serial.find("source").get("path"),
                         "/var/lib/nova/instances/i-2a/console.log")
        # reboots append to the log rather than truncate it
        self.assertEqual(serial.find("source").get("append"), "on")
        self.assertEqual(root.find("devices/console/target").get("type"), "serial")
        self.assertIsNone(root.find("devices/graphics"))
        self.assertEqual(domain_xml.console_path(ET.tostring(root, encoding="unicode")),
                         "/var/lib/nova/instances/i-2a/console.log")

    def test_no_network_by_default(self) -> None:
        self.assertIsNone(self.parse(kernel_spec()).find("devices/interface"))

    def test_bridge_interface(self) -> None:
        root = self.parse(kernel_spec(mac="02:16:3e:00:00:2a", bridge="br100",
                                      target_dev="vnet2a"))
        iface = root.find("devices/interface")
        self.assertEqual(iface.get("type"), "bridge")
        self.assertEqual(iface.find("mac").get("address"), "02:16:3e:00:00:2a")
        self.assertEqual(iface.find("source").get("bridge"), "br100")
        self.assertEqual(iface.find("target").get("dev"), "vnet2a")
        self.assertEqual(iface.find("model").get("type"), "virtio")

    def test_values_are_escaped(self) -> None:
        root = self.parse(kernel_spec(cmdline="console=ttyS0 x='<&>'"))
        self.assertEqual(root.findtext("os/cmdline"), "console=ttyS0 x='<&>'")

    def test_spec_validation(self) -> None:
        for bad in (dict(name="bad name"), dict(uuid="nope"), dict(memory_mb=0),
                    dict(kernel=None, disk=None), dict(kernel=None, disk="/d"),
                    dict(mac="02:16:3e:00:00:2a"), dict(console_log="rel/path"),
                    dict(mac="zz", bridge="br0"), dict(bridge="br0;rm", mac="02:16:3e:00:00:2a")):
            self.assertRaises(ValueError, kernel_spec, **bad)


class VolumeXMLTests(unittest.TestCase):
    def test_nbd_round_trip(self) -> None:
        source = VolumeSource(kind="nbd", path="/run/nova/vol-1.sock", export="vol-1")
        disk = ET.fromstring(domain_xml.build_volume_disk("vdb", source))
        self.assertEqual(disk.get("type"), "network")
        self.assertEqual(disk.find("source").attrib, {"protocol": "nbd", "name": "vol-1"})
        self.assertEqual(disk.find("source/host").attrib,
                         {"transport": "unix", "socket": "/run/nova/vol-1.sock"})
        self.assertEqual(disk.find("target").attrib, {"dev": "vdb", "bus": "virtio"})
        self.assertEqual(self._reparse("vdb", source), {"vdb": source})

    def test_file_round_trip(self) -> None:
        source = VolumeSource(kind="file", path="/srv/vol-2.qcow2", format="qcow2",
                              read_only=True)
        disk = ET.fromstring(domain_xml.build_volume_disk("vdc", source))
        self.assertEqual(disk.find("source").get("file"), "/srv/vol-2.qcow2")
        self.assertIsNotNone(disk.find("readonly"))
        self.assertEqual(self._reparse("vdc", source), {"vdc": source})

    def test_iscsi_round_trip(self) -> None:
        source = VolumeSource(kind="iscsi", host="192.0.2.7", port=3260, iqn=IQN, lun=1)
        disk = ET.fromstring(domain_xml.build_volume_disk("vdd", source))
        self.assertEqual((disk.get("type"), disk.get("device")), ("network", "disk"))
        self.assertEqual(disk.find("driver").attrib, {"name": "qemu", "type": "raw"})
        self.assertEqual(disk.find("source").attrib, {"protocol": "iscsi", "name": IQN + "/1"})
        self.assertEqual(disk.find("source/host").attrib, {"name": "192.0.2.7", "port": "3260"})
        self.assertEqual(disk.find("target").attrib, {"dev": "vdd", "bus": "virtio"})
        self.assertIsNone(disk.find("readonly"))
        self.assertEqual(self._reparse("vdd", source), {"vdd": source})
        read_only = attrs.evolve(source, read_only=True, port=3261, lun=0)
        self.assertEqual(self._reparse("vdd", read_only), {"vdd": read_only})

    def test_block_round_trip(self) -> None:
        """An AoE target's device, given to the guest as a host block device."""
        source = VolumeSource(kind="block", path="/dev/etherd/e1.3")
        disk = ET.fromstring(domain_xml.build_volume_disk("vdb", source))
        self.assertEqual((disk.get("type"), disk.get("device")), ("block", "disk"))
        self.assertEqual(disk.find("source").attrib, {"dev": "/dev/etherd/e1.3"})
        self.assertEqual(disk.find("driver").get("type"), "raw")
        self.assertEqual(self._reparse("vdb", source), {"vdb": source})
        foreign = ("<domain><devices><disk type='block' device='disk'>"
                   "<source dev='/dev/odd,name'/><target dev='vdb' bus='virtio'/>"
                   "</disk></devices></domain>")
        self.assertEqual(domain_xml.parse_volumes(foreign), {})

    def test_block_validation(self) -> None:
        self.assertEqual(VolumeSource(kind="block", path="/dev/etherd/e65534.254").path,
                         "/dev/etherd/e65534.254")
        for bad in ("dev/sdb", "/dev/../etc/passwd", "/dev/etherd/e1.3,file=/x",
                    "/dev/etherd/e1 3", "/dev/", "/dev//sdb", "/dev/sdb\n"):
            with self.assertRaises(ValueError, msg=bad):
                VolumeSource(kind="block", path=bad)
        self.assertRaises(ValueError, VolumeSource, kind="block", path="/dev/sdb",
                          format="qcow2")
        self.assertRaises(ValueError, VolumeSource, kind="block", path="/dev/sdb",
                          export="e")

    def test_iscsi_as_libvirt_may_write_it(self) -> None:
        """No port is iSCSI's own; an iSCSI disk nova would not attach is no volume."""
        def disks(*sources: str) -> dict[str, VolumeSource]:
            body = "".join(f"<disk type='network' device='disk'>{src}"
                           f"<target dev='vd{chr(ord('b') + i)}' bus='virtio'/></disk>"
                           for i, src in enumerate(sources))
            return domain_xml.parse_volumes(f"<domain><devices>{body}</devices></domain>")
        host = "<host name='192.0.2.7'/>"
        self.assertEqual(disks(f"<source protocol='iscsi' name='{IQN}/2'>{host}</source>"),
                         {"vdb": VolumeSource(kind="iscsi", host="192.0.2.7", port=3260,
                                              iqn=IQN, lun=2)})
        self.assertEqual(disks(f"<source protocol='iscsi' name='{IQN}'>{host}</source>",
                               f"<source protocol='iscsi' name='{IQN}/x'>{host}</source>",
                               f"<source protocol='iscsi' name='Bad:Name/1'>{host}</source>",
                               f"<source protocol='iscsi' name='{IQN}/1'/>",
                               f"<source protocol='iscsi' name='{IQN}/1'>"
                               "<host name='storage.example'/></source>",
                               "<source protocol='rbd' name='pool/image'/>"), {})

    def _reparse(self, device: str, source: VolumeSource) -> dict[str, VolumeSource]:
        root = ET.fromstring(domain_xml.build_domain(
            kernel_spec(kernel=None, initrd=None, cmdline=None), "qemu"))
        root.find("devices").append(ET.fromstring(domain_xml.build_volume_disk(device, source)))
        text = ET.tostring(root, encoding="unicode")
        self.assertEqual(domain_xml.disk_devices(text), ["vda", device])
        self.assertIsNotNone(domain_xml.disk_element(text, device))
        self.assertIsNone(domain_xml.disk_element(text, "vdz"))
        return domain_xml.parse_volumes(text)

    def test_source_validation(self) -> None:
        self.assertRaises(ValueError, VolumeSource, kind="aoe", path="/x")
        self.assertRaises(ValueError, VolumeSource, kind="file", path="/x", export="e")
        self.assertRaises(ValueError, VolumeSource, kind="nbd", path="/s", format="qcow2")
        self.assertRaises(ValueError, VolumeSource, kind="nbd")
        self.assertRaises(ValueError, VolumeSource, kind="file", path="/x", host="192.0.2.7")
        self.assertRaises(ValueError, VolumeSource, kind="nbd", path="/s", lun=1)

    def test_iscsi_validation(self) -> None:
        good = dict(kind="iscsi", host="192.0.2.7", port=3260, iqn=IQN, lun=1)
        self.assertEqual(VolumeSource(**good).host, "192.0.2.7")  # type: ignore[arg-type]
        self.assertEqual(VolumeSource(**{**good, "lun": 0}).lun, 0)  # type: ignore[arg-type]
        for bad in (dict(host=None), dict(host="storage.example"), dict(host="::1"),
                    dict(host="192.0.2.7 "), dict(host="192.0.2.07"),
                    dict(port=None), dict(port=0), dict(port=65536), dict(port="3260"),
                    dict(port=True),
                    dict(iqn=None), dict(iqn=IQN.upper()), dict(iqn=IQN + "\n"),
                    dict(iqn=IQN + "/1"), dict(iqn=IQN + ",file=/etc/passwd"),
                    dict(iqn="iqn.2010-13.org.openstack:v"), dict(iqn="iqn.10-10.org:v"),
                    dict(iqn="eui.02004567a425678d"), dict(iqn="iqn.2010-10.-org:v"),
                    dict(iqn="iqn.2010-10.org.openstack:" + "v" * 200),
                    dict(lun=None), dict(lun=-1), dict(lun=16384), dict(lun="1"),
                    dict(lun=False),
                    dict(path="/dev/sdb"), dict(export="vol-1"), dict(format="qcow2")):
            with self.assertRaises(ValueError, msg=repr(bad)):
                VolumeSource(**{**good, **bad})  # type: ignore[arg-type]


CPUINFO_VMX = "processor\t: 0\nflags\t\t: fpu vme de pse msr vmx ssse3\n\n"
CPUINFO_SVM = "processor\t: 0\nflags\t\t: fpu svm lm\n"
# This machine kind: a nested host whose /dev/kvm cannot run a stock kernel.
CPUINFO_NONE = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse2 hypervisor\n"
CAPS_KVM = """<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest>
</capabilities>"""
CAPS_QEMU = """<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name='x86_64'><domain type='qemu'/></arch></guest>
<guest><os_type>hvm</os_type><arch name='i686'><domain type='kvm'/></arch></guest>
</capabilities>"""


class CapabilityTests(unittest.TestCase):
    def test_cpu_flags(self) -> None:
        self.assertTrue(cpu_has_virtualisation(CPUINFO_VMX))
        self.assertTrue(cpu_has_virtualisation(CPUINFO_SVM))
        self.assertFalse(cpu_has_virtualisation(CPUINFO_NONE))
        self.assertFalse(cpu_has_virtualisation("model name\t: vmx svm\n"))
        self.assertFalse(cpu_has_virtualisation(""))

    def test_libvirt_domain_types(self) -> None:
        self.assertTrue(libvirt_offers_kvm(CAPS_KVM))
        self.assertFalse(libvirt_offers_kvm(CAPS_QEMU))  # kvm only for i686
        self.assertTrue(libvirt_offers_kvm(CAPS_QEMU, arch="i686"))

    def test_kvm_only_when_all_agree(self) -> None:
        self.assertEqual(choose_domain_type(CPUINFO_VMX, True, CAPS_KVM), "kvm")
        self.assertEqual(choose_domain_type(CPUINFO_SVM, True, CAPS_KVM), "kvm")
        self.assertEqual(choose_domain_type(CPUINFO_NONE, True, CAPS_KVM), "qemu")
        self.assertEqual(choose_domain_type(CPUINFO_VMX, False, CAPS_KVM), "qemu")
        self.assertEqual(choose_domain_type(CPUINFO_VMX, True, CAPS_QEMU), "qemu")
