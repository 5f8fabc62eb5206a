"""Unit tests of nova.network.linux_net and linux_net_iptables: argv and file builders."""

from __future__ import annotations

from twisted.trial import unittest

from nova.network import linux_net as ln
from nova.network import linux_net_ebtables as ebt
from nova.network import linux_net_iptables as ipt
from nova.utils.validate import InvalidIdentifier

NET = ln.NetworkSpec(vlan=100, cidr="10.0.5.0/24")


class NamesTests(unittest.TestCase):
    def test_names(self) -> None:
        self.assertEqual((ln.bridge_name(100), ln.vxlan_name(4094), ln.vlan_interface_name(7)),
                         ("novabr100", "novavx4094", "novavl7"))
        self.assertEqual(ln.tap_name("i-0000abcd"), "novat0000abcd")
        self.assertEqual([ln.vlan_from_name(n) for n in ("novabr100", "novavx5", "eth0",
                                                         "novabr0", "novabr9999")],
                         [100, 5, None, None, None])

    def test_bad_names(self) -> None:
        for bad in (0, 4095, "100", True):
            self.assertRaises(InvalidIdentifier, ln.bridge_name, bad)
        for bad in ("i-0000ABCD", "i-1; rm", "-i-0000abcd", 5):
            self.assertRaises(InvalidIdentifier, ln.tap_name, bad)

    def test_spec_defaults(self) -> None:
        self.assertEqual((NET.gateway, NET.dhcp_start, NET.gateway_interface, NET.netmask,
                          NET.bridge), ("10.0.5.1", "10.0.5.3", "10.0.5.1/24",
                                        "255.255.255.0", "novabr100"))

    def test_flat_spec(self) -> None:
        flat = ln.NetworkSpec(cidr="10.1.0.0/16", bridge="novaflat")
        self.assertEqual((flat.bridge, flat.vlan, flat.gateway, flat.segment_names),
                         ("novaflat", None, "10.1.0.1", ()))
        self.assertEqual(NET.segment_names, ("novavx100", "novavl100"))
        self.assertEqual(ln.NetworkSpec(cidr="10.0.5.0/24", vlan=7, bridge="brx").bridge, "brx")

    def test_spec_from_network(self) -> None:
        from nova.network.records import Network
        common = dict(cidr="10.0.5.0/24", netmask="255.255.255.0", gateway="10.0.5.1",
                      broadcast="10.0.5.255", vpn_address="10.0.5.2", dhcp_start="10.0.5.3",
                      created_at=0)
        flat = Network(network_id=1, bridge="novaflat", **common)
        self.assertEqual(ln.NetworkSpec.from_network(flat),
                         ln.NetworkSpec(cidr="10.0.5.0/24", bridge="novaflat"))
        vlan = Network(network_id=2, vlan=100, bridge="novabr100", **common)
        self.assertEqual(ln.NetworkSpec.from_network(vlan), NET)

    def test_spec_refuses(self) -> None:
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, cidr="10.0.5.0/24")
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, cidr="10.0.5.0/24",
                          bridge="br x")
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, cidr="10.0.5.0/24",
                          bridge="-br", vlan=5)
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, vlan=1, cidr="10.0.5.1/24")
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, vlan=1, cidr="10.0.5.0/30")
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, vlan=1, cidr="10.0.5.0/24",
                          gateway="10.0.6.1")
        self.assertRaises(InvalidIdentifier, ln.NetworkSpec, vlan=1, cidr="10.0.5.0/24",
                          dhcp_start="10.0.5.255")


