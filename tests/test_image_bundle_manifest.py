"""
Bundle manifests: parse/render round trip, what euca2ools writes, and the
refusal of malformed manifests and unsafe part names.
"""

from __future__ import annotations


import attr
from twisted.trial import unittest

from nova import exception
from nova.image import bundle
from nova.image.bundle import testing
from tests.support.minidom import manifest_document

HEX40 = "a" * 40


def sample(**changes: object) -> bundle.Manifest:
    fields = dict(
        bundler_name="nova-bundle-image", bundler_version="1.0", bundler_release="nova",
        architecture="x86_64", kernel_id="aki-00000001", ramdisk_id="ari-00000002",
        image_name="disk.img", user="42", image_type="machine", digest=HEX40, size=1234,
        bundled_size=2048, ec2_encrypted_key="0a" * 128, ec2_encrypted_iv="0b" * 128,
        user_encrypted_key="0c" * 128, user_encrypted_iv="0d" * 128,
        parts=(("disk.img.part.0", "1" * 40), ("disk.img.part.1", "2" * 40)))
    fields.update(changes)
    return bundle.Manifest(**fields)  # type: ignore[arg-type]


class ManifestTestCase(unittest.TestCase):

    def setUp(self) -> None:
        self.creds = testing.shared_credentials()

    def render(self, manifest: bundle.Manifest) -> bytes:
        return bundle.render_manifest(manifest, self.creds.user_key_pem)


class RoundTripTests(ManifestTestCase):

    def test_round_trip(self) -> None:
        """What render_manifest writes, parse_manifest reads back field for field."""
        original = sample()
        data = self.render(original)
        parsed = bundle.parse_manifest(data)
        self.assertEqual(attr.evolve(parsed, signature="", signed_text=b""), original)
        self.assertTrue(data.startswith(b'<?xml version="1.0" ?><manifest><version>2007-10-10<'))
        self.assertIn(parsed.signed_text, data)
        self.assertTrue(parsed.signed_text.startswith(b"<machine_configuration>"))
        self.assertTrue(parsed.signed_text.endswith(b"</image>"))
        bundle.verify_signature(parsed, [self.creds.user_cert_pem])

    def test_optional_fields(self) -> None:
        """No kernel, ramdisk, user or bundler: None and empty strings."""
        original = sample(kernel_id=None, ramdisk_id=None, user="",
                          bundler_name="", bundler_version="", bundler_release="")
        parsed = bundle.parse_manifest(self.render(original))
        self.assertIsNone(parsed.kernel_id)
        self.assertIsNone(parsed.ramdisk_id)
        self.assertEqual(parsed.user, "")

    def test_kernel_and_ramdisk_types(self) -> None:
        for image_type in ("kernel", "ramdisk"):
            parsed = bundle.parse_manifest(self.render(sample(image_type=image_type)))
            self.assertEqual(parsed.image_type, image_type)

    def test_escaping(self) -> None:
        """A name with XML characters survives the round trip."""
        parsed = bundle.parse_manifest(self.render(sample(image_name="a&b<c>.img")))
        self.assertEqual(parsed.image_name, "a&b<c>.img")

    def test_euca2ools_minidom_layout(self) -> None:
        """
        A manifest serialised the way euca2ools does (minidom toxml, type
        missing as in old versions, parts in order with index attributes).
        """
        doc, root, add = manifest_document("1.2")
        machine = add(root, "machine_configuration")
        add(machine, "architecture", "i386")
        add(machine, "kernel_id", "eki-12345678")
        image = add(root, "image")
        add(image, "name", "ubuntu.img")
        add(image, "user", "42")
        add(image, "digest", HEX40, algorithm="SHA1")
        add(image, "size", "10")
        add(image, "bundled_size", "32")
        for field in ("ec2_encrypted_key", "user_encrypted_key"):
            add(image, field, "ab" * 4, algorithm="AES-128-CBC")
        for field in ("ec2_encrypted_iv", "user_encrypted_iv"):
            add(image, field, "cd" * 4)
        parts = add(image, "parts", count="1")
        part = add(parts, "part", index="0")
        add(part, "filename", "ubuntu.img.part.0")
        add(part, "digest", "F" * 40, algorithm="SHA1")
        xml = doc.toxml()
        signed = (xml[xml.find("<machine_configuration>"):xml.find("</image>") + 8])
        add(root, "signature", "00ff")
        parsed = bundle.parse_manifest(doc.toxml().encode())
        self.assertEqual(parsed.signed_text, signed.encode())
        self.assertEqual(parsed.architecture, "i386")
        self.assertEqual(parsed.kernel_id, "eki-12345678")
        self.assertEqual(parsed.image_type, "machine")
        self.assertEqual(parsed.parts, (("ubuntu.img.part.0", "f" * 40),))
        self.assertEqual(parsed.bundler_name, "euca-tools")

    def test_part_keys(self) -> None:
        manifest = sample()
        self.assertEqual(bundle.part_keys(manifest, "dir/sub/disk.img.manifest.xml"),
                         ["dir/sub/disk.img.part.0", "dir/sub/disk.img.part.1"])
        self.assertEqual(bundle.part_keys(manifest, "disk.img.manifest.xml"),
                         ["disk.img.part.0", "disk.img.part.1"])

    def test_parts_sorted_by_index(self) -> None:
        data = self.render(sample()).replace(b'index="0"', b'index="X"')
        data = data.replace(b'index="1"', b'index="0"').replace(b'index="X"', b'index="1"')
        parsed = bundle.parse_manifest(data)
        self.assertEqual([name for name, _ in parsed.parts],
                         ["disk.img.part.1", "disk.img.part.0"])


