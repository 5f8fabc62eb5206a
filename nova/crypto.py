"""
Keys and certificates: SSH key pairs for CreateKeyPair/ImportKeyPair, and the
cloud's certificate authority (user certificates for the credentials zip,
decryption of image bundle keys).

Everything here is synchronous and some of it is slow (RSA key generation):
callers on the reactor run these functions in a thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nova import exception
from nova.utils.files import write_atomically

#: Largest public key material ImportKeyPair accepts, in bytes.
MAX_PUBLIC_KEY_MATERIAL = 16 * 1024
_RSA_IMPORT_BITS = (1024, 16384)
_RSA_GENERATE_BITS = (2048, 8192)
_SSH_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256",
              "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-dss")
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class InvalidKeyFormat(exception.InvalidParameterValue):
    """The key material is not a public key this cloud accepts."""

    code = "InvalidKey.Format"


class CryptoError(exception.NovaError):
    """The certificate authority could not do what was asked."""


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def _ssh_blob(public_key: PublicKeyTypes) -> bytes:
    line = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def openssh_public_key(public_key: PublicKeyTypes) -> str:
    """
    @param public_key: a C{cryptography} public key.
    @return: its one-line OpenSSH form, C{"ssh-rsa AAAA..."}, no comment.
    """
    return public_key.public_bytes(
        serialization.Encoding.OpenSSH,
        serialization.PublicFormat.OpenSSH).decode("ascii")


def sha256_fingerprint(public_key: PublicKeyTypes) -> str:
    """
    The OpenSSH 6.8+ fingerprint AWS shows for ED25519 keys.

    @param public_key: a C{cryptography} public key.
    @return: base64 (padded) of the SHA-256 of the SSH wire-format key.
    """
    return base64.b64encode(hashlib.sha256(_ssh_blob(public_key)).digest()).decode()


def md5_public_fingerprint(public_key: PublicKeyTypes) -> str:
    """
    The fingerprint AWS shows for imported RSA keys: the MD5 of the DER
    SubjectPublicKeyInfo (C{openssl pkey -pubout -outform DER | openssl md5 -c}).

    @param public_key: a C{cryptography} public key.
    @return: colon-separated lower-case hex.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    return _colon_hex(hashlib.md5(der, usedforsecurity=False).digest())


def sha1_private_fingerprint(private_key: rsa.RSAPrivateKey) -> str:
    """
    The fingerprint AWS shows for RSA keys it generated: the SHA-1 of the
    DER PKCS#8 private key (C{openssl pkcs8 -topk8 -nocrypt -outform DER |
    openssl sha1 -c}).

    @param private_key: the RSA private key.
    @return: colon-separated lower-case hex.
    """
    der = private_key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return _colon_hex(hashlib.sha1(der, usedforsecurity=False).digest())


def generate_key_pair(key_type: str = "rsa", bits: int = 2048) -> tuple[str, str, str]:
    """
    Generate an SSH key pair as CreateKeyPair returns it.

    @param key_type: C{"rsa"} or C{"ed25519"} (EC2's KeyType values).
    @param bits: RSA modulus size (2048 to 8192); ignored for ED25519.
    @return: C{(private_key_pem, public_openssh, fingerprint)}: the private key
        as EC2 returns it (RSA: C{BEGIN RSA PRIVATE KEY}; ED25519: OpenSSH
        format), the public key line, and AWS's fingerprint.
    @raise exception.InvalidParameterValue: unknown type or size.
    """
    if key_type == "rsa":
        if not _RSA_GENERATE_BITS[0] <= bits <= _RSA_GENERATE_BITS[1]:
            raise exception.InvalidParameterValue(
                f"RSA key size must be between {_RSA_GENERATE_BITS[0]} and"
                f" {_RSA_GENERATE_BITS[1]} bits, not {bits}")
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        return (pem.decode("ascii"), openssh_public_key(rsa_key.public_key()),
                sha1_private_fingerprint(rsa_key))
    if key_type == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        pem = ed_key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.OpenSSH,
                                   serialization.NoEncryption())
        return (pem.decode("ascii"), openssh_public_key(ed_key.public_key()),
                sha256_fingerprint(ed_key.public_key()))
    raise exception.InvalidParameterValue(
        f"Value ({key_type}) for parameter KeyType is invalid: use rsa or ed25519")


def _load_openssh_line(line: str) -> PublicKeyTypes:
    tokens = line.split()
    for index, token in enumerate(tokens[:-1]):
        if token == "ssh-dss":
            raise InvalidKeyFormat("DSA keys are not supported: use RSA or ED25519")
        if token in _SSH_TYPES:
            return serialization.load_ssh_public_key(
                f"{token} {tokens[index + 1]}".encode("ascii"))
    raise InvalidKeyFormat("Key is not in valid OpenSSH public key format")


