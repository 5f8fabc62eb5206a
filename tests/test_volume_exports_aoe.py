"""
AoE exports by vblade, proven real without the kernel's C{aoe} module: two
fresh namespaces joined by a veth pair, vblade serving a sparse file with a
known pattern in one, and L{tests.support.aoe_client} speaking the AoE
protocol over a raw socket in the other (query config, ATA IDENTIFY
DEVICE, READ SECTORS EXT), compared with the file's bytes.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.trial import unittest

from nova.utils.validate import InvalidIdentifier
from nova.volume.exports.aoe import AoeExportDriver, vblade_argv
from tests.support import volume_exports as support
from tests.support.volume_exports import coroutine_test

VOL = "vol-0123456789abcdef0"
ROOT = str(Path(__file__).resolve().parents[1])
SECTORS = 8192  # a 4 MiB volume


class ArgvTests(unittest.TestCase):
    """The vblade command."""

    def test_argv(self) -> None:
        self.assertEqual(vblade_argv("vblade", 1, 3, "eth0", "/v/a.img"),
                         ["vblade", "1", "3", "eth0", "/v/a.img"])

    def test_bad_values(self) -> None:
        for args in ((0xFFFF, 0, "eth0", "/v/a"), (1, 0xFF, "eth0", "/v/a"),
                     (-1, 0, "eth0", "/v/a"), (1, 0, "-d", "/v/a"), (1, 0, "eth0", "v/a"),
                     (True, 0, "eth0", "/v/a"), ("1", 0, "eth0", "/v/a")):
            with self.assertRaises(InvalidIdentifier):
                vblade_argv("vblade", *args)

    def test_connection_info(self) -> None:
        self.assertEqual(AoeExportDriver.connection_info(1, 3),
                         {"kind": "aoe", "shelf": 1, "slot": 3, "device": "/dev/etherd/e1.3"})


class RealAoeTests(unittest.TestCase):
    """vblade in one namespace, the AoE client in another."""

    skip = support.missing("vblade", "ip", "setsid")

    def setUp(self) -> defer.Deferred[None]:
        from twisted.internet import reactor
        self.reactor = reactor
        self.runner = support.real_runner()
        self.dir = support.short_tempdir(self)
        tag = support.unique_tag()
        self.host_ns, self.client_ns = f"nvt-{tag}-a", f"nvt-{tag}-b"
        self.host_if, self.client_if = f"nvt-{tag}-a", f"nvt-{tag}-b"
        self.path = os.path.join(self.dir, VOL + ".img")
        with open(self.path, "wb") as f:
            f.truncate(SECTORS * support.SECTOR)
        support.write_pattern(self.path, [0, 1, 2, 3, 4095, SECTORS - 1])
        self.allocated: list[tuple[int, int]] = []
        self.released: list[tuple[int, int]] = []
        return defer.Deferred.fromCoroutine(self._namespaces())

    async def _namespaces(self) -> None:
        for ns in (self.host_ns, self.client_ns):
            await support.make_netns(self, self.runner, ns)
        await self.runner.run(["ip", "link", "add", self.host_if, "netns", self.host_ns,
                               "type", "veth", "peer", "name", self.client_if,
                               "netns", self.client_ns])
        await self.runner.run(["ip", "link", "set", self.host_if, "up"], netns=self.host_ns)
        await self.runner.run(["ip", "link", "set", self.client_if, "up"], netns=self.client_ns)
        self.driver = self._driver()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.driver.shutdown()))

    def _driver(self) -> AoeExportDriver:
        async def allocate() -> tuple[int, int]:
            self.allocated.append((7, 42))
            return 7, 42

        async def release(shelf: int, slot: int) -> None:
            self.released.append((shelf, slot))
        return AoeExportDriver(self.reactor, os.path.join(self.dir, "aoe"), netif=self.host_if,
                               netns=self.host_ns, run_in_thread=threads.deferToThread,
                               allocate=allocate, release=release)

    async def _client(self, *args: str, check_one: bool = True) -> dict[str, Any]:
        done = await self.runner.run(
            [sys.executable, "-m", "tests.support.aoe_client", self.client_if, *args],
            netns=self.client_ns, env={"PYTHONPATH": ROOT, "PATH": support.SEARCH}, timeout=60)
        return json.loads(done.stdout)

    def _reads(self, out: dict[str, Any]) -> dict[int, bytes]:
        return {r["lba"]: base64.b64decode(r["data"]) for r in out["reads"]}

    @coroutine_test
    async def test_client_reads_the_volume(self) -> None:
        info = await self.driver.export(VOL, self.path)
        self.assertEqual(info, {"kind": "aoe", "shelf": 7, "slot": 42,
                                "device": "/dev/etherd/e7.42"})
        out = await self._client("--read", "0:5", "--read", f"{SECTORS - 2}:2",
                                 "--read", "4095:1")
        [target] = out["targets"]
        self.assertEqual((target["shelf"], target["slot"], target["aoe_version"]), (7, 42, 1))
        self.assertEqual(out["identify"]["sectors"], SECTORS)
        reads = self._reads(out)
        self.assertEqual(reads[0], support.read_sectors(self.path, 0, 5))
        self.assertEqual(reads[0][:support.SECTOR], support.pattern(0))
        self.assertEqual(reads[0][4 * support.SECTOR:], b"\0" * support.SECTOR)  # a hole
        self.assertEqual(reads[SECTORS - 2][support.SECTOR:], support.pattern(SECTORS - 1))
        self.assertEqual(reads[4095], support.pattern(4095))

        await self.driver.unexport(VOL)
        self.assertEqual(self.released, [(7, 42)])
        gone = await self._client("--timeout", "0.3", "--retries", "2")
        self.assertEqual(gone["targets"], [])

    @coroutine_test
    async def test_restart_and_ensure_keep_the_device_name(self) -> None:
        info = await self.driver.export(VOL, self.path)
        restarted = self._driver()
        self.assertEqual(await restarted.exports(), [VOL])
        self.assertEqual(await restarted.shutdown(), 1)  # as if the host rebooted
        self.assertEqual(await restarted.exports(), [])
        self.assertEqual(await restarted.ensure(VOL, self.path), info)
        self.assertEqual(self.allocated, [(7, 42)])  # ensure reused the slot
        out = await self._client("--shelf", "7", "--slot", "42", "--read", "1:1")
        self.assertEqual(self._reads(out)[1], support.pattern(1))
        # vblade reports what it serves in its log
        with open(restarted.log_file(VOL)) as f:
            self.assertIn("e7.42", f.read())

    @coroutine_test
    async def test_default_allocation_and_bad_netif(self) -> None:
        driver = AoeExportDriver(self.reactor, os.path.join(self.dir, "aoe2"),
                                 netif=self.host_if, netns=self.host_ns, shelf=3,
                                 run_in_thread=threads.deferToThread)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(driver.shutdown()))
        info = await driver.export(VOL, self.path)
        self.assertEqual((info["shelf"], info["slot"]), (3, 0))
        other = os.path.join(self.dir, "vol-00000000000000001.img")
        with open(other, "wb") as f:
            f.truncate(1024 * 1024)
        second = await driver.export("vol-00000000000000001", other)
        self.assertEqual((second["shelf"], second["slot"]), (3, 1))
        missing_if = AoeExportDriver(self.reactor, os.path.join(self.dir, "aoe3"),
                                     netif="nvt-absent0", netns=self.host_ns,
                                     run_in_thread=threads.deferToThread)
        from nova.volume.exports import ExportError
        with self.assertRaises(ExportError):
            await missing_if.export(VOL, self.path)
        self.assertEqual(await missing_if.exports(), [])
        self.assertEqual(os.listdir(missing_if.state_dir), [])  # nothing half-made kept
