"""
A small asynchronous S3 client for nova's own services: the compute node
fetches images with it, the cloud controller reads bundle manifests and parts.

It speaks path-style S3 over C{twisted.web.client.Agent} (the reactor is
injected), signs every request with Signature Version 4
(L{nova.auth.signer.sign_v4_headers}, service C{s3}), and streams bodies:
downloads go to a temporary file beside the target and are renamed into place
once complete and checked (MD5 against the ETag for a plain object), uploads
are read from their file in pieces. Only L{ObjectStoreClient.get_object_bytes}
keeps a body in memory, up to a limit the caller gives (and
L{ObjectStoreClient.upload_part} sends a multipart upload's part that the
caller holds: volume snapshots, L{nova.volume.snapshots}).

Every error is a L{nova.objectstore.errors.S3Error}: the class of the S3 code
the store answered with when there is one (C{NoSuchKey}...), else
L{RemoteS3Error} carrying the code; L{ObjectStoreUnavailable} when the store
cannot be reached or stops answering; L{DownloadCorrupted} when a body does
not match its ETag.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import os
import tempfile
import xml.etree.ElementTree as ElementTree
from base64 import b64encode
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from xml.sax.saxutils import escape

import attr
from twisted.internet import defer, error as net_error, task, threads
from twisted.web import client as web_client, http_headers
from twisted.web.iweb import IBodyProducer

from nova.auth.signer import EMPTY_SHA256, aws_quote, sign_v4_headers
from nova.objectstore import errors
from nova.objectstore.client_transfer import (Collector, Discard, DownloadCorrupted, FileSink,
                                              ObjectStoreUnavailable, RemoteS3Error,
                                              WatchedBody, Watchdog, fsync_and_rename,
                                              hash_file)

__all__ = ["BucketListing", "DownloadCorrupted", "ObjectHead", "ObjectStoreClient",
           "ObjectStoreUnavailable", "ObjectSummary", "RemoteS3Error", "error_from_response"]

T = TypeVar("T")
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
#: how much of an error body is read (S3 error documents are small)
_ERROR_BODY_LIMIT = 64 * 1024
_CHUNK = 256 * 1024


_BY_CODE: dict[str, type[errors.S3Error]] = {
    cls.code: cls for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.S3Error) and cls is not errors.S3Error}


def error_from_response(status: int, body: bytes) -> errors.S3Error:
    """
    @param status: the HTTP status of an error response.
    @param body: its body (S3 error XML, or anything else).
    @return: the matching exception, with C{status}, C{resource} and
        C{request_id} set from the response.
    """
    code, message, resource, request_id = f"HTTP{status}", "", "", ""
    try:
        root = ElementTree.fromstring(body)
        code = root.findtext("Code") or code
        message = root.findtext("Message") or ""
        resource = root.findtext("Resource") or ""
        request_id = root.findtext("RequestId") or ""
    except ElementTree.ParseError:
        message = body[:200].decode("utf-8", "replace")
    cls = _BY_CODE.get(code)
    exc = cls(message) if cls is not None else RemoteS3Error(message or code, code=code)
    exc.status = status
    exc.resource = resource  # type: ignore[attr-defined]
    exc.request_id = request_id  # type: ignore[attr-defined]
    return exc


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ObjectHead:
    """What HEAD (or a GET's headers) says of an object; C{etag} without quotes."""

    key: str
    size: int
    etag: str
    last_modified: float | None
    content_type: str
    metadata: dict[str, str] = attr.Factory(dict)


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class ObjectSummary:
    """One key of a listing; C{last_modified} as S3 writes it (ISO 8601)."""

    key: str
    size: int
    etag: str
    last_modified: str


@attr.s(frozen=True, auto_attribs=True, kw_only=True)
class BucketListing:
    """A whole listing: every page joined."""

    objects: tuple[ObjectSummary, ...]
    common_prefixes: tuple[str, ...]


def _header(response: Any, name: str, default: str = "") -> str:
    values = response.headers.getRawHeaders(name.encode())
    return values[0].decode("latin-1") if values else default


def _http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _head_of(key: str, response: Any) -> ObjectHead:
    metadata = {}
    for name, values in response.headers.getAllRawHeaders():
        lower = name.decode("latin-1").lower()
        if lower.startswith("x-amz-meta-"):
            metadata[lower[len("x-amz-meta-"):]] = values[0].decode("utf-8", "replace")
    # a GET's Content-Length is consumed by Agent (response.length); a HEAD's is not
    length = _header(response, "content-length")
    size = int(length) if length else response.length
    return ObjectHead(key=key, size=size if isinstance(size, int) else 0,
                      etag=_header(response, "etag").strip('"'),
                      last_modified=_http_date(_header(response, "last-modified")),
                      content_type=_header(response, "content-type", "binary/octet-stream"),
                      metadata=metadata)


class ObjectStoreClient:
    """
    An S3 client signed with one set of credentials (SigV4, path style).

    @ivar endpoint: C{http://host:port} of the object store.
    """

    def __init__(self, reactor: Any, endpoint: str, access_key: str, secret_key: str,
                 region: str = "nova", *, agent: Any = None,
                 run_in_thread: Callable[..., Awaitable[Any]] | None = None,
                 timeout: float = 60.0) -> None:
        """
        @param reactor: provides C{IReactorTCP} and C{IReactorTime}.
        @param endpoint: the store's URL, e.g. C{http://127.0.0.1:3333}.
        @param access_key: the access key as clients send it (C{access:project}).
        @param secret_key: its secret.
        @param region: the region signed into the SigV4 scope.
        @param agent: an C{IAgent} (default: an L{web_client.Agent} with a
            persistent connection pool on C{reactor}).
        @param run_in_thread: runs a blocking function (file hashing, fsync)
            off the reactor thread; default: the reactor's thread pool.
        @param timeout: seconds to wait for a response's headers, and the
            longest silence allowed while a body streams.
        """
        self.endpoint = endpoint.rstrip("/")
        self._reactor = reactor
        self._access, self._secret, self._region = access_key, secret_key, region
        self._pool = None
        if agent is None:
            self._pool = web_client.HTTPConnectionPool(reactor, persistent=True)
            self._pool.maxPersistentPerHost = 8
            agent = web_client.Agent(reactor, pool=self._pool, connectTimeout=timeout)
        self._agent = agent
        self._run_in_thread = run_in_thread
        self._timeout = timeout
        self._host = self.endpoint.split("://", 1)[-1].split("/", 1)[0]
        self._cooperator = task.Cooperator(scheduler=lambda work: reactor.callLater(0, work))

    async def close(self) -> None:
        """Close idle persistent connections and stop the upload cooperator."""
        self._cooperator.stop()
        if self._pool is not None:
            await self._pool.closeCachedConnections()

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._run_in_thread is not None:
            return await self._run_in_thread(fn, *args)
        return await threads.deferToThreadPool(self._reactor, self._reactor.getThreadPool(),
                                               fn, *args)

    def path_of(self, bucket: str, key: str | None = None) -> str:
        """@return: the percent-encoded path of a bucket or an object."""
        path = "/" + aws_quote(bucket)
        return path if key is None else path + "/" + aws_quote(key, safe="/")

    async def request(self, method: str, bucket: str, key: str | None = None,
                      query: list[tuple[str, str]] | None = None,
                      headers: dict[str, str] | None = None,
                      body: IBodyProducer | None = None,
                      payload_sha256: str = EMPTY_SHA256) -> Any:
        """
        Send one signed request and return its response once the headers are in.

        @param payload_sha256: the hex SHA-256 of C{body} (or C{UNSIGNED-PAYLOAD}).
        @return: the C{IResponse}, whatever its status.
        @raise ObjectStoreUnavailable: no connection, or no answer in time.
        """
        path = self.path_of(bucket, key) if bucket else "/"
        query = query or []
        headers = dict(headers or {})
        signed = sign_v4_headers(method, self._host, path, query, headers, self._access,
                                 self._secret, self._region, "s3",
                                 payload_sha256=payload_sha256, now=self._reactor.seconds())
        raw = http_headers.Headers()
        raw.setRawHeaders(b"host", [self._host.encode()])
        for name, value in {**headers, **signed}.items():
            raw.setRawHeaders(name.encode("latin-1"), [value.encode("utf-8")])
        url = self.endpoint + path
        if query:
            url += "?" + "&".join(f"{aws_quote(n)}={aws_quote(v)}" for n, v in query)
        # one idle timeout for the whole exchange: an upload's bytes push it back
        watchdog = Watchdog(self._reactor, self._timeout, lambda: d.cancel())
        if body is not None:
            body = WatchedBody(body, watchdog.touch)
        d = self._agent.request(method.encode(), url.encode("ascii"), raw, body)
        try:
            return await d
        except (defer.CancelledError, net_error.ConnectError, net_error.ConnectionLost,
                web_client.ResponseNeverReceived, web_client.RequestTransmissionFailed,
                web_client.ResponseFailed) as e:
            why = f"nothing moved for {self._timeout} s" if watchdog.expired else str(e)
            raise ObjectStoreUnavailable(f"{method} {url}: {why}") from None
        finally:
            watchdog.stop()

    async def _read(self, response: Any, limit: int) -> bytes:
        done: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(Collector(limit, done))
        done.addTimeout(self._timeout, self._reactor)
        try:
            return await done
        except defer.TimeoutError:
            raise ObjectStoreUnavailable("the body stopped arriving") from None

    async def _check(self, response: Any, ok: tuple[int, ...] = (200,)) -> None:
        if response.code in ok:
            return
        try:
            body = await self._read(response, _ERROR_BODY_LIMIT)
        except errors.EntityTooLarge:
            body = b""
        raise error_from_response(response.code, body)

    async def _call(self, method: str, bucket: str, key: str | None = None,
                    ok: tuple[int, ...] = (200,), **kwargs: Any) -> bytes:
        response = await self.request(method, bucket, key, **kwargs)
        await self._check(response, ok)
        return await self._read(response, 16 * 1024 * 1024)

    async def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        """
        @param acl: a canned ACL (C{x-amz-acl}); default private.
        @raise errors.BucketAlreadyExists: another project owns that name.
        @raise errors.BucketAlreadyOwnedByYou: it is already ours.
        """
        await self._call("PUT", bucket, headers={"x-amz-acl": acl} if acl else {})

    async def delete_bucket(self, bucket: str) -> None:
        """@raise errors.BucketNotEmpty: it still holds objects."""
        await self._call("DELETE", bucket, ok=(204, 200))

    async def head_object(self, bucket: str, key: str) -> ObjectHead:
        """@raise errors.NoSuchKey: no such object (HEAD has no body: the code is inferred)."""
        response = await self.request("HEAD", bucket, key)
        if response.code != 200:
            # a HEAD answer has no body: the status is all there is
            cls = {404: errors.NoSuchKey, 403: errors.AccessDenied,
                   412: errors.PreconditionFailed}.get(response.code)
            exc = cls(f"{bucket}/{key}") if cls else RemoteS3Error(
                f"{bucket}/{key}", code=f"HTTP{response.code}")
            exc.status = response.code
            raise exc
        return _head_of(key, response)

    async def delete_object(self, bucket: str, key: str) -> None:
        """Delete a key; a missing key is not an error (as in S3)."""
        await self._call("DELETE", bucket, key, ok=(204, 200))

    async def get_object_bytes(self, bucket: str, key: str, max_size: int) -> bytes:
        """
        Fetch a small object (a manifest) into memory.

        @raise errors.EntityTooLarge: the object is over C{max_size} bytes (its
            body is not read).
        """
        response = await self.request("GET", bucket, key)
        await self._check(response)
        if isinstance(response.length, int) and response.length > max_size:
            response.deliverBody(Discard(self._reactor))
            raise errors.EntityTooLarge(f"{bucket}/{key} is larger than {max_size} bytes")
        return await self._read(response, max_size)

    async def get_object_range(self, bucket: str, key: str, first: int, length: int,
                               expected_etag: str | None = None) -> bytes:
        """
        Fetch C{length} bytes from offset C{first} (a ranged GET): fewer when
        the object ends sooner, none when it ends before C{first}.

        @param expected_etag: the ETag (no quotes) the object must have (C{If-Match}).
        @raise errors.PreconditionFailed: the object's ETag is not C{expected_etag}.
        """
        if first < 0 or length < 1:
            raise ValueError(f"bad range: {length} bytes at {first}")
        headers = {"Range": f"bytes={first}-{first + length - 1}"}
        if expected_etag:
            headers["If-Match"] = f'"{expected_etag}"'
        response = await self.request("GET", bucket, key, headers=headers)
        if response.code == 416:
            await self._read(response, _ERROR_BODY_LIMIT)
            return b""
        await self._check(response, ok=(200, 206))
        if response.code == 200 and not (isinstance(response.length, int)
                                         and response.length <= length):
            # the range was ignored and the whole (large) object comes: do not keep it
            response.deliverBody(Discard(self._reactor))
            raise errors.InvalidRange(f"{bucket}/{key}: the store ignored the Range header")
        return (await self._read(response, length))[:length]

    async def get_object_to_file(self, bucket: str, key: str, path: str | os.PathLike[str],
                                 expected_etag: str | None = None) -> ObjectHead:
        """
        Download an object to C{path}: streamed to a temporary file in the
        same directory, checked, fsync'd and renamed into place. On any error
        nothing is left at C{path} (an older file there stays untouched).

        @param expected_etag: the ETag (no quotes) the object must have; sent
            as C{If-Match} so that another version is refused by the store.
        @return: the object's headers.
        @raise errors.PreconditionFailed: the object's ETag is not C{expected_etag}.
        @raise DownloadCorrupted: the body's MD5 or length is not what the
            headers announced.
        """
        target = Path(path)
        headers = {"If-Match": f'"{expected_etag}"'} if expected_etag else {}
        response = await self.request("GET", bucket, key, headers=headers)
        await self._check(response)
        head = _head_of(key, response)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        fileobj = os.fdopen(fd, "wb", buffering=_CHUNK)
        try:
            done: defer.Deferred[str] = defer.Deferred()
            sink = FileSink(fileobj, done, self._reactor, self._timeout)
            response.deliverBody(sink)
            md5 = await done
            if sink.size != head.size:
                raise DownloadCorrupted(f"{bucket}/{key}: {sink.size} bytes, not {head.size}")
            if "-" not in head.etag and md5 != head.etag:
                raise DownloadCorrupted(f"{bucket}/{key}: MD5 {md5} is not the ETag {head.etag}")
            await self._in_thread(fsync_and_rename, fileobj, temp, str(target))
        except Exception:
            fileobj.close()
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        return head

    async def put_object_from_file(self, bucket: str, key: str, path: str | os.PathLike[str],
                                   content_type: str = "binary/octet-stream",
                                   metadata: dict[str, str] | None = None) -> str:
        """
        Upload a file as one object (single PUT: at most the store's limit, 5 GiB).
        The file is hashed first (in a thread) so that the store can check
        both Content-MD5 and the signed SHA-256.

        @return: the new object's ETag (no quotes).
        @raise errors.BadDigest: the file changed while it was sent (the store
            refuses it, or stores something else than what was hashed).
        """
        _size, md5_hex, md5_b64, sha256 = await self._in_thread(hash_file, str(path))
        # Content-Length comes from the producer (Agent writes it)
        headers = {"Content-Type": content_type, "Content-MD5": md5_b64}
        for name, value in (metadata or {}).items():
            headers[f"x-amz-meta-{name}"] = value
        with open(path, "rb") as f:
            producer = web_client.FileBodyProducer(f, self._cooperator, readSize=_CHUNK)
            response = await self.request("PUT", bucket, key, headers=headers, body=producer,
                                          payload_sha256=sha256)
            await self._check(response)
        etag = _header(response, "etag").strip('"')
        await self._read(response, _ERROR_BODY_LIMIT)
        if etag != md5_hex:
            raise errors.BadDigest(f"{bucket}/{key}: stored ETag {etag}, sent MD5 {md5_hex}")
        return etag

    async def list_objects(self, bucket: str, prefix: str = "", delimiter: str = "",
                           page_size: int = 1000) -> BucketListing:
        """
        List a bucket with ListObjectsV2, following every continuation token.

        @param page_size: keys asked for per request (S3's max-keys).
        @raise errors.NoSuchBucket: no such bucket.
        """
        objects: list[ObjectSummary] = []
        prefixes: list[str] = []
        token = None
        while True:
            query = [("list-type", "2"), ("max-keys", str(page_size)), ("prefix", prefix)]
            if delimiter:
                query.append(("delimiter", delimiter))
            if token:
                query.append(("continuation-token", token))
            root = ElementTree.fromstring(await self._call("GET", bucket, query=query))
            for item in root.iter(_NS + "Contents"):
                objects.append(ObjectSummary(
                    key=item.findtext(_NS + "Key") or "",
                    size=int(item.findtext(_NS + "Size") or 0),
                    etag=(item.findtext(_NS + "ETag") or "").strip('"'),
                    last_modified=item.findtext(_NS + "LastModified") or ""))
            prefixes.extend(p.findtext(_NS + "Prefix") or ""
                            for p in root.iter(_NS + "CommonPrefixes"))
            token = root.findtext(_NS + "NextContinuationToken")
            if root.findtext(_NS + "IsTruncated") != "true" or not token:
                return BucketListing(objects=tuple(objects), common_prefixes=tuple(prefixes))

    async def create_multipart_upload(self, bucket: str, key: str,
                                      content_type: str = "binary/octet-stream",
                                      metadata: dict[str, str] | None = None) -> str:
        """
        Start a multipart upload (CreateMultipartUpload): the object appears
        only once L{complete_multipart_upload} joins its parts.

        @return: the upload id.
        @raise errors.NoSuchBucket: no such bucket.
        """
        headers = {"Content-Type": content_type}
        for name, value in (metadata or {}).items():
            headers[f"x-amz-meta-{name}"] = value
        body = await self._call("POST", bucket, key, query=[("uploads", "")], headers=headers)
        upload_id = ElementTree.fromstring(body).findtext(_NS + "UploadId")
        if not upload_id:
            raise RemoteS3Error(f"{bucket}/{key}: no UploadId in the answer", code="HTTP200")
        return upload_id

    async def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int,
                          data: bytes) -> str:
        """
        Send one part (UploadPart) from memory, with its Content-MD5 and
        signed SHA-256 (computed in a thread). Every part but the last must be
        at least 5 MiB, which the store checks only on completion.

        @param part_number: 1 to 10,000.
        @return: the part's ETag (no quotes), to give to L{complete_multipart_upload}.
        @raise errors.NoSuchUpload: no such upload (aborted, or completed).
        @raise errors.BadDigest: the store kept something else than what was sent.
        """
        def digests(body: bytes) -> tuple[str, str, str]:
            md5 = hashlib.md5(body)
            return md5.hexdigest(), b64encode(md5.digest()).decode(), \
                hashlib.sha256(body).hexdigest()

        md5_hex, md5_b64, sha256 = await self._in_thread(digests, data)
        producer = web_client.FileBodyProducer(io.BytesIO(data), self._cooperator,
                                               readSize=_CHUNK)
        response = await self.request("PUT", bucket, key,
                                      query=[("partNumber", str(part_number)),
                                             ("uploadId", upload_id)],
                                      headers={"Content-MD5": md5_b64}, body=producer,
                                      payload_sha256=sha256)
        await self._check(response)
        etag = _header(response, "etag").strip('"')
        await self._read(response, _ERROR_BODY_LIMIT)
        if etag != md5_hex:
            raise errors.BadDigest(f"{bucket}/{key} part {part_number}: stored ETag {etag}, "
                                   f"sent MD5 {md5_hex}")
        return etag

    async def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                        parts: Sequence[tuple[int, str]]) -> str:
        """
        Join the parts into the object (CompleteMultipartUpload).

        @param parts: C{(part number, etag)} pairs in ascending order.
        @return: the object's ETag (no quotes; C{md5-of-part-md5s-N}).
        @raise errors.InvalidPart: a part is missing or has another ETag.
        @raise errors.EntityTooSmall: a part but the last is under 5 MiB.
        """
        xml = ["<CompleteMultipartUpload>"]
        for number, etag in parts:
            xml.append(f'<Part><PartNumber>{int(number)}</PartNumber><ETag>"{escape(etag)}"'
                       "</ETag></Part>")
        xml.append("</CompleteMultipartUpload>")
        document = "".join(xml).encode()
        response = await self.request(
            "POST", bucket, key, query=[("uploadId", upload_id)],
            headers={"Content-Type": "application/xml"},
            body=web_client.FileBodyProducer(io.BytesIO(document), self._cooperator),
            payload_sha256=hashlib.sha256(document).hexdigest())
        await self._check(response)
        body = await self._read(response, _ERROR_BODY_LIMIT)
        root = ElementTree.fromstring(body)
        if root.tag.rpartition("}")[2] == "Error":
            # S3 may fail a completion after its 200 went out: the error is in the body
            raise error_from_response(500, body)
        return (root.findtext(_NS + "ETag") or "").strip('"')

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """
        Abort a multipart upload: its parts are deleted; an upload that no
        longer exists (already aborted or completed) is not an error.
        """
        try:
            await self._call("DELETE", bucket, key, query=[("uploadId", upload_id)],
                             ok=(204, 200))
        except errors.NoSuchUpload:
            pass