class LinkCommandTests(unittest.TestCase):
    def test_links(self) -> None:
        self.assertEqual(ln.bridge_add("novabr100"),
                         ["ip", "link", "add", "novabr100", "type", "bridge"])
        self.assertEqual(ln.address_list("novaflat"),
                         ["ip", "-j", "addr", "show", "dev", "novaflat"])
        self.assertEqual(ln.link_up("novabr100"), ["ip", "link", "set", "dev", "novabr100", "up"])
        self.assertEqual(ln.link_delete("novavx1"), ["ip", "link", "delete", "dev", "novavx1"])
        self.assertEqual(ln.link_set_master("novavx1", "novabr1"),
                         ["ip", "link", "set", "dev", "novavx1", "master", "novabr1"])
        self.assertEqual(ln.vlan_add(12, "eth1"), ["ip", "link", "add", "link", "eth1", "name",
                                                   "novavl12", "type", "vlan", "id", "12"])
        self.assertEqual(ln.address_replace("10.0.5.1/24", "novabr100"),
                         ["ip", "addr", "replace", "10.0.5.1/24", "dev", "novabr100"])
        self.assertEqual(ln.address_delete("1.2.3.4/32", "eth0"),
                         ["ip", "addr", "del", "1.2.3.4/32", "dev", "eth0"])
        self.assertEqual(ln.tap_add("novat0000abcd"),
                         ["ip", "tuntap", "add", "dev", "novat0000abcd", "mode", "tap"])

    def test_sysctl(self) -> None:
        self.assertEqual(ln.sysctl_write({"net.ipv4.ip_forward": 1,
                                          "net.bridge.bridge-nf-call-iptables": 1}),
                         ["sysctl", "-w", "net.ipv4.ip_forward=1",
                          "net.bridge.bridge-nf-call-iptables=1"])

    def test_vxlan(self) -> None:
        self.assertEqual(ln.vxlan_add(100), ["ip", "link", "add", "novavx100", "type", "vxlan",
                                             "id", "100", "dstport", "4789"])
        self.assertEqual(ln.vxlan_add(5, local="192.0.2.1", remote="192.0.2.2", port=8472)[-6:],
                         ["dstport", "8472", "local", "192.0.2.1", "remote", "192.0.2.2"])
        self.assertEqual(ln.vxlan_add(5, group="239.1.1.1", dev="eth0")[-4:],
                         ["group", "239.1.1.1", "dev", "eth0"])
        self.assertEqual(ln.vxlan_fdb_append(5, "192.0.2.3"),
                         ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "novavx5",
                          "dst", "192.0.2.3"])

    def test_injection_refused(self) -> None:
        cases = [
            lambda: ln.link_up("br0 down"), lambda: ln.link_up("-all"),
            lambda: ln.address_replace("10.0.0.1/24; reboot", "br0"),
            lambda: ln.address_replace("10.0.0.1", "br0"),
            lambda: ln.vxlan_add(5, remote="10.0.0.1 group"),
            lambda: ln.vxlan_add(5, group="10.0.0.1", dev="eth0"),
            lambda: ln.vxlan_add(5, group="239.1.1.1"),
            lambda: ln.vxlan_add(5, remote="192.0.2.1", group="239.1.1.1", dev="e"),
            lambda: ln.vxlan_add(5, port=0), lambda: ln.vlan_add(5, "eth0 type"),
            lambda: ln.tap_add("vnet0"), lambda: ln.tap_add("novat-x y"),
            lambda: ln.bridge_add(100), lambda: ln.bridge_add("br0 type"),
            lambda: ln.sysctl_write({}), lambda: ln.sysctl_write({"net.ipv4 x": 1}),
            lambda: ln.sysctl_write({"-a": 1}), lambda: ln.sysctl_write({"net.a": "1 x"}),
            lambda: ln.sysctl_write({"net.a": True}),
        ]
        for case in cases:
            self.assertRaises(InvalidIdentifier, case)


