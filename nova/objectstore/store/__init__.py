"""
The object store's storage: bodies on the local filesystem, bucket records
and the listing index in the datastore. See L{store.FilesystemObjectStore}.

Modules, one concern each:

 - L{names}: bucket, key, upload id and part number rules;
 - L{layout}: where files go, and the rename/unlink/fsync helpers;
 - L{objectfile}: the on-disk format (header, then body, in one file);
 - L{writer}, L{reader}: streaming a body in; reading one version out;
 - L{buckets}, L{index}, L{listing}: records, the key index, listing pages;
 - L{objects}, L{multipart}: the object and multipart operations;
 - L{recovery}: reconciling the datastore with the files at start;
 - L{concurrency}: the thread runner, per-name locks, the in-flight count.
"""

from nova.objectstore.store.concurrency import inline_runner, thread_runner
from nova.objectstore.store.store import DEFAULT_MAX_OBJECT_SIZE, FilesystemObjectStore

__all__ = ["FilesystemObjectStore", "DEFAULT_MAX_OBJECT_SIZE", "inline_runner",
           "thread_runner"]
