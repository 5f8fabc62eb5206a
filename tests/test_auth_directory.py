"""The embedded directory: its LDIF file, written atomically and in order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from twisted.internet import defer, reactor
from twisted.trial import unittest

from nova.auth import errors
from nova.auth.directory import EmbeddedDirectory, thread_runner
from nova.auth.ldapdriver import LdapDriver
from nova.auth.ldaplayout import rdn

BASE = "dc=nova,dc=local"

HAND_WRITTEN = b"""\
version: 1

dn: dc=nova,dc=local
objectclass: dcObject
objectclass: organization
dc: nova
o: nova

dn: ou=Users,dc=nova,dc=local
objectclass: organizationalUnit
ou: Users

dn: uid=vish,ou=Users,dc=nova,dc=local
objectclass: inetOrgPerson
objectclass: novaUser
UID: vish
cn: vish
sn: vish
accesskey: AKvish
secretKey: SKvish
isNovaAdmin: TRUE

dn: ou=Groups,dc=nova,dc=local
objectclass: organizationalUnit
ou: Groups

dn: cn=nasa,ou=Groups,dc=nova,dc=local
objectclass: groupOfNames
cn: nasa
description:: w6lxdWlwZSBuYXNh
owner: uid=vish,ou=Users,dc=nova,dc=local
member: uid=vish,ou=Users,dc=nova,dc=local

"""


def _ou(name: str) -> dict[str, list[str]]:
    return {"objectClass": ["organizationalUnit"], "ou": [name]}


class HeldRunner:
    """Holds every blocking call until the test releases it."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], Any], defer.Deferred]] = []

    def __call__(self, fn: Callable[[], Any]) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.pending.append((fn, d))
        return d

    def release(self) -> None:
        fn, d = self.pending.pop(0)
        d.callback(fn())


class SwitchRunner:
    """Runs blocking calls inline, or fails them like a full disk."""

    def __init__(self) -> None:
        self.failing = False

    async def __call__(self, fn: Callable[[], Any]) -> Any:
        if self.failing:
            raise OSError(28, "No space left on device")
        return fn()


