"""The S3-compatible object store: storage (L{nova.objectstore.store}) and its HTTP face (L{nova.objectstore.http})."""
