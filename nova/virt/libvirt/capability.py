"""
KVM or TCG: the decision, by capability. KVM only when the CPU really
offers hardware virtualisation (C{vmx}/C{svm} in C{/proc/cpuinfo}), the
KVM device exists, and libvirt lists a C{kvm} domain type for the guest
architecture. A C{/dev/kvm} alone is not enough: nested hosts expose one
(C{kvm_pvm}) that cannot boot a stock kernel (see host-facts).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET


def cpu_has_virtualisation(cpuinfo: str) -> bool:
    """
    @param cpuinfo: the text of C{/proc/cpuinfo}.
    @return: whether a C{flags} line lists C{vmx} (Intel) or C{svm} (AMD).
    """
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags = set(value.split())
            if "vmx" in flags or "svm" in flags:
                return True
    return False


def libvirt_offers_kvm(capabilities_xml: str, arch: str = "x86_64") -> bool:
    """
    @param capabilities_xml: libvirt's capabilities (C{virConnectGetCapabilities}).
    @param arch: the guest architecture.
    @return: whether a hvm guest of C{arch} may have C{<domain type='kvm'>}.
    """
    root = ET.fromstring(capabilities_xml)
    for guest in root.iterfind("guest"):
        if (guest.findtext("os_type") or "").strip() != "hvm":
            continue
        for arch_el in guest.iterfind("arch"):
            if arch_el.get("name") == arch and any(
                    d.get("type") == "kvm" for d in arch_el.iterfind("domain")):
                return True
    return False


def choose_domain_type(cpuinfo: str, kvm_device_present: bool,
                       capabilities_xml: str, arch: str = "x86_64") -> str:
    """
    @param cpuinfo: the text of C{/proc/cpuinfo}.
    @param kvm_device_present: whether C{/dev/kvm} exists.
    @param capabilities_xml: libvirt's capabilities.
    @param arch: the guest architecture.
    @return: C{"kvm"} when all three say yes, else C{"qemu"} (TCG).
    """
    if (cpu_has_virtualisation(cpuinfo) and kvm_device_present
            and libvirt_offers_kvm(capabilities_xml, arch)):
        return "kvm"
    return "qemu"


def probe_domain_type(capabilities_xml: str, cpuinfo_path: str = "/proc/cpuinfo",
                      kvm_device: str = "/dev/kvm", arch: str = "x86_64") -> str:
    """
    L{choose_domain_type} on this host. Blocking (reads files): run it off
    the reactor thread.

    @return: C{"kvm"} or C{"qemu"}.
    """
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            cpuinfo = f.read()
    except OSError:
        cpuinfo = ""
    return choose_domain_type(cpuinfo, os.path.exists(kvm_device), capabilities_xml, arch)