class EmbeddedDirectoryTests(unittest.TestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "state" / "directory.ldif"

    async def test_created_with_the_base_entry_readable_by_the_owner_only(self) -> None:
        directory = await EmbeddedDirectory.open(self.path, BASE)
        data = self.path.read_bytes()
        self.assertTrue(data.startswith(b"version: 1\n\ndn: dc=nova,dc=local\n"), data)
        self.assertIn(b"objectClass: dcObject", data)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        self.assertEqual(directory.base.dn.getText(), BASE)
        self.assertEqual(os.listdir(self.path.parent), ["directory.ldif"])

    async def test_every_change_is_written(self) -> None:
        directory = await EmbeddedDirectory.open(self.path, BASE)
        child = await directory.base.addChild(rdn("ou", "People"), _ou("People"))
        self.assertIn(b"dn: ou=People,dc=nova,dc=local", self.path.read_bytes())
        child["description"] = ["somebody's"]
        await child.commit()
        self.assertIn(b"description: somebody's", self.path.read_bytes())
        await child.delete()
        self.assertNotIn(b"People", self.path.read_bytes())

    async def test_reads_a_hand_written_file(self) -> None:
        self.path.parent.mkdir(parents=True)
        self.path.write_bytes(HAND_WRITTEN)
        driver = LdapDriver((await EmbeddedDirectory.open(self.path, BASE)).base)
        user = await driver.get_user_by_access_key("AKvish")
        self.assertEqual((user.id, user.secret, user.admin), ("vish", "SKvish", True))
        project = await driver.get_project("nasa")
        self.assertEqual((project.description, project.member_ids), ("équipe nasa", ("vish",)))
        modified = await driver.modify_user("vish", secret="SKnew", admin=False)
        again = LdapDriver((await EmbeddedDirectory.open(self.path, BASE)).base)
        self.assertEqual(await again.get_user("vish"), modified)
        self.assertEqual(self.path.read_bytes().count(b"secretKey"), 1)

    async def test_damaged_files_are_refused(self) -> None:
        self.path.parent.mkdir(parents=True)
        whole = HAND_WRITTEN
        orphan = b"version: 1\n\ndn: dc=nova,dc=local\ndc: nova\n\ndn: uid=x,ou=Nowhere,dc=nova,dc=local\nuid: x\n\n"
        for data in (b"", b"version: 1\n\n", b"this is not LDIF\n\n", whole[:-30],
                     whole.replace(b"dc=nova,dc=local", b"dc=other,dc=org"), orphan,
                     whole + whole.split(b"\n\n", 2)[2]):
            self.path.write_bytes(data)
            with self.assertRaises(errors.DirectoryError, msg=data[-60:]):
                await EmbeddedDirectory.open(self.path, BASE)
            self.assertEqual(self.path.read_bytes(), data)

    async def test_a_failed_write_keeps_the_old_file(self) -> None:
        runner = SwitchRunner()
        directory = await EmbeddedDirectory.open(self.path, BASE, runner)
        before = self.path.read_bytes()
        runner.failing = True
        with self.assertRaises(errors.DirectoryUnavailable):
            await directory.base.addChild(rdn("ou", "Lost"), _ou("Lost"))
        self.assertEqual(self.path.read_bytes(), before)
        runner.failing = False
        await directory.base.addChild(rdn("ou", "Kept"), _ou("Kept"))
        data = self.path.read_bytes()
        self.assertIn(b"ou=Lost", data)  # the tree had it: the next write carries it
        self.assertIn(b"ou=Kept", data)

    async def test_an_interrupted_write_leaves_no_trace(self) -> None:
        directory = await EmbeddedDirectory.open(self.path, BASE)
        before = self.path.read_bytes()

        def broken_fsync(fd: int) -> None:
            raise OSError(5, "Input/output error")

        self.patch(os, "fsync", broken_fsync)
        with self.assertRaises(errors.DirectoryUnavailable):
            await directory.base.addChild(rdn("ou", "Lost"), _ou("Lost"))
        self.assertEqual(self.path.read_bytes(), before)
        self.assertEqual(os.listdir(self.path.parent), ["directory.ldif"])

    def test_writes_are_serialised_and_coalesced(self) -> None:
        runner = HeldRunner()
        opened = defer.Deferred.fromCoroutine(EmbeddedDirectory.open(self.path, BASE, runner))
        runner.release()  # the read: no file yet
        runner.release()  # the first write
        directory = self.successResultOf(opened)

        first = directory.base.addChild(rdn("ou", "A"), _ou("A"))
        self.assertEqual(len(runner.pending), 1)
        second = directory.base.addChild(rdn("ou", "B"), _ou("B"))
        third = directory.base.addChild(rdn("ou", "C"), _ou("C"))
        # one write at a time: the later changes wait for the first write
        self.assertEqual(len(runner.pending), 1)
        self.assertNoResult(first)
        runner.release()
        self.successResultOf(first)
        self.assertNoResult(second)
        self.assertNoResult(third)
        self.assertNotIn(b"ou=B", self.path.read_bytes())
        # the next write carries both later changes; the third needs no write
        self.assertEqual(len(runner.pending), 1)
        runner.release()
        self.successResultOf(second)
        self.successResultOf(third)
        self.assertEqual(runner.pending, [])
        data = self.path.read_bytes()
        for name in (b"A", b"B", b"C"):
            self.assertIn(b"dn: ou=" + name + b",dc=nova,dc=local", data)

    async def test_writes_in_threads(self) -> None:
        directory = await EmbeddedDirectory.open(self.path, BASE, thread_runner(reactor))
        driver = LdapDriver(directory.base)
        await driver.create_user("tess", "AKtess", "SKtess")
        await directory.close()
        again = LdapDriver((await EmbeddedDirectory.open(self.path, BASE)).base)
        self.assertEqual((await again.get_user("tess")).access, "AKtess")

    async def test_concurrent_changes_all_land(self) -> None:
        directory = await EmbeddedDirectory.open(self.path, BASE, thread_runner(reactor))
        driver = LdapDriver(directory.base)
        names = [f"user{i}" for i in range(20)]
        await defer.gatherResults([
            defer.Deferred.fromCoroutine(driver.create_user(n, f"AK{n}", "SK")) for n in names])
        again = LdapDriver((await EmbeddedDirectory.open(self.path, BASE)).base)
        self.assertEqual(sorted(u.id for u in await again.list_users()), sorted(names))