def _load_rfc4716(text: str) -> PublicKeyTypes:
    body: list[str] = []
    continued = False
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line.startswith("---- END SSH2 PUBLIC KEY"):
            break
        if continued or (":" in line and not body):
            continued = line.endswith("\\")
            continue
        body.append(line)
    return _load_ssh_blob(base64.b64decode("".join(body), validate=True))


def _load_ssh_blob(blob: bytes) -> PublicKeyTypes:
    """Load an SSH wire-format public key (what an OpenSSH line base64-encodes)."""
    kind = blob[4:4 + int.from_bytes(blob[:4], "big")].decode("ascii")
    if kind == "ssh-dss":
        raise InvalidKeyFormat("DSA keys are not supported: use RSA or ED25519")
    return serialization.load_ssh_public_key(
        f"{kind} {base64.b64encode(blob).decode()}".encode("ascii"))


def _load_public_key(text: str, nested: bool) -> PublicKeyTypes:
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY"):
        return _load_rfc4716(text)
    if text.startswith("-----BEGIN"):
        return serialization.load_pem_public_key(text.encode("ascii"))
    if any(token in _SSH_TYPES for token in text.split()):
        lines = [line for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
        if len(lines) != 1:
            raise InvalidKeyFormat("Key material must hold exactly one public key")
        return _load_openssh_line(lines[0])
    if nested:
        raise InvalidKeyFormat("Key is not in valid OpenSSH public key format")
    decoded = base64.b64decode("".join(text.split()), validate=True)
    if decoded[:1] == b"\x30":
        return serialization.load_der_public_key(decoded)
    if decoded[:3] == b"\x00\x00\x00":
        return _load_ssh_blob(decoded)
    return _load_public_key(decoded.decode("ascii").strip(), nested=True)


def parse_public_key(material: bytes | str) -> tuple[str, str, str]:
    """
    Read the public key an ImportKeyPair request carries.

    Accepts an OpenSSH public key line (C{ssh-rsa}, C{ssh-ed25519},
    C{ecdsa-sha2-nistp256/384/521}, with or without comment or
    authorized_keys options), an RFC 4716 SSH2 public key, a PEM or base64
    DER SubjectPublicKeyInfo, the bare base64 SSH key blob, and any of the
    text forms base64-encoded once more (the API's C{PublicKeyMaterial} is a
    base64 blob, which SDKs encode for the caller).

    @param material: the key material.
    @return: C{(key_type, public_openssh, fingerprint)}: C{"rsa"},
        C{"ed25519"} or C{"ecdsa"}; the normalised public key line (no
        comment); AWS's import fingerprint (RSA and ECDSA: MD5 of the DER
        public key; ED25519: base64 SHA-256).
    @raise InvalidKeyFormat: anything else (DSA, short RSA, private keys,
        garbage, oversize input).
    """
    if isinstance(material, str):
        material = material.encode("utf-8")
    if len(material) > MAX_PUBLIC_KEY_MATERIAL:
        raise InvalidKeyFormat(
            f"Key material is larger than {MAX_PUBLIC_KEY_MATERIAL} bytes")
    try:
        text = material.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InvalidKeyFormat("Key material is not ASCII text") from None
    if not text:
        raise InvalidKeyFormat("Key material is empty")
    if "PRIVATE KEY" in text:
        raise InvalidKeyFormat(
            "Key material is a private key: import the public key only")
    try:
        key = _load_public_key(text, nested=False)
    except (ValueError, UnsupportedAlgorithm, binascii.Error, IndexError,
            UnicodeDecodeError):
        raise InvalidKeyFormat(
            "Key is not in valid OpenSSH public key format") from None
    if isinstance(key, rsa.RSAPublicKey):
        if not _RSA_IMPORT_BITS[0] <= key.key_size <= _RSA_IMPORT_BITS[1]:
            raise InvalidKeyFormat(
                f"RSA key is {key.key_size} bits: it must have at least"
                f" {_RSA_IMPORT_BITS[0]} (and at most {_RSA_IMPORT_BITS[1]})")
        return "rsa", openssh_public_key(key), md5_public_fingerprint(key)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", openssh_public_key(key), sha256_fingerprint(key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES):
        return "ecdsa", openssh_public_key(key), md5_public_fingerprint(key)
    if isinstance(key, dsa.DSAPublicKey):
        raise InvalidKeyFormat("DSA keys are not supported: use RSA or ED25519")
    raise InvalidKeyFormat("Unsupported key type: use RSA or ED25519")


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")
_MAX_USER_ID = 47      # the CN is "<user>-<YYYYMMDDTHHMMSSZ>", at most 64 long
_MAX_PROJECT_ID = 64   # the OU


def validate_subject_id(value: str, what: str, limit: int) -> str:
    """
    Check a user or project id before it goes into a certificate subject.

    @param value: the id.
    @param what: C{"user"} or C{"project"}, for the message.
    @param limit: the longest allowed.
    @return: C{value}.
    @raise exception.InvalidParameterValue: when it is not a plain id.
    """
    if not isinstance(value, str) or not _ID_RE.match(value) or len(value) > limit:
        raise exception.InvalidParameterValue(
            f"Invalid {what} id {value!r}: use 1 to {limit} letters, digits"
            " and . _ @ + - (starting with a letter or digit)")
    return value


def _subject(**parts: str) -> x509.Name:
    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
            "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
            "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}
    return x509.Name([x509.NameAttribute(oids[key], value)
                      for key, value in parts.items()])


def _key_usage(*enabled: str) -> x509.KeyUsage:
    flags = ("digital_signature", "content_commitment", "key_encipherment",
             "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
             "encipher_only", "decipher_only")
    return x509.KeyUsage(**{flag: flag in enabled for flag in flags})


def _utcnow(now: datetime.datetime | None) -> datetime.datetime:
    return now if now is not None else datetime.datetime.now(datetime.timezone.utc)


class CertificateAuthority:
    """
    The cloud's root CA, kept as C{cacert.pem} and C{private/cakey.pem}
    under one directory (the 2010 nova layout).

    The constructor loads the CA, or creates it the first time: the key
    (mode 0600) and the self-signed certificate are written to temporary
    files and renamed into place, under a lock so that two processes starting
    together cannot create two different CAs.

    @ivar ca_dir: the directory.
    """

    CERT_NAME = "cacert.pem"
    KEY_NAME = "private/cakey.pem"

    def __init__(self, ca_dir: Path, *, common_name: str = "nova-ca",
                 key_size: int = 2048, now: datetime.datetime | None = None) -> None:
        """
        @param ca_dir: where the CA lives; created if missing.
        @param common_name: the CA's CN, used when creating it.
        @param key_size: RSA size of a new CA key (at least 2048).
        @param now: the creation time (default: now), for tests.
        @raise CryptoError: the key is missing while the certificate exists,
            or they do not belong together.
        """
        if key_size < 2048:
            raise exception.InvalidParameterValue("CA keys have 2048 bits or more")
        self.ca_dir = Path(ca_dir)
        (self.ca_dir / "private").mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            self._key, self._cert = self._load_or_create(common_name, key_size,
                                                         _utcnow(now))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.ca_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load_or_create(self, common_name: str, key_size: int,
                        now: datetime.datetime) -> tuple[rsa.RSAPrivateKey,
                                                         x509.Certificate]:
        cert_path = self.ca_dir / self.CERT_NAME
        key_path = self.ca_dir / self.KEY_NAME
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise CryptoError(f"{key_path} is not an RSA private key")
        elif cert_path.exists():
            raise CryptoError(f"{cert_path} exists but its key {key_path} is"
                              " missing: restore the key or remove both")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
            write_atomically(key_path, key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()), 0o600)
        if cert_path.exists():
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.public_key() != key.public_key():
                raise CryptoError(f"{cert_path} does not belong to {key_path}")
            return key, cert
        # A key without a certificate: a crash between the two writes.
        cert = self._self_signed(key, common_name, now)
        write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return key, cert

    @staticmethod
    def _self_signed(key: rsa.RSAPrivateKey, common_name: str,
                     now: datetime.datetime) -> x509.Certificate:
        name = _subject(C="US", ST="California", L="MountainView", O="NOVA",
                        OU="NovaDev", CN=common_name)
        public = key.public_key()
        return (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name).public_key(public)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                               critical=True)
                .add_extension(_key_usage("digital_signature", "key_cert_sign",
                                          "crl_sign"), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public),
                               critical=False)
                .sign(key, hashes.SHA256()))

    @property
    def ca_certificate(self) -> x509.Certificate:
        """@return: the CA certificate."""
        return self._cert

    @property
    def ca_cert_pem(self) -> str:
        """@return: the CA certificate in PEM (C{cacert.pem} of the credentials)."""
        return self._cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue_user_certificate(self, user_id: str, project_id: str, *,
                               now: datetime.datetime | None = None,
                               days: int = 365) -> tuple[str, str]:
        """
        Make a key and a certificate for a user in a project (C{pk.pem} and
        C{cert.pem} of the credentials zip).

        The subject is C{/C=US/ST=California/L=MountainView/O=NOVA/OU=<project>
        /CN=<user>-<YYYYMMDDTHHMMSSZ>}, after 2010 nova's.

        @param user_id: the user.
        @param project_id: the project.
        @param now: the issue time (default: now).
        @param days: validity.
        @return: C{(private_key_pem, cert_pem)}; the key is in the
            C{BEGIN RSA PRIVATE KEY} form euca2ools expects. The certificate
            is also recorded under C{users/<user_id>/<serial hex>.pem} (see
            L{user_certificates}).
        @raise exception.InvalidParameterValue: an id unfit for a subject.
        """
        validate_subject_id(user_id, "user", _MAX_USER_ID)
        validate_subject_id(project_id, "project", _MAX_PROJECT_ID)
        issued = _utcnow(now)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        stamp = issued.strftime("%Y%m%dT%H%M%SZ")
        subject = _subject(C="US", ST="California", L="MountainView", O="NOVA",
                           OU=project_id, CN=f"{user_id}-{stamp}")
        ca_public = self._key.public_key()
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(self._cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(issued - datetime.timedelta(minutes=5))
                .not_valid_after(issued + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(_key_usage("digital_signature", "key_encipherment"),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_public), critical=False)
                .sign(self._key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        # Recorded so that the cloud can verify what the user signs (bundles).
        write_atomically(self._user_dir(user_id) / f"{cert.serial_number:x}.pem",
                         cert_pem, 0o644)
        return key_pem.decode("ascii"), cert_pem.decode("ascii")

    def _user_dir(self, user_id: str) -> Path:
        return self.ca_dir / "users" / user_id

    def user_certificates(self, user_id: str, *,
                          now: datetime.datetime | None = None) -> list[str]:
        """
        The certificates this CA issued to a user that are still valid:
        the candidates for checking the user's signature (on an image
        bundle's manifest).

        @param user_id: the user.
        @param now: the time to check validity at (default: now).
        @return: their PEMs, the most recently issued first; empty for an
            unknown user or an id that could not have been issued.
        """
        try:
            validate_subject_id(user_id, "user", _MAX_USER_ID)
        except exception.InvalidParameterValue:
            return []
        found: list[tuple[datetime.datetime, str]] = []
        try:
            paths = sorted(self._user_dir(user_id).glob("*.pem"))
        except OSError:
            return []
        for path in paths:
            try:
                pem = path.read_text("ascii")
                cert = self.verify_certificate(pem, now=now)
            except (OSError, UnicodeDecodeError, CryptoError):
                continue
            names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if not names or not str(names[0].value).startswith(f"{user_id}-"):
                continue
            found.append((cert.not_valid_before_utc, pem))
        found.sort(key=lambda item: item[0], reverse=True)
        return [pem for _, pem in found]

    def verify_certificate(self, cert_pem: str | bytes, *,
                           now: datetime.datetime | None = None) -> x509.Certificate:
        """
        Check that a certificate was issued by this CA and is valid now.

        @param cert_pem: the certificate.
        @param now: the time to check validity at (default: now).
        @return: the parsed certificate.
        @raise CryptoError: not parseable, not signed by this CA, or outside
            its validity period.
        """
        data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
        try:
            cert = x509.load_pem_x509_certificate(data)
            cert.verify_directly_issued_by(self._cert)
        except (ValueError, TypeError, InvalidSignature) as problem:
            raise CryptoError(f"certificate not issued by this CA: {problem}") from None
        moment = _utcnow(now)
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise CryptoError("certificate is not valid at this time")
        return cert

    def decrypt_with_ca_key(self, ciphertext: bytes) -> bytes:
        """
        Decrypt what a client encrypted for the cloud (RSA PKCS#1 v1.5), as
        the C{ec2_encrypted_key}/C{ec2_encrypted_iv} of an image bundle.

        With OpenSSL's implicit rejection a wrong ciphertext may decrypt to
        random bytes instead of failing; callers must check what they get.

        @param ciphertext: the encrypted bytes.
        @return: the plaintext.
        @raise exception.InvalidParameterValue: it cannot be decrypted.
        """
        try:
            return self._key.decrypt(ciphertext, padding.PKCS1v15())
        except ValueError:
            raise exception.InvalidParameterValue(
                "could not decrypt with the cloud's key") from None