class MalformedTests(ManifestTestCase):

    def assertRefused(self, data: bytes, words: str) -> None:
        error = self.assertRaises(bundle.ManifestSyntaxError, bundle.parse_manifest, data)
        self.assertIsInstance(error, exception.InvalidParameterValue)
        self.assertEqual(error.code, "InvalidManifest")
        self.assertEqual(error.status, 400)
        self.assertIn(words, str(error))

    def test_not_xml(self) -> None:
        self.assertRefused(b"<manifest><version>", "not well-formed")
        self.assertRefused(b"\xff\xfe", "not UTF-8")
        self.assertRefused(b"<other/>", "root element")

    def test_too_large(self) -> None:
        self.assertRefused(b" " * (bundle.manifest.MAX_MANIFEST_BYTES + 1), "larger than")

    def test_doctype_refused(self) -> None:
        bomb = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaa">]>'
                b"<manifest>&a;</manifest>")
        self.assertRefused(bomb, "document type")

    def test_wrong_version(self) -> None:
        data = self.render(sample()).replace(b"2007-10-10", b"2006-01-01")
        self.assertRefused(data, "version")

    def test_missing_fields(self) -> None:
        data = self.render(sample())
        for tag in (b"ec2_encrypted_key", b"size", b"signature", b"architecture",
                    b"bundled_size", b"user_encrypted_iv"):
            start = data.index(b"<" + tag)
            end = data.index(b"</" + tag + b">") + len(tag) + 3
            self.assertRefused(data[:start] + data[end:], f"missing <{tag.decode()}>")

    def test_bad_values(self) -> None:
        data = self.render(sample())
        cases = [
            (b"<size>1234</size>", b"<size>-1</size>", "byte count"),
            (b"<type>machine</type>", b"<type>disk</type>", "image type"),
            (b'<digest algorithm="SHA1">' + HEX40.encode(),
             b'<digest algorithm="SHA1">' + b"xyz", "hexadecimal"),
            (b"aki-00000001", b"aki 1", "bad kernel_id"),
            (b'<parts count="2">', b'<parts count="3">', "count"),
            (b'index="1"', b'index="0"', "repeated part index"),
        ]
        for old, new, words in cases:
            self.assertIn(old, data)
            self.assertRefused(data.replace(old, new, 1), words)

    def test_no_parts(self) -> None:
        data = self.render(sample(parts=(("x.part.0", HEX40),)))
        start, end = data.index(b"<part index"), data.index(b"</parts>")
        self.assertRefused(data[:start] + data[end:], "no part")

    def test_unsafe_part_names(self) -> None:
        data = self.render(sample())
        for bad in ("../etc/passwd", "a/b", "..", ".hidden", "x..y", "a\\b", "tab\there",
                    "x" * 256):
            doctored = data.replace(b"disk.img.part.1", bad.encode())
            self.assertRefused(doctored, "unsafe part file name")
        self.assertRaises(bundle.ManifestSyntaxError, self.render,
                          sample(parts=(("a/b", HEX40),)))
        self.assertRaises(bundle.ManifestSyntaxError, bundle.check_part_name, "a\0b")

    def test_duplicate_part_names(self) -> None:
        data = self.render(sample()).replace(b"disk.img.part.1", b"disk.img.part.0")
        self.assertRefused(data, "same file name")

    def test_signed_elements_must_be_real(self) -> None:
        """No <image> to sign: refused, not silently verified against nothing."""
        data = self.render(sample()).replace(b"<image>", b"<imagex>").replace(
            b"</image>", b"</imagex>")
        self.assertRefused(data, "no <image>")
