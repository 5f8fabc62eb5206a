"""
The nova tiny test image: a Debian cloud kernel plus a busybox initramfs.

C{build} turns Debian packages into C{vmlinuz} and C{initrd.img} (cached,
with a manifest); the files under C{guest/} are what the initramfs runs.
C{tools/build-tiny-image} is the command-line face.
"""
