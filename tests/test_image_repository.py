"""
L{ImageRepository}, against the in-memory datastore and against Redis at
127.0.0.1:6379 (the harnesses of the datastore contract tests).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attr
from twisted.trial import unittest

from nova.datastore import keys
from nova.datastore.interfaces import IDatastore
from nova.exception import InvalidParameterValue, NotFound
from nova.image import permissions
from nova.image.records import (
    AVAILABLE, DECRYPTING, FAILED, PENDING, UNTARRING, Image, IncorrectImageState,
    InvalidAMIIDMalformed, InvalidAMIIDNotFound, new_image_id)
from nova.image.repository import ImageIdCollision, ImageRepository
from tests.test_datastore_contract import MemoryHarness, RedisHarness, run
from tests.test_datastore_repositories import RepositoryMixin
from tests.test_image_records import an_image


class _CountingStore:
    """A datastore that counts the commands sent through it."""

    def __init__(self, store: IDatastore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self._store, name)


def ids(images: list[Image]) -> list[str]:
    return [i.image_id for i in images]


class ImageRepositoryMixin(RepositoryMixin):

    def repo(self, store: IDatastore | None = None) -> ImageRepository:
        return ImageRepository(store or self.store, self.clock)

    async def world(self, repo: ImageRepository) -> dict[str, Image]:
        """Register: proj's private, public and shared images, other's private, a kernel."""
        made = {
            "mine": an_image(owner="proj", name="mine", created_at=1.0),
            "public": an_image(owner="other", is_public=True, name="pub", created_at=2.0),
            "shared": an_image(owner="other", launch_permission_users=["proj"],
                               name="shared", created_at=3.0),
            "hidden": an_image(owner="other", name="hidden", created_at=4.0),
            "kernel": an_image("kernel", owner="proj", created_at=5.0, state=PENDING,
                               architecture="i386"),
        }
        for image in made.values():
            await repo.register(image)
        return made

    async def test_register_get(self) -> None:
        repo = self.repo()
        for image_type in ["machine", "kernel", "ramdisk"]:
            image = an_image(image_type)
            self.assertEqual(await repo.register(image), image)
            self.assertEqual(await repo.get(image.image_id), image)
        self.assertEqual(len(await self.store.smembers(keys.images())), 3)

    async def test_same_location_twice(self) -> None:
        repo = self.repo()
        first = await repo.register(an_image(image_location="b/x.manifest.xml"))
        second = await repo.register(an_image(image_location="b/x.manifest.xml"))
        self.assertNotEqual(first.image_id, second.image_id)
        await repo.deregister(first.image_id)
        self.assertEqual(await repo.get(second.image_id), second)

    async def test_id_collision(self) -> None:
        repo = self.repo()
        image = await repo.register(an_image(name="first"))
        e = await self.assertFails(ImageIdCollision,
                                   repo.register(attr.evolve(image, name="second")))
        self.assertEqual(e.code, "InvalidAMIID.Duplicate")  # type: ignore[attr-defined]
        self.assertEqual((await repo.get(image.image_id)).name, "first")

    async def test_missing_and_malformed(self) -> None:
        repo = self.repo()
        missing = new_image_id("machine")
        for call in [repo.get(missing), repo.deregister(missing),
                     repo.update_state(missing, AVAILABLE),
                     repo.describe("proj", True, image_ids=[missing])]:
            e = await self.assertFails(InvalidAMIIDNotFound, call)
            self.assertIsInstance(e, NotFound)
            self.assertEqual((e.code, e.status), ("InvalidAMIID.NotFound", 400))  # type: ignore
            self.assertIn(missing, str(e))
        for call in [repo.get("ami-nothex"), repo.deregister("i-0123456789abcdef0"),
                     repo.update_state("ami-1", AVAILABLE),
                     repo.describe("proj", False, image_ids=["bogus"])]:
            e = await self.assertFails(InvalidAMIIDMalformed, call)
            self.assertEqual(e.code, "InvalidAMIID.Malformed")  # type: ignore[attr-defined]
        self.assertEqual(await self.store.scan("*"), [])

    async def test_visibility_matrix(self) -> None:
        repo = self.repo()
        w = await self.world(repo)
        self.assertEqual(ids(await repo.describe("proj", False)),
                         ids([w["mine"], w["public"], w["shared"], w["kernel"]]))
        self.assertEqual(ids(await repo.describe("other", False)),
                         ids([w["public"], w["shared"], w["hidden"]]))
        self.assertEqual(ids(await repo.describe("stranger", False)), ids([w["public"]]))
        self.assertEqual(ids(await repo.describe("stranger", True)), ids(list(w.values())))
        # naming an image one may not see answers NotFound, as for a missing one
        e = await self.assertFails(InvalidAMIIDNotFound, repo.describe(
            "proj", False, image_ids=[w["mine"].image_id, w["hidden"].image_id]))
        self.assertIn(w["hidden"].image_id, str(e))
        self.assertEqual(ids(await repo.describe(
            "proj", False, image_ids=[w["shared"].image_id, w["mine"].image_id,
                                      w["shared"].image_id])),
            ids([w["mine"], w["shared"]]))
        self.assertEqual(await repo.get_visible(w["shared"].image_id, "proj", False),
                         w["shared"])
        await self.assertFails(InvalidAMIIDNotFound,
                               repo.get_visible(w["hidden"].image_id, "proj", False))
        self.assertEqual(await repo.get_visible(w["hidden"].image_id, "x", True), w["hidden"])

    async def test_owners(self) -> None:
        repo = self.repo()
        w = await self.world(repo)
        self.assertEqual(ids(await repo.describe("proj", False, owners=["self"])),
                         ids([w["mine"], w["kernel"]]))
        # another project's images: only those the viewer may see
        self.assertEqual(ids(await repo.describe("proj", False, owners=["other"])),
                         ids([w["public"], w["shared"]]))
        self.assertEqual(ids(await repo.describe("proj", True, owners=["other"])),
                         ids([w["public"], w["shared"], w["hidden"]]))
        self.assertEqual(await repo.describe("proj", False, owners=["amazon"]), [])
        self.assertEqual(ids(await repo.describe("proj", False, owners=["amazon", "self"])),
                         ids([w["mine"], w["kernel"]]))
        self.assertEqual(await repo.describe("proj", False, owners=["nobody"]), [])

    async def test_executable_by(self) -> None:
        repo = self.repo()
        w = await self.world(repo)
        self.assertEqual(ids(await repo.describe("proj", False, executable_by=["all"])),
                         ids([w["public"]]))
        mine_and_shared = ids([w["mine"], w["shared"], w["kernel"]])
        self.assertEqual(ids(await repo.describe("proj", False, executable_by=["self"])),
                         mine_and_shared)
        self.assertEqual(ids(await repo.describe("proj", False, executable_by=["proj"])),
                         mine_and_shared)
        # as other: the images it shared with proj
        self.assertEqual(ids(await repo.describe("other", False, executable_by=["proj"])),
                         ids([w["shared"]]))
        self.assertEqual(ids(await repo.describe("proj", False, executable_by=["all", "self"],
                                                 owners=["other"])),
                         ids([w["public"], w["shared"]]))

    async def test_filters(self) -> None:
        repo = self.repo()
        w = await self.world(repo)

        async def find(**filters: Any) -> list[str]:
            return ids(await repo.describe("proj", False, filters=filters))

        self.assertEqual(await find(**{"image-type": ["kernel"]}), ids([w["kernel"]]))
        self.assertEqual(await find(state=["pending"]), ids([w["kernel"]]))
        self.assertEqual(await find(name=["sh*", "mi?e"]), ids([w["mine"], w["shared"]]))
        self.assertEqual(await find(name=["mi"]), [])
        self.assertEqual(await find(**{"owner-id": ["other"]}), ids([w["public"], w["shared"]]))
        self.assertEqual(await find(**{"is-public": ["true"]}), ids([w["public"]]))
        self.assertEqual(await find(**{"is-public": "false", "architecture": "x86_64"}),
                         ids([w["mine"], w["shared"]]))
        self.assertEqual(await find(architecture=["i386"]), ids([w["kernel"]]))
        self.assertEqual(await find(**{"image-id": [w["mine"].image_id[:6] + "*"]}),
                         ids([w["mine"]]))
        with_kernel = await repo.register(an_image(
            owner="proj", kernel_id=w["kernel"].image_id, ramdisk_id="ari-00000001",
            created_at=9.0))
        self.assertEqual(await find(**{"kernel-id": [w["kernel"].image_id]}),
                         ids([with_kernel]))
        self.assertEqual(await find(**{"ramdisk-id": ["ari-*"]}), ids([with_kernel]))
        e = await self.assertFails(InvalidParameterValue,
                                   repo.describe("proj", False, filters={"color": ["red"]}))
        self.assertIn("color", str(e))

    async def test_one_index_read_and_one_mget(self) -> None:
        await self.world(self.repo())
        counting = _CountingStore(self.store)
        repo = self.repo(counting)  # type: ignore[arg-type]
        self.assertEqual(len(await repo.describe("x", True)), 5)
        self.assertEqual(counting.calls, Counter({"smembers": 1, "mget": 1}))
        first = (await self.repo().describe("x", True))[0].image_id
        counting.calls.clear()
        [one] = await repo.describe("x", True, image_ids=[first])
        self.assertEqual(counting.calls, Counter({"mget": 1}))
        self.assertEqual(one.name, "mine")

    async def test_state_transitions(self) -> None:
        repo = self.repo()
        image = await repo.register(an_image(state=PENDING, disk_format="bundle"))
        for state in [DECRYPTING, UNTARRING]:
            self.assertEqual((await repo.update_state(image.image_id, state)).state, state)
        done = await repo.update_state(image.image_id, AVAILABLE, size=1024,
                                       checksum="0" * 64, disk_format="raw")
        self.assertEqual((done.state, done.size, done.checksum, done.disk_format),
                         (AVAILABLE, 1024, "0" * 64, "raw"))
        self.assertEqual(await repo.get(image.image_id), done)
        e = await self.assertFails(IncorrectImageState,
                                   repo.update_state(image.image_id, DECRYPTING))
        self.assertEqual(e.code, "IncorrectState")  # type: ignore[attr-defined]
        await self.assertFails(IncorrectImageState, repo.update_state(image.image_id, FAILED))
        await self.assertFails(ValueError, repo.update_state(image.image_id, "deregistered"))
        await self.assertFails(ValueError, repo.update_state(image.image_id, AVAILABLE,
                                                             owner_project_id="thief"))
        self.assertEqual(await repo.get(image.image_id), done)

    async def test_failed_is_final(self) -> None:
        repo = self.repo()
        image = await repo.register(an_image(state=PENDING, disk_format="bundle"))
        await repo.update_state(image.image_id, DECRYPTING)
        failed = await repo.update_state(
            image.image_id, FAILED, ("Client.InvalidManifest", "bad signature"))
        self.assertEqual(failed.state_reason, ("Client.InvalidManifest", "bad signature"))
        await self.assertFails(IncorrectImageState, repo.update_state(image.image_id, AVAILABLE))
        other = await repo.register(an_image(state=PENDING))
        generic = await repo.update_state(other.image_id, FAILED)
        self.assertIsNotNone(generic.state_reason)  # type: ignore[attr-defined]

    async def test_concurrent_changes_are_not_lost(self) -> None:
        image = await self.repo().register(an_image())
        repo = self.repo(self.interleaving())
        users = [f"p{i}" for i in range(6)]
        attempts = [run(repo.change(image.image_id, lambda im, u=u: permissions.modify(
            im, "proj", False, "add", user_ids=[u]))) for u in users]
        await self.settle(attempts)
        self.assertEqual((await repo.get(image.image_id)).launch_permission_users, tuple(users))

    async def test_change_applies_permissions(self) -> None:
        repo = self.repo()
        image = await repo.register(an_image())
        await repo.change(image.image_id, lambda im: permissions.modify(
            im, "proj", False, "add", groups=["all"]))
        self.assertEqual(ids(await repo.describe("stranger", False)), [image.image_id])
        await self.assertFails(permissions.ImageAuthFailure, repo.change(
            image.image_id, lambda im: permissions.reset(im, "stranger", False)))
        await repo.change(image.image_id, lambda im: permissions.reset(im, "proj", False))
        self.assertEqual(await repo.describe("stranger", False), [])
        await self.assertFails(ValueError, repo.change(
            image.image_id, lambda im: attr.evolve(im, image_location="b/other")))

    async def test_deregister(self) -> None:
        repo = self.repo()
        w = await self.world(repo)
        gone = await repo.deregister(w["mine"].image_id)
        self.assertEqual(gone, w["mine"])
        await self.assertFails(InvalidAMIIDNotFound, repo.get(gone.image_id))
        await self.assertFails(InvalidAMIIDNotFound, repo.deregister(gone.image_id))
        self.assertNotIn(gone.image_id, ids(await repo.describe("proj", True)))
        await self.assertFails(InvalidAMIIDNotFound, repo.update_state(gone.image_id, FAILED))
        for image in list(w.values())[1:]:
            await repo.deregister(image.image_id)
        self.assertEqual(await self.store.scan("*"), [])


class MemoryImageRepositoryTests(MemoryHarness, ImageRepositoryMixin, unittest.TestCase):
    pass


class RedisImageRepositoryTests(RedisHarness, ImageRepositoryMixin, unittest.TestCase):
    pass
