"""
Writing a manifest the way euca2ools does (C{minidom}'s C{toxml()}: an XML
declaration and the document on one line, elements in euca2ools' order),
signed with the user's private key, so that 2010 readers and euca2ools'
own C{euca-unbundle} accept it.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nova.image.bundle.errors import ManifestSyntaxError
from nova.image.bundle.manifest import Manifest, check_part_name

_AES = "AES-128-CBC"


def _elem(tag: str, text: str | int, **attrs: str) -> str:
    rendered = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    return f"<{tag}{rendered}>{escape(str(text))}</{tag}>"


def _machine_configuration(manifest: Manifest) -> str:
    inner = _elem("architecture", manifest.architecture)
    if manifest.kernel_id:
        inner += _elem("kernel_id", manifest.kernel_id)
    if manifest.ramdisk_id:
        inner += _elem("ramdisk_id", manifest.ramdisk_id)
    return f"<machine_configuration>{inner}</machine_configuration>"


def _image(manifest: Manifest) -> str:
    parts = "".join(
        f'<part index="{index}">{_elem("filename", check_part_name(name))}'
        f'{_elem("digest", digest, algorithm="SHA1")}</part>'
        for index, (name, digest) in enumerate(manifest.parts))
    return ("<image>"
            + _elem("name", manifest.image_name)
            + _elem("user", manifest.user)
            + _elem("type", manifest.image_type)
            + _elem("digest", manifest.digest, algorithm="SHA1")
            + _elem("size", manifest.size)
            + _elem("bundled_size", manifest.bundled_size)
            + _elem("ec2_encrypted_key", manifest.ec2_encrypted_key, algorithm=_AES)
            + _elem("user_encrypted_key", manifest.user_encrypted_key, algorithm=_AES)
            + _elem("ec2_encrypted_iv", manifest.ec2_encrypted_iv)
            + _elem("user_encrypted_iv", manifest.user_encrypted_iv)
            + f'<parts count="{len(manifest.parts)}">{parts}</parts>'
            + "</image>")


def load_rsa_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """
    @param pem: an unencrypted RSA private key in PEM (C{pk.pem}).
    @return: the key.
    @raise ManifestSyntaxError: it is not one.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError) as problem:
        raise ManifestSyntaxError(f"the user's private key cannot be read: {problem}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ManifestSyntaxError("the user's private key is not an RSA key")
    return key


def render_manifest(manifest: Manifest, user_key_pem: str | bytes) -> bytes:
    """
    Render and sign a manifest.

    @param manifest: every field but C{signature} and C{signed_text}, which
        are ignored and computed here.
    @param user_key_pem: the user's RSA private key (signs with PKCS#1 v1.5,
        SHA-1, as euca2ools does).
    @return: the manifest file's bytes; L{parse_manifest} of them equals
        C{manifest} with the new signature and signed text.
    @raise ManifestSyntaxError: an unsafe part name or an unusable key.
    """
    if not manifest.parts:
        raise ManifestSyntaxError("a bundle has at least one part")
    key = load_rsa_private_key(user_key_pem)
    signed_text = (_machine_configuration(manifest) + _image(manifest)).encode("utf-8")
    signature = key.sign(signed_text, padding.PKCS1v15(), hashes.SHA1()).hex()
    bundler = (_elem("name", manifest.bundler_name) + _elem("version", manifest.bundler_version)
               + _elem("release", manifest.bundler_release))
    document = ('<?xml version="1.0" ?><manifest>'
                + _elem("version", manifest.version)
                + f"<bundler>{bundler}</bundler>"
                + signed_text.decode("utf-8")
                + _elem("signature", signature)
                + "</manifest>")
    return document.encode("utf-8")

