"""EC2 key pair actions: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Awaitable, Callable

from nova import crypto
from nova.api.ec2.params import Params, matches
from nova.context import RequestContext
from nova.datastore.errors import KeyPairDuplicate, KeyPairNotFound
from nova.datastore.records import KeyPair, new_key_pair_id
from nova.datastore.repositories import KeyPairRepository
from nova.api.ec2.xmlrender import format_timestamp
from nova.exception import InvalidParameterValue, MissingParameter, NotFound

#: AWS allows up to 255 ASCII characters in a key name.
MAX_KEY_NAME = 255
#: an OpenSSH public key line is a few hundred bytes; 16 KiB is generous.
MAX_PUBLIC_KEY = 16 * 1024

KEY_FILTERS = ("key-name", "fingerprint", "key-pair-id", "key-type")

#: runs a blocking function off the reactor thread: C{(f, *args) -> awaitable}
ThreadRunner = Callable[..., Awaitable[Any]]


def validate_key_name(name: str) -> str:
    """
    @return: C{name} when it is a valid key pair name.
    @raise InvalidParameterValue: empty, too long, or not printable ASCII.
    """
    if not name or len(name) > MAX_KEY_NAME or not all(32 <= ord(c) < 127 for c in name):
        raise InvalidParameterValue(
            f"Value ({name!r}) for parameter KeyName is invalid. "
            "Key names are 1 to 255 printable ASCII characters.")
    return name


def _describe(record: KeyPair) -> dict[str, Any]:
    return {
        "keyPairId": record.key_pair_id,
        "keyName": record.name,
        "keyFingerprint": record.fingerprint,
        "keyType": record.key_type,
        "createTime": format_timestamp(record.created_at),
    }


def _visible(context: RequestContext, record: KeyPair) -> bool:
    # 2010 nova hid the cloudpipe keys (named *-vpn) from everyone but admins.
    return context.is_admin or not record.name.endswith("-vpn")


class KeyPairController:
    """
    Key pairs belong to a project (the EC2 account); every member sees them.

    @param repository: where key pairs are stored.
    @param run_in_thread: runs RSA key generation off the reactor thread.
    @param clock: gives C{seconds()} for creation times.
    """

    def __init__(self, repository: KeyPairRepository, run_in_thread: ThreadRunner,
                 clock: Any) -> None:
        self._keys = repository
        self._run_in_thread = run_in_thread
        self._clock = clock

    async def create_key_pair(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """CreateKeyPair: the server makes the key and returns its private half once."""
        name = validate_key_name(params.require("KeyName"))
        key_type = params.get("KeyType", "rsa")
        if key_type not in ("rsa", "ed25519"):
            raise InvalidParameterValue(f"Value ({key_type}) for parameter KeyType is invalid.")
        key_format = params.get("KeyFormat", "pem")
        if key_format != "pem":
            raise InvalidParameterValue(
                f"Value ({key_format}) for parameter KeyFormat is invalid. Only pem is supported.")
        # Fail before spending CPU on a key whose name is taken; create() still
        # decides atomically, so a race between two creators has one winner.
        if await self._exists(context.project_id, name):
            raise _duplicate(name)
        private_pem, public, fingerprint = await self._run_in_thread(
            crypto.generate_key_pair, key_type)
        record = KeyPair(project_id=context.project_id, name=name, user_id=context.user_id,
                         fingerprint=fingerprint, public_key=public, key_type=key_type,
                         created_at=self._clock.seconds(), key_pair_id=new_key_pair_id())
        await self._keys.create(record)
        return {"keyName": name, "keyFingerprint": fingerprint, "keyMaterial": private_pem,
                "keyPairId": record.key_pair_id}

    async def import_key_pair(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """ImportKeyPair: store a public key the user made."""
        name = validate_key_name(params.require("KeyName"))
        material = params.require("PublicKeyMaterial")
        if len(material) > MAX_PUBLIC_KEY * 2:
            raise InvalidParameterValue("PublicKeyMaterial is too large", code="InvalidKey.Format")
        key_type, public, fingerprint = crypto.parse_public_key(_decode_material(material))
        record = KeyPair(project_id=context.project_id, name=name, user_id=context.user_id,
                         fingerprint=fingerprint, public_key=public, key_type=key_type,
                         created_at=self._clock.seconds(), key_pair_id=new_key_pair_id())
        await self._keys.create(record)
        return {"keyName": name, "keyFingerprint": fingerprint, "keyPairId": record.key_pair_id}

    async def describe_key_pairs(self, context: RequestContext,
                                 params: Params) -> dict[str, Any]:
        """DescribeKeyPairs, with KeyName.N, KeyPairId.N and filters."""
        names = params.get_list("KeyName")
        ids = params.get_list("KeyPairId")
        filters = params.get_filters(KEY_FILTERS)
        records = [r for r in await self._keys.list(context.project_id) if _visible(context, r)]
        by_name = {r.name: r for r in records}
        by_id = {r.key_pair_id: r for r in records}
        for name in names:
            if name not in by_name:
                raise KeyPairNotFound(f"The key pair '{name}' does not exist")
        for key_id in ids:
            if key_id not in by_id:
                raise KeyPairNotFound(f"The key pair ID '{key_id}' does not exist")
        selected = [
            r for r in records
            if (not names or r.name in names) and (not ids or r.key_pair_id in ids)
            and matches(filters, {"key-name": r.name, "fingerprint": r.fingerprint,
                                  "key-pair-id": r.key_pair_id, "key-type": r.key_type})
        ]
        return {"keySet": [_describe(r) for r in selected]}

    async def delete_key_pair(self, context: RequestContext, params: Params) -> dict[str, Any]:
        """DeleteKeyPair by KeyName or KeyPairId; deleting a missing key is not an error."""
        name = params.get("KeyName")
        key_id = params.get("KeyPairId")
        if not name and not key_id:
            raise MissingParameter("The request must contain the parameter KeyName or KeyPairId")
        if key_id and not name:
            for record in await self._keys.list(context.project_id):
                if record.key_pair_id == key_id:
                    name = record.name
                    break
            else:
                return {"return": True}
        await self._keys.delete(context.project_id, validate_key_name(name))
        return {"return": True}

    async def _exists(self, project_id: str | None, name: str) -> bool:
        try:
            await self._keys.get(project_id, name)
        except NotFound:
            return False
        return True


def _duplicate(name: str) -> KeyPairDuplicate:
    return KeyPairDuplicate(f"The keypair '{name}' already exists.")


def _decode_material(material: str) -> bytes:
    # Clients send the key base64-encoded (boto, botocore); euca2ools and old
    # scripts sometimes sent the OpenSSH line itself. Accept both.
    stripped = material.strip()
    if stripped.startswith(("ssh-", "ecdsa-")):
        return stripped.encode("ascii", "replace")
    try:
        return base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("Key is not in valid OpenSSH public key format",
                                    code="InvalidKey.Format") from None
