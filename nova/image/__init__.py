"""
The image registry: image records (L{nova.image.records}), their repository
in the datastore (L{nova.image.repository}) and launch permissions
(L{nova.image.permissions}). Image data lives in the object store.
"""
