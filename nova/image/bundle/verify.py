"""
The cryptographic checks of a manifest: the user's signature, and the
recovery of the AES key and IV with the cloud's private key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nova import exception
from nova.crypto import CertificateAuthority
from nova.image.bundle.errors import SignatureMismatch, WrongCloudKey
from nova.image.bundle.manifest import Manifest

_HEX32 = re.compile(rb"[0-9a-fA-F]{32}\Z")


def verify_signature(manifest: Manifest, cert_pems: Iterable[str | bytes]) -> str:
    """
    Check the manifest's signature against candidate certificates.

    The signature is RSA PKCS#1 v1.5 over the SHA-1 of
    L{Manifest.signed_text}, as euca2ools and the EC2 AMI tools make it.
    Certificates that cannot be parsed or hold no RSA key are skipped.

    @param manifest: the parsed manifest.
    @param cert_pems: the user's certificates (e.g.
        C{ca.user_certificates(user_id)}).
    @return: the PEM of the certificate that verified it.
    @raise SignatureMismatch: none did (or there were none).
    """
    signature = bytes.fromhex(manifest.signature)
    tried = 0
    for pem in cert_pems:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            public_key = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            continue
        if not isinstance(public_key, rsa.RSAPublicKey):
            continue
        tried += 1
        try:
            public_key.verify(signature, manifest.signed_text, padding.PKCS1v15(),
                              hashes.SHA1())
        except InvalidSignature:
            continue
        return data.decode("ascii")
    if not tried:
        raise SignatureMismatch(
            "cannot verify the manifest signature: the user has no certificate"
            " issued by this cloud (get credentials with nova-manage first)")
    raise SignatureMismatch(
        f"the manifest signature does not match any of the user's {tried}"
        " certificate(s): the bundle was signed with another key, or altered")


def _recover(ca: CertificateAuthority, hex_ciphertext: str, what: str) -> bytes:
    try:
        plain = ca.decrypt_with_ca_key(bytes.fromhex(hex_ciphertext))
    except exception.InvalidParameterValue:
        plain = b""
    # With OpenSSL's implicit rejection a ciphertext for another key
    # "decrypts" to random bytes: only 32 hex digits are a real key.
    if not _HEX32.match(plain):
        raise WrongCloudKey(
            f"cannot decrypt the image {what} with this cloud's key: the bundle"
            " was made for another cloud certificate (bundle it again with"
            " this cloud's cacert.pem as the EC2 certificate)")
    return bytes.fromhex(plain.decode("ascii"))


def decrypt_key(manifest: Manifest, ca: CertificateAuthority) -> tuple[bytes, bytes]:
    """
    Recover the AES-128 key and IV the bundle was encrypted with.

    @param manifest: the parsed manifest.
    @param ca: the cloud's certificate authority (its key decrypts
        C{ec2_encrypted_key}/C{ec2_encrypted_iv}).
    @return: C{(key, iv)}, 16 bytes each.
    @raise WrongCloudKey: they were not encrypted for this cloud.
    """
    return (_recover(ca, manifest.ec2_encrypted_key, "key"),
            _recover(ca, manifest.ec2_encrypted_iv, "IV"))