class DnsmasqTests(unittest.TestCase):
    def test_argv(self) -> None:
        argv = ln.dnsmasq_argv(NET, hosts_file="/s/h", pid_file="/s/p",
                               dhcp_script="/b/nova-dhcpbridge", log_file="/s/l", user="root")
        self.assertEqual(argv, [
            "dnsmasq", "--strict-order", "--bind-interfaces", "--conf-file=",
            "--pid-file=/s/p", "--listen-address=10.0.5.1", "--interface=novabr100",
            "--except-interface=lo", "--dhcp-range=10.0.5.3,static,255.255.255.0,120s",
            "--dhcp-hostsfile=/s/h", "--dhcp-script=/b/nova-dhcpbridge", "--leasefile-ro",
            "--dhcp-no-override", "--port=0", "--user=root", "--log-facility=/s/l"])

    def test_dns(self) -> None:
        argv = ln.dnsmasq_argv(NET, hosts_file="/h", pid_file="/p", dhcp_script="/d",
                               dns_port=53, lease_time=600)
        self.assertIn("--dhcp-range=10.0.5.3,static,255.255.255.0,600s", argv)
        self.assertEqual(argv[-3:], ["--port=53", "--no-resolv", "--no-hosts"])

    def test_refused(self) -> None:
        ok = dict(hosts_file="/h", pid_file="/p", dhcp_script="/d")
        for bad in (dict(hosts_file="h"), dict(pid_file="/p,x"), dict(dhcp_script="/d\n"),
                    dict(lease_time=60), dict(lease_time="120"), dict(dns_port=70000),
                    dict(user="root --x"), dict(dnsmasq="./dnsmasq")):
            self.assertRaises(InvalidIdentifier, ln.dnsmasq_argv, NET, **{**ok, **bad})

    def test_hosts_file(self) -> None:
        content = ln.dhcp_hosts_content([ln.DhcpHost("02:00:00:00:00:0B", "b", "10.0.5.11"),
                                         ln.DhcpHost("02:00:00:00:00:0a", "a.x", "10.0.5.9")])
        self.assertEqual(content, b"02:00:00:00:00:0a,a.x,10.0.5.9\n"
                                  b"02:00:00:00:00:0b,b,10.0.5.11\n")
        self.assertEqual(ln.dhcp_hosts_content([]), b"")

    def test_hosts_refused(self) -> None:
        for mac, name, ip in (("02:00:00:00:00:0a", "a,b", "10.0.5.9"),
                              ("02:00:00:00:00:0a", "a\nb", "10.0.5.9"),
                              ("02:00:00:00:00", "a", "10.0.5.9"),
                              ("02:00:00:00:00:0a", "-a", "10.0.5.9"),
                              ("02:00:00:00:00:0a", "a", "10.0.5.9,x")):
            self.assertRaises(InvalidIdentifier, ln.DhcpHost, mac, name, ip)
        dup = [ln.DhcpHost("02:00:00:00:00:0a", "a", "10.0.5.9"),
               ln.DhcpHost("02:00:00:00:00:0a", "b", "10.0.5.10")]
        self.assertRaises(InvalidIdentifier, ln.dhcp_hosts_content, dup)
        self.assertRaises(InvalidIdentifier, ln.dhcp_hosts_content, ["02:00:00:00:00:0a,a,1"])


SAVED_EMPTY = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"


