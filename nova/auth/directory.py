"""
The two directories the LDAP driver can run on.

L{EmbeddedDirectory} is an ldaptor in-memory tree loaded from, and written
back to, one LDIF file under the state directory: the single-machine default,
needing no server. Its entries are ldaptor's own in-memory entries whose
C{addChild}, C{commit}, C{delete} and C{move} also persist the whole tree, so
the driver, which calls those anyway (a remote server needs them), never learns
which directory it has.

L{connect_remote} opens an OpenLDAP (or any LDAP v3) server over ldaptor's
client. L{open_directory} picks one from the C{[ldap]} configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

from ldaptor import attributeset, inmemory
from ldaptor.protocols.ldap import ldaperrors, ldifprotocol
from ldaptor.protocols.ldap.distinguishedname import DistinguishedName
from twisted.internet import defer, threads
from twisted.python.failure import Failure

from nova.auth.errors import DirectoryError, DirectoryUnavailable
from nova.auth.ldaplayout import text
from nova.auth.remote import RemoteDirectory, connect_remote
from nova.utils.files import write_atomically

__all__ = ["EmbeddedDirectory", "RemoteDirectory", "connect_remote", "open_directory",
           "thread_runner", "inline_runner"]

T = TypeVar("T")
#: runs a blocking function somewhere it may block; returns its result
BlockingRunner = Callable[[Callable[[], T]], Awaitable[T]]


def thread_runner(reactor: Any) -> BlockingRunner:
    """@return: a runner that calls blocking functions in C{reactor}'s thread pool."""

    async def run(fn: Callable[[], T]) -> T:
        return await threads.deferToThreadPool(reactor, reactor.getThreadPool(), fn)

    return run


async def inline_runner(fn: Callable[[], T]) -> T:
    """Call C{fn} right here: for command-line tools and unit tests, never a service."""
    return fn()


