"""
euca2ools-style image bundles: an image tarred, gzipped, encrypted with
AES-128-CBC and split into parts, described by a signed
C{<prefix>.manifest.xml} (format 2007-10-10). See C{docs/bundles.md}.

How a registrar uses it (everything here is synchronous; C{unbundle} is slow
and blocking: run it in a thread, e.g. C{twisted.internet.threads.deferToThreadPool})::

    from nova.image import bundle

    manifest = bundle.parse_manifest(manifest_bytes)          # fast
    keys = bundle.part_keys(manifest, manifest_key)           # keys beside the manifest
    bundle.verify_signature(manifest, ca.user_certificates(user_id))   # fast-ish
    # ... download every key of `keys` to local files part_paths, in order ...
    size, sha256_hex = bundle.unbundle(manifest, part_paths, ca, out_path)  # in a thread

Every refusal is an L{InvalidManifest} (C{code == "InvalidManifest"}, HTTP
400, a message saying which check failed) or a subclass of it:
L{ManifestSyntaxError}, L{SignatureMismatch}, L{WrongCloudKey},
L{PartError}, L{ImageDataError}. Copy C{code}/C{message} into the image's
C{stateReason}.

The public API:

  - C{parse_manifest(data: bytes) -> Manifest}
  - C{part_keys(manifest: Manifest, manifest_key: str) -> list[str]}
  - C{verify_signature(manifest: Manifest, cert_pems: Iterable[str | bytes]) -> str}
    (returns the PEM that verified)
  - C{decrypt_key(manifest: Manifest, ca: CertificateAuthority) -> tuple[bytes, bytes]}
  - C{unbundle(manifest: Manifest, part_paths: list[str], ca: CertificateAuthority,
    out_path: str) -> tuple[int, str]} (size written, SHA-256 hex; BLOCKING)
  - C{render_manifest(manifest: Manifest, user_key_pem: str | bytes) -> bytes}
  - C{make_bundle(image_path, out_dir, prefix, *, user_cert_pem, user_key_pem,
    cloud_cert_pem, image_type="machine", arch="x86_64", kernel_id=None,
    ramdisk_id=None, part_size=PART_SIZE, progress=None) -> tuple[str, list[str]]}
    (BLOCKING)

For tests (here and in the registrar's): L{nova.image.bundle.testing} makes
a throw-away CA and user (C{make_credentials}, C{shared_credentials}) and
C{seal}s any payload into a correctly signed and encrypted bundle.
"""

from nova.image.bundle.errors import (ImageDataError, InvalidManifest,
                                      ManifestSyntaxError, PartError,
                                      SignatureMismatch, WrongCloudKey)
from nova.image.bundle.manifest import (IMAGE_TYPES, MANIFEST_VERSION, Manifest,
                                        check_part_name, parse_manifest, part_keys)
from nova.image.bundle.pack import PART_SIZE, make_bundle
from nova.image.bundle.unpack import unbundle
from nova.image.bundle.verify import decrypt_key, verify_signature
from nova.image.bundle.writer import render_manifest

__all__ = [
    "IMAGE_TYPES", "MANIFEST_VERSION", "PART_SIZE",
    "ImageDataError", "InvalidManifest", "Manifest", "ManifestSyntaxError",
    "PartError", "SignatureMismatch", "WrongCloudKey",
    "check_part_name", "decrypt_key", "make_bundle", "parse_manifest", "part_keys",
    "render_manifest", "unbundle", "verify_signature",
]