class IptablesTests(unittest.TestCase):
    def test_first_chain_adds_hooks(self) -> None:
        saved = ipt.parse_save(SAVED_EMPTY)["nat"]
        text = ipt.restore_input("nat", saved, write={
            ipt.snat_chain("novabr100"): ipt.network_snat_rules("10.0.5.0/24",
                                                                out_interface="eth0")})
        self.assertEqual(text.splitlines(), [
            "*nat", ":nova-PREROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-POSTROUTING - [0:0]", ":nova-snat-novabr100 - [0:0]",
            "-I PREROUTING 1 -j nova-PREROUTING", "-I OUTPUT 1 -j nova-OUTPUT",
            "-I POSTROUTING 1 -j nova-POSTROUTING",
            "-A nova-snat-novabr100 -s 10.0.5.0/24 -d 10.0.5.0/24 -j ACCEPT",
            "-A nova-snat-novabr100 -o novabr+ -j ACCEPT",
            "-A nova-snat-novabr100 -s 10.0.5.0/24 -o eth0 -j MASQUERADE",
            "-A nova-POSTROUTING -j nova-snat-novabr100", "COMMIT"])

    def test_existing_chains_kept_and_ordered(self) -> None:
        saved = ipt.parse_save(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
            ":nova-PREROUTING - [0:0]\n:nova-OUTPUT - [0:0]\n:nova-POSTROUTING - [0:0]\n"
            ":nova-snat-novabr7 - [0:0]\n:other - [0:0]\n-A PREROUTING -j nova-PREROUTING\n"
            "-A OUTPUT -j nova-OUTPUT\n-A POSTROUTING -j nova-POSTROUTING\nCOMMIT\n")["nat"]
        dnat, snat = ipt.floating_chains("192.0.2.9")
        text = ipt.restore_input("nat", saved, write={
            dnat: ipt.floating_dnat_rules("192.0.2.9", "10.0.5.4"),
            snat: ipt.floating_snat_rules("192.0.2.9", "10.0.5.4")})
        self.assertEqual(text.splitlines(), [
            "*nat", ":nova-PREROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-POSTROUTING - [0:0]", ":nova-fdnat-192.0.2.9 - [0:0]",
            ":nova-fsnat-192.0.2.9 - [0:0]",
            "-A nova-fdnat-192.0.2.9 -d 192.0.2.9/32 -j DNAT --to-destination 10.0.5.4",
            "-A nova-fsnat-192.0.2.9 -s 10.0.5.4/32 -j SNAT --to-source 192.0.2.9",
            "-A nova-PREROUTING -j nova-fdnat-192.0.2.9", "-A nova-OUTPUT -j nova-fdnat-192.0.2.9",
            "-A nova-POSTROUTING -j nova-fsnat-192.0.2.9",
            "-A nova-POSTROUTING -j nova-snat-novabr7", "COMMIT"])

    def test_last_chain_removes_hooks(self) -> None:
        saved = ipt.parse_save(
            "*nat\n:POSTROUTING ACCEPT [0:0]\n:nova-PREROUTING - [0:0]\n:nova-OUTPUT - [0:0]\n"
            ":nova-POSTROUTING - [0:0]\n:nova-snat-7 - [0:0]\n"
            "-A POSTROUTING -j nova-POSTROUTING\n-A nova-POSTROUTING -j nova-snat-7\nCOMMIT\n"
        )["nat"]
        text = ipt.restore_input("nat", saved, delete=["nova-snat-7", "nova-snat-8"])
        self.assertEqual(text.splitlines(), [
            "*nat", ":nova-POSTROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-PREROUTING - [0:0]", ":nova-snat-7 - [0:0]",
            "-D POSTROUTING -j nova-POSTROUTING", "-X nova-snat-7", "-X nova-PREROUTING",
            "-X nova-OUTPUT", "-X nova-POSTROUTING", "COMMIT"])
        self.assertEqual(ipt.restore_input("nat", None, delete=["nova-snat-7"]),
                         "*nat\nCOMMIT\n")

    def test_instance_filter(self) -> None:
        rules = ipt.instance_filter_rules("10.0.5.4", [
            ipt.SecurityRule("tcp", 22, 22, "0.0.0.0/0"),
            ipt.SecurityRule("icmp", -1, -1, "10.0.0.0/8"),
            ipt.SecurityRule("icmp", 8, -1, "10.0.0.0/8")], dhcp_server="10.0.5.1")
        text = ipt.restore_input("filter", None, write={ipt.instance_chain("i-0000000a"): rules})
        self.assertEqual(text.splitlines(), [
            "*filter", ":nova-INPUT - [0:0]", ":nova-FORWARD - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-i-0000000a - [0:0]", "-I INPUT 1 -j nova-INPUT",
            "-I FORWARD 1 -j nova-FORWARD", "-I OUTPUT 1 -j nova-OUTPUT",
            "-A nova-i-0000000a ! -d 10.0.5.4/32 -j RETURN",
            "-A nova-i-0000000a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A nova-i-0000000a -s 10.0.5.1/32 -p udp --sport 67 --dport 68 -j ACCEPT",
            "-A nova-i-0000000a -s 0.0.0.0/0 -p tcp --dport 22:22 -j ACCEPT",
            "-A nova-i-0000000a -s 10.0.0.0/8 -p icmp -j ACCEPT",
            "-A nova-i-0000000a -s 10.0.0.0/8 -p icmp --icmp-type 8 -j ACCEPT",
            "-A nova-i-0000000a -j DROP",
            "-A nova-INPUT -j nova-i-0000000a", "-A nova-FORWARD -j nova-i-0000000a",
            "-A nova-OUTPUT -j nova-i-0000000a", "COMMIT"])

    def test_instance_filter_project_traffic(self) -> None:
        spec = ipt.InstanceFilter("10.0.5.4", [ipt.SecurityRule("tcp", 22, 22, "0.0.0.0/0")],
                                  "10.0.5.1", "10.0.5.0/24")
        self.assertEqual([" ".join(r) for r in spec.chain_rules()], [
            "! -d 10.0.5.4/32 -j RETURN",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-s 10.0.5.1/32 -p udp --sport 67 --dport 68 -j ACCEPT",
            "-s 0.0.0.0/0 -p tcp --dport 22:22 -j ACCEPT",
            # the gateway (the host itself) is no guest of the project
            "-s 10.0.5.1/32 -j DROP",
            "-s 10.0.5.0/24 -j ACCEPT",
            "-j DROP"])
        # no DHCP server, or one outside the project's network: no exception needed
        self.assertEqual([" ".join(r) for r in ipt.InstanceFilter(
            "10.0.5.4", project_cidr="10.0.5.0/24").chain_rules()[2:]],
            ["-s 10.0.5.0/24 -j ACCEPT", "-j DROP"])
        self.assertEqual(spec.rules, (ipt.SecurityRule("tcp", 22, 22, "0.0.0.0/0"),))

    def test_instance_filter_refused(self) -> None:
        for bad in (dict(fixed_ip="10.0.5"), dict(rules=[("tcp", 1, 2, "0.0.0.0/0")]),
                    dict(dhcp_server="10.0.5.1 -j"), dict(project_cidr="10.0.5.1/24")):
            self.assertRaises(InvalidIdentifier, ipt.InstanceFilter,
                              **{"fixed_ip": "10.0.5.4", **bad})

    def test_filter_chains_replaced_and_removed(self) -> None:
        saved = ipt.parse_save(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":nova-FORWARD - [0:0]\n:nova-OUTPUT - [0:0]\n:nova-i-0000000a - [0:0]\n"
            ":nova-i-0000000b - [0:0]\n-A FORWARD -j nova-FORWARD\n"
            "-A OUTPUT -j nova-OUTPUT\n-A nova-FORWARD -j nova-i-0000000a\n"
            "-A nova-FORWARD -j nova-i-0000000b\nCOMMIT\n")["filter"]
        chain_a = ipt.instance_chain("i-0000000a")
        text = ipt.restore_input("filter", saved, write={
            chain_a: ipt.InstanceFilter("10.0.5.4").chain_rules()},
            delete=[ipt.instance_chain("i-0000000b")])
        self.assertEqual(text.splitlines(), [
            # a host set up before nova-INPUT existed gets its hook now
            "*filter", ":nova-INPUT - [0:0]", ":nova-FORWARD - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-i-0000000a - [0:0]", ":nova-i-0000000b - [0:0]", "-I INPUT 1 -j nova-INPUT",
            "-A nova-i-0000000a ! -d 10.0.5.4/32 -j RETURN",
            "-A nova-i-0000000a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A nova-i-0000000a -j DROP", "-A nova-INPUT -j nova-i-0000000a",
            "-A nova-FORWARD -j nova-i-0000000a", "-A nova-OUTPUT -j nova-i-0000000a",
            "-X nova-i-0000000b", "COMMIT"])

    def test_metadata_redirect(self) -> None:
        self.assertEqual(ipt.metadata_redirect_rules(8775), [
            ["-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80", "-j", "REDIRECT",
             "--to-ports", "8775"]])
        self.assertEqual(ipt.metadata_redirect_rules(1, dnat_to=("192.0.2.5", 8773))[0][-3:],
                         ["DNAT", "--to-destination", "192.0.2.5:8773"])
        saved = ipt.parse_save(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:nova-PREROUTING - [0:0]\n:nova-OUTPUT - [0:0]\n"
            ":nova-POSTROUTING - [0:0]\n:nova-fdnat-192.0.2.9 - [0:0]\n"
            "-A PREROUTING -j nova-PREROUTING\n-A OUTPUT -j nova-OUTPUT\n"
            "-A POSTROUTING -j nova-POSTROUTING\nCOMMIT\n")["nat"]
        text = ipt.restore_input("nat", saved, write={
            ipt.METADATA_CHAIN: ipt.metadata_redirect_rules(8775)})
        self.assertEqual(text.splitlines(), [
            "*nat", ":nova-PREROUTING - [0:0]", ":nova-OUTPUT - [0:0]",
            ":nova-POSTROUTING - [0:0]", ":nova-metadata - [0:0]",
            "-A nova-metadata -d 169.254.169.254/32 -p tcp --dport 80 -j REDIRECT"
            " --to-ports 8775",
            "-A nova-PREROUTING -j nova-metadata",
            "-A nova-PREROUTING -j nova-fdnat-192.0.2.9", "-A nova-OUTPUT -j nova-fdnat-192.0.2.9",
            "COMMIT"])
        for bad in (lambda: ipt.metadata_redirect_rules(0),
                    lambda: ipt.metadata_redirect_rules(80, dnat_to=("127.0.0.1", 8775)),
                    lambda: ipt.metadata_redirect_rules(80, dnat_to=("192.0.2.5", 70000)),
                    lambda: ipt.metadata_redirect_rules(80, dnat_to=("x", 1))):
            self.assertRaises(InvalidIdentifier, bad)

    def test_refused(self) -> None:
        cases = [
            lambda: ipt.SecurityRule("tcp", 22, 21, "0.0.0.0/0"),
            lambda: ipt.SecurityRule("tcp", 0, 22, "0.0.0.0/0"),
            lambda: ipt.SecurityRule("gre", 1, 1, "0.0.0.0/0"),
            lambda: ipt.SecurityRule("icmp", 300, -1, "0.0.0.0/0"),
            lambda: ipt.SecurityRule("tcp", 1, 2, "0.0.0.0/0 -j ACCEPT"),
            lambda: ipt.snat_chain(100), lambda: ipt.snat_chain("br x"),
            lambda: ipt.floating_chains("1.2.3.4/32"),
            lambda: ipt.instance_chain("i-1 -j"),
            lambda: ipt.restore_input("raw", None),
            lambda: ipt.restore_input("nat", None, write={"mychain": []}),
            lambda: ipt.restore_input("nat", None, write={"nova-other-1": []}),
            lambda: ipt.restore_input("nat", None, write={"nova-snat-1": [["-j", "A B"]]}),
            lambda: ipt.restore_input("nat", None, write={"nova-snat-1": [["-j", "A\nCOMMIT"]]}),
            lambda: ipt.network_snat_rules("10.0.0.0/8", out_interface="eth0 -j"),
        ]
        for case in cases:
            self.assertRaises(InvalidIdentifier, case)

    def test_commands(self) -> None:
        self.assertEqual(ipt.iptables_save("nat"), ["iptables-save", "-t", "nat"])
        self.assertEqual(ipt.iptables_restore(), ["iptables-restore", "--noflush"])
        self.assertEqual(ipt.network_snat_rules("10.0.5.0/24", source_ip="192.0.2.1")[2],
                         ["-s", "10.0.5.0/24", "-j", "SNAT", "--to-source", "192.0.2.1"])


