"""
A minimal ATA over Ethernet (AoE, protocol version 1) client, for tests.

This kernel has no C{aoe} module, so the tests prove that a vblade export
is real by speaking the protocol themselves: a raw C{AF_PACKET} socket
bound to ethertype 0x88A2 on one interface (inside a network namespace:
run this module with C{ip netns exec NS python -m tests.support.aoe_client}),
then

    - Query Config Information (AoE command 1) to find the targets
      (shelf = the 16-bit major, slot = the 8-bit minor) and their MAC;
    - ATA IDENTIFY DEVICE (AoE command 0, ATA command 0xEC) for the sector
      count (words 100-103, LBA48; words 60-61, LBA28);
    - ATA READ SECTORS EXT (0x24, the AoE "extended" flag) for data.

Frame layout (network byte order), after the 14-byte Ethernet header:
C{ver<<4 | flags}, error, major (16 bits), minor, command, tag (32 bits);
an ATA request then carries aflags, err/feature, sector count, cmd/status,
lba0..lba5 (LSB first), two reserved bytes, and its data; a config reply
carries buffer count, firmware version, sectors per command,
C{aoe version<<4 | ccmd} and a counted config string.

The module is blocking on purpose: it runs as its own process in a
namespace, never in the reactor's.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import socket
import struct
import sys
import time
from typing import Any

import attr

ETH_P_AOE = 0x88A2
BROADCAST = b"\xff" * 6
AOE_VERSION = 1
FLAG_RESPONSE = 0x08
FLAG_ERROR = 0x04
CMD_ATA = 0
CMD_CONFIG = 1
ATA_IDENTIFY = 0xEC
ATA_READ_EXT = 0x24
AFLAG_EXTENDED = 0x40
SECTOR = 512
#: an Ethernet frame without its FCS is at least this long
MIN_FRAME = 60

_ETH = struct.Struct("!6s6sH")
_AOE = struct.Struct("!BBHBBI")
_ATA = struct.Struct("!BBBB6s2s")
_CONFIG = struct.Struct("!HHBBH")


class AoeError(Exception):
    """A target answered with an error, or did not answer."""


@attr.s(frozen=True, auto_attribs=True)
class Target:
    """One AoE target as its config reply describes it."""

    shelf: int
    slot: int
    mac: str
    buffer_count: int
    firmware: int
    max_sectors: int
    aoe_version: int
    config: str


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


class AoeClient:
    """
    Sends AoE requests on one interface and matches replies by tag.

    @param ifname: the interface (in the calling process's namespace).
    @param timeout: seconds to wait for one reply.
    @param retries: how many times a request is sent before giving up
        (AoE runs on Ethernet: a frame may be lost).
    """

    def __init__(self, ifname: str, timeout: float = 1.0, retries: int = 3) -> None:
        self.ifname = ifname
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_AOE))
        self.sock.bind((ifname, ETH_P_AOE))
        self.mac = self.sock.getsockname()[4][:6]
        self._tag = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> "AoeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_tag(self) -> int:
        self._tag = (self._tag + 1) & 0xFFFFFFFF
        return self._tag

    def _frame(self, dst: bytes, shelf: int, slot: int, command: int, tag: int,
               arg: bytes) -> bytes:
        frame = (_ETH.pack(dst, self.mac, ETH_P_AOE)
                 + _AOE.pack(AOE_VERSION << 4, 0, shelf, slot, command, tag) + arg)
        return frame.ljust(MIN_FRAME, b"\0")

    def _replies(self, tag: int, deadline: float) -> Any:
        """Yield (source MAC, aoe header fields, argument) of replies with C{tag}."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return
            frame = self.sock.recv(9000)
            if len(frame) < _ETH.size + _AOE.size:
                continue
            _dst, src, _type = _ETH.unpack_from(frame)
            verflags, error, major, minor, command, got_tag = _AOE.unpack_from(frame, _ETH.size)
            if got_tag != tag or not verflags & FLAG_RESPONSE:
                continue
            yield src, (verflags, error, major, minor, command), frame[_ETH.size + _AOE.size:]

    def discover(self, shelf: int = 0xFFFF, slot: int = 0xFF,
                 wait: float | None = None) -> list[Target]:
        """
        Broadcast a Query Config Information request (read).

        @param shelf: the shelf to ask (0xFFFF: every shelf).
        @param slot: the slot to ask (0xFF: every slot).
        @param wait: seconds to collect replies (default: the timeout).
        @return: the targets that answered, in order of arrival.
        """
        found: dict[tuple[int, int], Target] = {}
        for _attempt in range(self.retries):
            tag = self._next_tag()
            arg = _CONFIG.pack(0, 0, 0, 0, 0)  # ccmd 0: read the config string
            self.sock.send(self._frame(BROADCAST, shelf, slot, CMD_CONFIG, tag, arg))
            deadline = time.monotonic() + (self.timeout if wait is None else wait)
            for src, (verflags, error, major, minor, _), body in self._replies(tag, deadline):
                if verflags & FLAG_ERROR or len(body) < _CONFIG.size:
                    continue
                bufcnt, firmware, scnt, vercmd, length = _CONFIG.unpack_from(body)
                text = body[_CONFIG.size:_CONFIG.size + length].decode("latin-1")
                found[(major, minor)] = Target(major, minor, _mac_text(src), bufcnt, firmware,
                                               scnt, vercmd >> 4, text)
            if found:
                break
        return list(found.values())

    def ata(self, target: Target, command: int, lba: int = 0, count: int = 0,
            extended: bool = False) -> tuple[int, bytes]:
        """
        Send one ATA command to C{target} and wait for its reply.

        @return: the ATA status byte and the data that came back.
        @raise AoeError: on an AoE error, an ATA error, or no reply.
        """
        aflags = AFLAG_EXTENDED if extended else 0
        lba_bytes = lba.to_bytes(6, "little")
        arg = _ATA.pack(aflags, 0, count, command, lba_bytes, b"\0\0")
        for _attempt in range(self.retries):
            tag = self._next_tag()
            self.sock.send(self._frame(_mac_bytes(target.mac), target.shelf, target.slot,
                                       CMD_ATA, tag, arg))
            deadline = time.monotonic() + self.timeout
            for _src, (verflags, error, major, minor, _), body in self._replies(tag, deadline):
                if (major, minor) != (target.shelf, target.slot):
                    continue
                if verflags & FLAG_ERROR:
                    raise AoeError(f"AoE error {error} for ATA command {command:#x}")
                _af, err, _count, status, _lba, _res = _ATA.unpack_from(body)
                if status & 0x01:  # ERR
                    raise AoeError(f"ATA error {err:#x} (status {status:#x})"
                                   f" for command {command:#x} at lba {lba}")
                return status, body[_ATA.size:]
        raise AoeError(f"no reply from e{target.shelf}.{target.slot} to ATA {command:#x}")

    def identify(self, target: Target) -> dict[str, Any]:
        """
        ATA IDENTIFY DEVICE.

        @return: C{sectors} (LBA48 count, else LBA28), C{lba28}, C{lba48},
            C{model}, C{serial}, C{firmware}.
        """
        _status, data = self.ata(target, ATA_IDENTIFY, count=1)
        if len(data) < SECTOR:
            raise AoeError(f"IDENTIFY returned {len(data)} bytes")
        words = struct.unpack("<256H", data[:SECTOR])

        def text(first: int, last: int) -> str:
            # ATA strings store two characters per word, high byte first.
            raw = b"".join(struct.pack(">H", w) for w in words[first:last + 1])
            return raw.decode("latin-1").strip()

        lba28 = words[60] | words[61] << 16
        lba48 = words[100] | words[101] << 16 | words[102] << 32 | words[103] << 48
        return {"sectors": lba48 or lba28, "lba28": lba28, "lba48": lba48,
                "serial": text(10, 19), "firmware": text(23, 26), "model": text(27, 46)}

    def read(self, target: Target, lba: int, count: int) -> bytes:
        """
        Read C{count} sectors from C{lba}, as many per request as the target allows.

        @return: C{count * 512} bytes.
        """
        per_request = max(1, min(target.max_sectors or 1, 255))
        chunks = []
        done = 0
        while done < count:
            n = min(per_request, count - done)
            _status, data = self.ata(target, ATA_READ_EXT, lba + done, n, extended=True)
            if len(data) < n * SECTOR:
                raise AoeError(f"short read at lba {lba + done}: {len(data)} bytes")
            chunks.append(data[:n * SECTOR])
            done += n
        return b"".join(chunks)


def main(argv: list[str] | None = None) -> int:
    """
    Command line: discover, identify and read; print one JSON object.

    C{--read LBA:COUNT} may repeat; the data come back base64-encoded.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ifname")
    parser.add_argument("--shelf", type=int, default=0xFFFF)
    parser.add_argument("--slot", type=int, default=0xFF)
    parser.add_argument("--read", action="append", default=[], metavar="LBA:COUNT")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--retries", type=int, default=5)
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    with AoeClient(args.ifname, timeout=args.timeout, retries=args.retries) as client:
        targets = client.discover(args.shelf, args.slot)
        out["targets"] = [attr.asdict(t) for t in targets]
        if len(targets) == 1:
            [target] = targets
            out["identify"] = client.identify(target)
            out["reads"] = []
            for spec in args.read:
                lba, count = (int(part) for part in spec.split(":"))
                data = client.read(target, lba, count)
                out["reads"].append({"lba": lba, "count": count,
                                     "data": base64.b64encode(data).decode()})
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