def _as_text(value: Any) -> Any:
    """@return: C{value} as text; bytes that are not UTF-8 (binary values) stay bytes."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


class _TextValues(attributeset.LDAPAttributeSet):
    """
    An attribute's values, held as text whatever they arrive as (ldaptor's
    LDAP server hands over bytes, nova's driver text), so that no value is
    stored twice and values always sort.
    """

    def __init__(self, key: Any, values: Any = ()) -> None:
        super().__init__(text(key), [_as_text(v) for v in values])

    def add(self, value: Any) -> None:
        set.add(self, _as_text(value))

    def update(self, *others: Any) -> None:
        for other in others:
            for value in other:
                self.add(value)

    def remove(self, value: Any) -> None:
        set.remove(self, _as_text(value))

    def discard(self, value: Any) -> None:
        set.discard(self, _as_text(value))

    def __contains__(self, value: object) -> bool:
        return set.__contains__(self, _as_text(value))


class _PersistentEntry(inmemory.ReadOnlyInMemoryLDAPEntry):
    """
    An in-memory entry whose changes are written to its directory's file.
    Attribute names and values are kept as text, one spelling each.
    """

    _directory: "EmbeddedDirectory | None" = None

    def __init__(self, dn: Any, attributes: Any = None) -> None:
        super().__init__(dn, _normalised(attributes or {}))

    def buildAttributeSet(self, key: Any, values: Any) -> _TextValues:  # noqa: N802
        return _TextValues(key, values)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(text(key), value)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(text(key))

    def addChild(self, rdn: Any, attributes: Any) -> defer.Deferred:  # noqa: N802
        try:
            child = super().addChild(rdn, attributes)
        except Exception:
            return defer.fail()
        child._directory = self._directory
        return self._persist(child)

    def delete(self) -> defer.Deferred:
        return super().delete().addCallback(lambda _: self._persist(self))

    def commit(self) -> defer.Deferred:
        return self._persist(self)

    def move(self, newDN: Any) -> defer.Deferred:  # noqa: N803
        return super().move(newDN).addCallback(lambda _: self._persist(self))

    def _persist(self, result: Any) -> defer.Deferred:
        if self._directory is None:
            return defer.succeed(result)
        d = defer.Deferred.fromCoroutine(self._directory.save())
        return d.addCallback(lambda _: result)


def _normalised(attributes: Any) -> dict[str, list[Any]]:
    """Attribute names (and values) as text, names that differ only in case merged."""
    result: dict[str, list[Any]] = {}
    for key, vals in attributes.items():
        name = text(key)
        bucket = next((k for k in result if k.lower() == name.lower()), name)
        result.setdefault(bucket, []).extend(_as_text(v) for v in vals)
    return result


class _Collector(ldifprotocol.LDIF):
    MAX_LENGTH = 1 << 24  # there is no transport to drop when a line is long

    def __init__(self) -> None:
        self.entries: list[Any] = []

    def gotEntry(self, obj: Any) -> None:  # noqa: N802
        self.entries.append(obj)


def _base_attributes(base: DistinguishedName) -> dict[str, list[str]]:
    """@return: attributes a base entry named C{base} can be created with."""
    pair = base.split()[0].split()[0]
    kind, value = pair.attributeType.lower(), pair.value
    if kind == "dc":
        return {"objectClass": ["top", "dcObject", "organization"], "dc": [value], "o": [value]}
    if kind == "o":
        return {"objectClass": ["top", "organization"], "o": [value]}
    if kind == "ou":
        return {"objectClass": ["top", "organizationalUnit"], "ou": [value]}
    return {"objectClass": ["top", "extensibleObject"], pair.attributeType: [value]}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


class EmbeddedDirectory:
    """
    An ldaptor in-memory tree persisted as one LDIF file.

    Every change (through the entries' C{addChild}, C{commit}, C{delete},
    C{move}) writes the whole tree to a temporary file, fsyncs it and renames it
    over the old one, so the file is never half-written. Writes are serialised
    and coalesced: a change waits for a write that includes it.

    @ivar base: the root entry, an C{IConnectedLDAPEntry}: hand it to
        L{nova.auth.ldapdriver.LdapDriver}.
    @ivar path: the LDIF file.
    """

    def __init__(self, path: Path, root: _PersistentEntry, run_blocking: BlockingRunner) -> None:
        self.path = path
        self.base = root
        self._run = run_blocking
        self._lock = defer.DeferredLock()
        self._changes = 0  # changes made to the tree
        self._saved = 0  # changes included in the file

    @classmethod
    async def open(cls, path: Path, base_dn: str,
                   run_blocking: BlockingRunner = inline_runner) -> "EmbeddedDirectory":
        """
        Load the directory at C{path}, or create it holding only C{base_dn}.

        @param run_blocking: where file I/O runs: L{thread_runner} in services.
        @raise DirectoryError: the file is not valid LDIF, or its root is not C{base_dn}.
        """
        base = DistinguishedName(base_dn)
        data = await run_blocking(lambda: _read(path))
        if data is None:
            root = _PersistentEntry(base, _base_attributes(base))
            directory = cls(path, root, run_blocking)
            root._directory = directory
            await directory.save()
            return directory
        root = _load(path, data, base)
        directory = cls(path, root, run_blocking)
        for entry in _walk(root):
            entry._directory = directory
        return directory

    def to_ldif(self) -> bytes:
        """@return: the whole tree as LDIF, parents before children."""
        return b"version: 1\n\n" + b"".join(entry.toWire() for entry in _walk(self.base))

    async def save(self) -> None:
        """
        Write the tree to the file; return once a write made after this call
        started is on disk.

        @raise DirectoryUnavailable: the file could not be written.
        """
        self._changes += 1
        wanted = self._changes
        async with self._lock:
            if self._saved >= wanted:
                return  # a later write already covered this change
            included = self._changes
            data = self.to_ldif()  # a snapshot, taken on the reactor thread
            try:
                await self._run(lambda: write_atomically(self.path, data, mode=0o600))
            except OSError as e:
                raise DirectoryUnavailable(f"Cannot write {self.path}: {e}") from e
            self._saved = included

    async def close(self) -> None:
        """Wait for pending writes."""
        async with self._lock:
            pass


def _walk(root: Any) -> list[Any]:
    found = [root]
    children = sorted(root._children.values(), key=lambda e: e.dn.getText().lower())
    for child in children:
        found.extend(_walk(child))
    return found


def _load(path: Path, data: bytes, base: DistinguishedName) -> _PersistentEntry:
    collector = _Collector()
    try:
        collector.dataReceived(data if data.endswith(b"\n") else data + b"\n")
        collector.connectionLost(Failure(ConnectionError("end of file")))
    except Exception as e:
        # the file may be damaged in any way; say so rather than crash
        raise DirectoryError(f"{path} is not valid LDIF: {e}") from e
    if not collector.entries:
        raise DirectoryError(f"{path} holds no entries")
    first, rest = collector.entries[0], collector.entries[1:]
    if first.dn != base:
        raise DirectoryError(
            f"{path} holds {first.dn.getText()}, not the configured base {base.getText()}")
    root = _PersistentEntry(first.dn, _normalised(first))
    nodes = {root.dn.getText().lower(): root}
    for entry in rest:
        parent = nodes.get(entry.dn.up().getText().lower())
        if parent is None:
            raise DirectoryError(f"{path}: {entry.dn.getText()} comes before its parent")
        try:
            # the plain in-memory addChild: loading must not write the file back
            child = inmemory.ReadOnlyInMemoryLDAPEntry.addChild(
                parent, entry.dn.split()[0], _normalised(entry))
        except ldaperrors.LDAPEntryAlreadyExists:
            raise DirectoryError(f"{path}: {entry.dn.getText()} appears twice") from None
        nodes[child.dn.getText().lower()] = child
    return root


async def open_directory(reactor: Any, ldap: Any, state_dir: Path) -> Any:
    """
    Open the directory the C{[ldap]} configuration names.

    @param ldap: a L{nova.config.LdapConfig}: an empty C{url} means the
        embedded directory in C{state_dir/directory.ldif}.
    @return: an L{EmbeddedDirectory} or a L{RemoteDirectory}; both have
        C{base} (for L{nova.auth.ldapdriver.LdapDriver}) and C{close()}.
    """
    if not ldap.url:
        return await EmbeddedDirectory.open(state_dir / "directory.ldif", ldap.base_dn,
                                            thread_runner(reactor))
    return await connect_remote(reactor, ldap.url, ldap.bind_dn, ldap.bind_password,
                                ldap.base_dn)