class LongInstanceIdTests(unittest.TestCase):
    """Instance ids have 17 hex digits: names must stay within the kernel's limits."""

    def test_names_fit(self) -> None:
        instance_id = "i-2acccf5c572bf8493"
        self.assertEqual(ln.tap_name(instance_id), "novatc572bf8493")
        self.assertLessEqual(len(ln.tap_name(instance_id)), 15)
        chain = ipt.instance_chain(instance_id)
        self.assertEqual(chain, "nova-i-2acccf5c572bf8493")
        self.assertLessEqual(len(chain), 28)  # iptables' chain name limit


class AntiSpoofingTests(unittest.TestCase):
    """What comes from an instance's tap must carry its address."""

    def test_rules_come_first(self) -> None:
        rules = ipt.instance_filter_rules("10.0.5.4", [], tap="novatc572bf8493")
        self.assertEqual(rules[:3], [
            ["-m", "physdev", "--physdev-in", "novatc572bf8493", "-s", "0.0.0.0/32",
             "-p", "udp", "--sport", "68", "--dport", "67", "-j", "RETURN"],
            ["!", "-s", "10.0.5.4/32", "-m", "physdev", "--physdev-in", "novatc572bf8493",
             "-j", "DROP"],
            ["!", "-d", "10.0.5.4/32", "-j", "RETURN"]])

    def test_no_tap_no_check(self) -> None:
        rules = ipt.instance_filter_rules("10.0.5.4", [])
        self.assertEqual(rules[0], ["!", "-d", "10.0.5.4/32", "-j", "RETURN"])

    def test_tap_validated(self) -> None:
        self.assertRaises(InvalidIdentifier, ipt.anti_spoofing_rules, "10.0.5.4", "tap x")
        self.assertRaises(InvalidIdentifier, ipt.InstanceFilter, "10.0.5.4", tap="a;b")


