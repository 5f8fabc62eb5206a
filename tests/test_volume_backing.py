"""
The backing stores: one contract suite run against L{SparseFileBacking}
(real sparse files in a temporary directory), L{LvmBacking} (against a
L{FakeProcessRunner} that plays LVM: this machine has no volume group) and
L{MemoryBacking}; then what only one of them does.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from twisted.trial import unittest
from zope.interface.verify import verifyObject

from nova.utils.process import CommandFailed, FakeProcessRunner, RecordedCall, Reply
from nova.utils.validate import InvalidIdentifier
from nova.volume.backing import (GIB, BackingConflict, IBackingStore, LvmBacking,
                                 MemoryBacking, SparseFileBacking)
from tests.support.compute import run_now
from tests.support.volume_exports import coroutine_test

VOL_A = "vol-0123456789abcdef0"
VOL_B = "vol-00000000000000001"


class BackingContractMixin:
    """What every L{IBackingStore} does; C{self.store} is set by setUp."""

    store: Any

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IBackingStore, self.store))

    @coroutine_test
    async def test_create_path_exists_list(self) -> None:
        self.assertEqual(await self.store.list(), [])
        self.assertFalse(await self.store.exists(VOL_A))
        self.assertIsNone(await self.store.path(VOL_A))
        path = await self.store.create(VOL_A, 1)
        self.assertTrue(os.path.isabs(path))
        self.assertIn(VOL_A, path)
        self.assertEqual(await self.store.path(VOL_A), path)
        self.assertTrue(await self.store.exists(VOL_A))
        await self.store.create(VOL_B, 2)
        self.assertEqual(await self.store.list(), sorted([VOL_A, VOL_B]))

    @coroutine_test
    async def test_create_is_idempotent(self) -> None:
        first = await self.store.create(VOL_A, 1)
        self.assertEqual(await self.store.create(VOL_A, 1), first)
        self.assertEqual(await self.store.list(), [VOL_A])

    @coroutine_test
    async def test_create_other_size_conflicts(self) -> None:
        await self.store.create(VOL_A, 1)
        with self.assertRaises(BackingConflict):
            await self.store.create(VOL_A, 2)

    @coroutine_test
    async def test_delete_is_idempotent(self) -> None:
        await self.store.create(VOL_A, 1)
        await self.store.delete(VOL_A)
        await self.store.delete(VOL_A)
        self.assertFalse(await self.store.exists(VOL_A))
        self.assertEqual(await self.store.list(), [])

    @coroutine_test
    async def test_bad_ids_and_sizes_refused(self) -> None:
        for bad in ("vol-123", "VOL-0123456789ABCDEF0", "-vol-0123456789abcdef0",
                    "vol-0123456789abcdef0 x", "../vol-0123456789abcdef0", 7):
            with self.assertRaises(InvalidIdentifier):
                await self.store.create(bad, 1)
            with self.assertRaises(InvalidIdentifier):
                await self.store.delete(bad)
        for size in (0, -1, 1.5, True, "1", 16385):
            with self.assertRaises(InvalidIdentifier):
                await self.store.create(VOL_A, size)
        self.assertEqual(await self.store.list(), [])


class SparseFileBackingTests(BackingContractMixin, unittest.TestCase):
    """Real files."""

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        self.store = SparseFileBacking(run_now, os.path.join(self.dir, "volumes"))

    @coroutine_test
    async def test_file_is_sparse_private_and_sized(self) -> None:
        path = await self.store.create(VOL_A, 3)
        self.assertEqual(path, os.path.join(self.dir, "volumes", VOL_A + ".img"))
        st = os.stat(path)
        self.assertEqual(st.st_size, 3 * GIB)
        self.assertLess(st.st_blocks * 512, 1024 * 1024)  # no data blocks written
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(os.listdir(os.path.dirname(path)), [VOL_A + ".img"])  # no temp file

    @coroutine_test
    async def test_other_files_are_not_volumes(self) -> None:
        await self.store.create(VOL_A, 1)
        for name in ("notes.txt", "vol-0123456789abcdef0.img.1234.tmp", "vol-12.img"):
            open(os.path.join(self.store.directory, name), "w").close()
        self.assertEqual(await self.store.list(), [VOL_A])

    def test_relative_and_odd_directories(self) -> None:
        for bad in ("/tmp/a,b", "/tmp/a b"):
            with self.assertRaises(InvalidIdentifier):
                SparseFileBacking(run_now, bad)


class FakeLvm:
    """Plays lvs/lvcreate/lvremove for one volume group on a FakeProcessRunner."""

    def __init__(self, runner: FakeProcessRunner, vg: str) -> None:
        self.vg = vg
        self.lvs: dict[str, int] = {"swap": GIB}  # somebody else's volume
        runner.add_handler(["lvs"], self.show)
        runner.add_handler(["lvcreate"], self.create)
        runner.add_handler(["lvremove"], self.remove)

    def show(self, call: RecordedCall) -> Reply:
        rows = [{"lv_name": n, "lv_path": f"/dev/{self.vg}/{n}", "lv_size": str(size)}
                for n, size in self.lvs.items()]
        return Reply(stdout=json.dumps({"report": [{"lv": rows}]}).encode())

    def create(self, call: RecordedCall) -> Reply:
        args = call.argv
        name = args[args.index("-n") + 1]
        if name in self.lvs:
            return Reply(exit_code=5, stderr=b"Logical Volume already exists")
        size = re.fullmatch(r"(\d+)G", args[args.index("-L") + 1])
        assert size is not None and args[-1] == self.vg
        self.lvs[name] = int(size.group(1)) * GIB
        return Reply()

    def remove(self, call: RecordedCall) -> Reply:
        vg, name = call.argv[-1].split("/")
        if vg != self.vg or name not in self.lvs:
            return Reply(exit_code=5, stderr=b"Failed to find logical volume")
        del self.lvs[name]
        return Reply()


class LvmBackingTests(BackingContractMixin, unittest.TestCase):
    """LVM commands, against a fake LVM (no volume group on this machine)."""

    def setUp(self) -> None:
        self.runner = FakeProcessRunner()
        self.lvm = FakeLvm(self.runner, "nova-volumes")
        self.store = LvmBacking(self.runner, "nova-volumes")

    @coroutine_test
    async def test_commands(self) -> None:
        path = await self.store.create(VOL_A, 2)
        self.assertEqual(path, f"/dev/nova-volumes/{VOL_A}")
        await self.store.delete(VOL_A)
        lvs = ("lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
               "-o", "lv_name,lv_path,lv_size", "nova-volumes")
        self.assertEqual(self.runner.commands(), [
            lvs,
            ("lvcreate", "--yes", "-L", "2G", "-n", VOL_A, "nova-volumes"),
            lvs,
            lvs,
            ("lvremove", "-f", f"nova-volumes/{VOL_A}"),
        ])

    @coroutine_test
    async def test_others_volumes_untouched(self) -> None:
        self.assertEqual(await self.store.list(), [])
        await self.store.delete(VOL_A)
        self.assertEqual(self.runner.calls_matching(["lvremove"]), [])
        self.assertIn("swap", self.lvm.lvs)

    @coroutine_test
    async def test_failures_surface(self) -> None:
        self.runner.add_result(["lvcreate"], exit_code=5, stderr=b"Insufficient free space")
        with self.assertRaises(CommandFailed) as caught:
            await self.store.create(VOL_A, 1)
        self.assertIn("Insufficient free space", str(caught.exception))

    def test_bad_group_names(self) -> None:
        for bad in ("-vg", "a b", "..", "", "vg/x"):
            with self.assertRaises(InvalidIdentifier):
                LvmBacking(self.runner, bad)


class MemoryBackingTests(BackingContractMixin, unittest.TestCase):
    """The bookkeeping-only store."""

    def setUp(self) -> None:
        self.store = MemoryBacking()
