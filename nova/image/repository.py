"""
L{ImageRepository}: the image registry in the datastore.

Layout (key names in L{nova.datastore.keys}): one JSON record per image under
C{image:<id>} and the index set C{images} of every image key. Registration
writes both in one transaction, deregistration removes both in one, and every
change is a read-modify-write in one C{transact} watching the record, so two
writers (the unbundling worker and ModifyImageAttribute) cannot lose each
other's changes.

DescribeImages reads the index (SMEMBERS) and the records (one MGET), or only
the records it names (one MGET), and filters in the process: a private cloud
has hundreds of images, not millions, and visibility depends on three fields
at once (owner, public flag, launch permission users), which no single index
answers.

Registering a location twice is allowed, as in AWS (each registration is
another image with its own id); deregistering one leaves the others.
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import attr
from twisted.internet.interfaces import IReactorTime

from nova.utils.filters import wildcard
from nova.datastore import keys
from nova.datastore.interfaces import IDatastore, ITransaction
from nova.exception import Duplicate, InvalidParameterValue
from nova.image import permissions
from nova.image.records import (
    FAILED, NEXT_STATES, STATES, Image, IncorrectImageState, InvalidAMIIDNotFound,
    check_image_id, string_list)

#: fields fixed at registration
_FIXED = frozenset({"image_id", "image_location", "image_type", "owner_project_id",
                    "created_at"})

#: owners that name the cloud provider's images in AWS; this cloud has none
PROVIDER_OWNERS = frozenset({"amazon", "aws-marketplace", "aws-backup-vault"})


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


#: DescribeImages filter name to the record value it matches
FILTERS: Mapping[str, Callable[[Image], str | None]] = {
    "image-id": lambda i: i.image_id,
    "image-type": lambda i: i.image_type,
    "state": lambda i: i.state,
    "name": lambda i: i.name,
    "description": lambda i: i.description,
    "owner-id": lambda i: i.owner_project_id,
    "is-public": lambda i: _bool_text(i.is_public),
    "architecture": lambda i: i.architecture,
    "kernel-id": lambda i: i.kernel_id,
    "ramdisk-id": lambda i: i.ramdisk_id,
    "manifest-location": lambda i: i.image_location,
}

_Compiled = list[tuple[Callable[[Image], str | None], list[re.Pattern[str]]]]


class ImageIdCollision(Duplicate):
    """An image with that id is already registered (pick another id)."""

    code = "InvalidAMIID.Duplicate"


def _strs(what: str, values: Iterable[str] | None) -> list[str]:
    return string_list(values, lambda v: InvalidParameterValue(
        f"Invalid value {v!r} for {what}"))


def _compile_filters(filters: Mapping[str, Iterable[str]] | None) -> _Compiled:
    compiled = []
    for name, values in (filters or {}).items():
        getter = FILTERS.get(name)
        if getter is None:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
        compiled.append((getter, [wildcard(v) for v in _strs(name, values)]))
    return compiled


def _matches(image: Image, compiled: _Compiled) -> bool:
    for getter, patterns in compiled:
        value = getter(image)
        if value is None or not any(p.match(value) for p in patterns):
            return False
    return True


def _owned_by(image: Image, owners: Sequence[str], viewer: str) -> bool:
    for owner in owners:
        if owner in PROVIDER_OWNERS:
            continue
        if image.owner_project_id == (viewer if owner == "self" else owner):
            return True
    return False


def _executable_by(image: Image, executors: Sequence[str], viewer: str) -> bool:
    # AWS: "all" is the public images; "self" (or the caller's own id) is the
    # images the caller owns or that name it; another id, the images naming it
    for who in executors:
        if who == "all":
            if image.is_public:
                return True
        elif who in ("self", viewer):
            if image.owner_project_id == viewer or viewer in image.launch_permission_users:
                return True
        elif who in image.launch_permission_users:
            return True
    return False


class ImageRepository:
    """The registered images of every project."""

    def __init__(self, store: IDatastore, clock: IReactorTime) -> None:
        """
        @param store: where image records live.
        @param clock: the time of registration (C{created_at}) when the
            record given has none worth keeping.
        """
        self._store = store
        self._clock = clock

    def now(self) -> float:
        """@return: the current time, for the C{created_at} of new records."""
        return self._clock.seconds()

    # -- writes ---------------------------------------------------------------

    async def register(self, record: Image) -> Image:
        """
        Store a new image and its index entry in one transaction. The same
        location may be registered again (another image, another id).

        @param record: the image, with a fresh id (L{records.new_image_id}).
        @return: C{record}.
        @raise ImageIdCollision: that id is taken (never for a fresh id).
        """
        key = keys.image(record.image_id)

        async def register(txn: ITransaction) -> Image:
            if await txn.exists(key):
                raise ImageIdCollision(f"The image id '{record.image_id}' is already in use")
            txn.set(key, record.to_json())
            txn.sadd(keys.images(), key)
            return record

        return await self._store.transact([key], register)

    async def change(self, image_id: str, fn: Callable[[Image], Image]) -> Image:
        """
        Replace an image by C{fn(image)}, atomically: when another writer
        changes it meanwhile, C{fn} runs again on the new record.
        L{nova.image.permissions.modify} and C{reset} are such functions.

        @param fn: a pure function of the stored record to the new one; it may
            raise, and then nothing is written.
        @return: the record as stored.
        @raise InvalidAMIIDMalformed: not an image id.
        @raise InvalidAMIIDNotFound: no such image.
        @raise ValueError: C{fn} changed a field fixed at registration.
        """
        key = keys.image(check_image_id(image_id))

        async def change(txn: ITransaction) -> Image:
            old = self._found(await txn.get(key), image_id)
            new = fn(old)
            moved = [f for f in _FIXED if getattr(old, f) != getattr(new, f)]
            if moved:
                raise ValueError(f"cannot change {sorted(moved)} of an image")
            if new != old:
                txn.set(key, new.to_json())
            return new

        return await self._store.transact([key], change)

    async def update_state(self, image_id: str, state: str,
                           reason: tuple[str, str] | None = None, **fields: Any) -> Image:
        """
        Move an image to C{state} (L{records.NEXT_STATES}: forward only, or to
        C{failed}), setting more fields with it (C{size}, C{checksum},
        C{disk_format}, C{kernel_id} ...). Leaving C{failed} clears the
        stateReason unless C{reason} is given; C{failed} without a reason
        records a generic one.

        @param reason: EC2 stateReason C{(code, message)}.
        @return: the record as stored.
        @raise IncorrectImageState: the move is not allowed from the current state.
        @raise InvalidAMIIDNotFound: no such image (e.g. deregistered meanwhile).
        @raise ValueError: an unknown state, or a fixed field in C{fields}.
        """
        if state not in STATES:
            raise ValueError(f"unknown image state {state!r}")
        fixed = _FIXED & set(fields)
        if fixed or "state" in fields or "state_reason" in fields:
            raise ValueError(f"update_state cannot set {sorted(fixed or fields)}")
        if reason is None and state == FAILED:
            reason = ("Server.InternalError", "The image could not be registered")

        def move(old: Image) -> Image:
            if state not in NEXT_STATES[old.state]:
                raise IncorrectImageState(
                    f"The image '{old.image_id}' is {old.state} and cannot become {state}")
            keep = old.state_reason if state == old.state else None
            return attr.evolve(old, **fields, state=state,
                               state_reason=reason if reason is not None else keep)

        return await self.change(image_id, move)

    async def deregister(self, image_id: str) -> Image:
        """
        Remove an image and its index entry in one transaction. The caller
        (DeregisterImage) checks ownership first (L{permissions.check_owner});
        the owner never changes, so the check cannot go stale.

        @return: the record that was removed (its location, to clean caches).
        @raise InvalidAMIIDMalformed: not an image id.
        @raise InvalidAMIIDNotFound: no such image.
        """
        key = keys.image(check_image_id(image_id))

        async def deregister(txn: ITransaction) -> Image:
            old = self._found(await txn.get(key), image_id)
            txn.delete(key)
            txn.srem(keys.images(), key)
            return old

        return await self._store.transact([key], deregister)

    # -- reads ----------------------------------------------------------------

    @staticmethod
    def _found(raw: str | None, image_id: str) -> Image:
        if raw is None:
            raise InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")
        return Image.from_json(raw)

    async def get(self, image_id: str) -> Image:
        """
        An image, whoever may see it (for the services; the API uses
        L{describe} or L{get_visible}).

        @raise InvalidAMIIDMalformed: not an image id.
        @raise InvalidAMIIDNotFound: no such image.
        """
        raw = await self._store.get(keys.image(check_image_id(image_id)))
        return self._found(raw, image_id)

    async def get_visible(self, image_id: str, viewer_project_id: str,
                          is_admin: bool) -> Image:
        """
        An image as a project sees it (RunInstances, the image attributes).

        @raise InvalidAMIIDMalformed: not an image id.
        @raise InvalidAMIIDNotFound: no such image, or one the project may not
            see (AWS does not reveal that it exists).
        """
        image = await self.get(image_id)
        if not permissions.can_launch(image, viewer_project_id, is_admin):
            raise InvalidAMIIDNotFound(f"The image id '[{image_id}]' does not exist")
        return image

    async def describe(self, viewer_project_id: str, is_admin: bool,
                       image_ids: Iterable[str] = (), owners: Iterable[str] = (),
                       executable_by: Iterable[str] = (),
                       filters: Mapping[str, Iterable[str]] | None = None
                       ) -> builtins.list[Image]:
        """
        DescribeImages: what the viewer may see (public images, its project's,
        those whose launch permission names its project; all for an admin),
        narrowed by the arguments. Values of one argument are OR-ed,
        arguments AND-ed.

        @param image_ids: only these; one that does not exist or that the
            viewer may not see raises L{InvalidAMIIDNotFound}.
        @param owners: owning project ids, C{self} for the viewer's project;
            C{amazon} (and the other AWS aliases) match nothing here.
        @param executable_by: C{all} (public images), C{self} (the viewer's
            own and those shared with it), or project ids (shared with them).
        @param filters: filter name (L{FILTERS}) to values, EC2 wildcards
            allowed.
        @return: the images, oldest first (ties by id).
        @raise InvalidAMIIDMalformed: an id that is not an image id.
        @raise InvalidParameterValue: an unknown filter or a non-str value.
        """
        wanted = list(dict.fromkeys(check_image_id(i) for i in _strs("ImageId", image_ids)))
        owner_list = _strs("Owner", owners)
        executors = _strs("ExecutableBy", executable_by)
        compiled = _compile_filters(filters)
        if wanted:
            members = [keys.image(i) for i in wanted]
        else:
            members = sorted(await self._store.smembers(keys.images()))
        values = await self._store.mget(*members) if members else []
        visible = []
        for i, raw in enumerate(values):
            image = None if raw is None else Image.from_json(raw)
            if image is None or not permissions.can_launch(image, viewer_project_id, is_admin):
                if wanted:
                    raise InvalidAMIIDNotFound(
                        f"The image id '[{wanted[i]}]' does not exist")
                continue
            visible.append(image)
        found = [
            image for image in visible
            if (not owner_list or _owned_by(image, owner_list, viewer_project_id))
            and (not executors or _executable_by(image, executors, viewer_project_id))
            and _matches(image, compiled)]
        return sorted(found, key=lambda i: (i.created_at, i.image_id))