class EbtablesTests(unittest.TestCase):
    """The frames' check of an instance (nova/network/linux_net_ebtables.py)."""

    def test_rules(self) -> None:
        rules = ebt.l2_filter_rules("novat0000000a", "02:16:3E:00:00:0A", "10.0.5.4")
        self.assertEqual(rules[0], ["-i", "!", "novat0000000a", "-j", "RETURN"])
        self.assertIn(["-s", "!", "02:16:3e:00:00:0a", "-j", "DROP"], rules)
        self.assertIn(["-p", "ARP", "--arp-ip-src", "!", "10.0.5.4", "-j", "DROP"], rules)
        self.assertEqual(rules[-1], ["-j", "DROP"])

    def test_bad_input_refused(self) -> None:
        for tap, mac, ip in (("novat 1", "02:00:00:00:00:01", "10.0.5.4"),
                             ("novat1", "02:00:00:00:00:01 -j ACCEPT", "10.0.5.4"),
                             ("novat1", "02:00:00:00:00:01", "10.0.5.4/24"),
                             ("novat1", "02:00:00:00:00:01", "10.0.5.4\n")):
            with self.assertRaises(InvalidIdentifier, msg=(tap, mac, ip)):
                ebt.l2_filter_rules(tap, mac, ip)
        with self.assertRaises(InvalidIdentifier):
            ipt.InstanceFilter("10.0.5.4", tap="novat1", mac="not-a-mac")

    def test_save_without_commit_and_restore_dialect(self) -> None:
        saved = ipt.parse_save(
            "# Generated by ebtables-save\n*filter\n:INPUT ACCEPT\n:FORWARD ACCEPT\n"
            ":nova-INPUT RETURN\n:nova-FORWARD RETURN\n:nova-i-00000001 RETURN\n"
            "-A INPUT -j nova-INPUT\n-A FORWARD -j nova-FORWARD\n"
            "-A nova-INPUT -j nova-i-00000001\n-A nova-FORWARD -j nova-i-00000001\n"
            "# Completed\n")["filter"]
        self.assertIn("nova-i-00000001", saved.chains)
        text = ipt.restore_input("filter", saved, delete=["nova-i-00000001"],
                                 dialect=ebt.EBTABLES)
        self.assertEqual(text.splitlines(), [
            "*filter", ":nova-FORWARD RETURN", ":nova-INPUT RETURN",
            ":nova-i-00000001 RETURN", "-D INPUT -j nova-INPUT", "-D FORWARD -j nova-FORWARD",
            "-X nova-i-00000001", "-X nova-INPUT", "-X nova-FORWARD", "COMMIT"])
        self.assertRaises(InvalidIdentifier, ipt.restore_input, "nat", None,
                          dialect=ebt.EBTABLES)

    def test_commands(self) -> None:
        self.assertEqual(ebt.EBTABLES.save_argv("filter"), ["ebtables-save", "-t", "filter"])
        self.assertEqual(ebt.EBTABLES.restore_argv(), ["ebtables-restore", "--noflush"])
        self.assertRaises(InvalidIdentifier, ebt.EBTABLES.save_argv, "nat")
