"""The demo image recipe: a static busybox with every applet linked, a version file and a small web root.

Role: what `shoal-demo:<version>` holds, as data (`rootfs`), written as a tar (`write_tar`) that registryd.py
hands to `podman import` with `IMPORT_CHANGES`. The image is the binary of the machine's busybox-static plus
one symlink per applet `busybox --list-full` names (so `sh`, `httpd`, `hostname`, `nc`, `wget`, `sleep`, ...
work), /etc/shoal-demo-version holding the version, /www/index.html naming it, and a CGI script
/www/cgi-bin/hostname that answers with the container's hostname (which replica served a request).
Boundary: no process; the tar goes to a file object the caller opens.
"""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

BUSYBOX = "bin/busybox"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HTTP_PORT = 8080
# The default command serves the web root, so `podman run -d IMAGE` is already a web server.
IMPORT_CHANGES = (
    f'CMD ["httpd", "-f", "-p", "{HTTP_PORT}", "-h", "/www"]',
    f"ENV PATH={PATH}",
    f"EXPOSE {HTTP_PORT}",
)
MTIME = 1_700_000_000  # fixed, so the same busybox and version give the same layer digest
_PT_INTERP = 3


@dataclass(frozen=True)
class Entry:
    """One rootfs member: a directory (data and target None), a file (data), or a symlink (target)."""

    path: str
    mode: int = 0o755
    data: bytes | None = None
    target: str | None = None


def applets(list_full: str) -> list[str]:
    """Paths of `busybox --list-full` output ("bin/sh", "usr/sbin/httpd", ...), relative and clean."""
    found = []
    for line in list_full.splitlines():
        path = line.strip().lstrip("/")
        if path and ".." not in path.split("/") and path != BUSYBOX:
            found.append(path)
    return found


def is_static_elf(binary: bytes) -> bool:
    """True for an ELF executable with no program interpreter (PT_INTERP): it runs in an image that holds
    nothing else. A dynamically linked busybox (package `busybox`, not `busybox-static`) would not."""
    if len(binary) < 64 or binary[:4] != b"\x7fELF" or binary[4] not in (1, 2) or binary[5] not in (1, 2):
        return False
    wide, end = binary[4] == 2, "<" if binary[5] == 1 else ">"
    # The program header table's offset, entry size and count sit at different offsets in ELF32 and ELF64.
    (phoff,) = struct.unpack_from(f"{end}Q" if wide else f"{end}I", binary, 32 if wide else 28)
    phentsize, phnum = struct.unpack_from(f"{end}HH", binary, 54 if wide else 42)
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + 4 > len(binary):
            return False
        if struct.unpack_from(f"{end}I", binary, offset)[0] == _PT_INTERP:
            return False
    return True


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def rootfs(busybox: bytes, applet_paths: Iterable[str], version: str) -> list[Entry]:
    """Everything in the image of `version`, directories before what they hold."""
    files = [
        Entry(BUSYBOX, 0o755, data=busybox),
        Entry("etc/shoal-demo-version", 0o644, data=f"{version}\n".encode()),
        Entry("etc/passwd", 0o644, data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        Entry("etc/group", 0o644, data=b"root:x:0:\nnogroup:x:65534:\n"),
        Entry("www/index.html", 0o644, data=f"shoal-demo {version}\n".encode()),
        Entry(
            "www/cgi-bin/hostname",
            0o755,
            data=b'#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nhostname\n',
        ),
    ]
    links = [Entry(path, 0o777, target=f"/{BUSYBOX}") for path in sorted(set(applet_paths))]
    wanted_dirs = {"tmp", "proc", "sys", "dev", "root", "run", "var", "etc", "www"}
    for entry in files + links:
        wanted_dirs.update(_parents(entry.path))
    dirs = [Entry(d, 0o1777 if d == "tmp" else 0o755) for d in sorted(wanted_dirs)]
    taken = {entry.path for entry in files}
    return dirs + files + [link for link in links if link.path not in taken and link.path not in wanted_dirs]


def write_tar(entries: Iterable[Entry], out: BinaryIO) -> None:
    """The rootfs as an uncompressed tar, owned by root, every timestamp fixed."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mode, info.mtime, info.uid, info.gid = entry.mode, MTIME, 0, 0
            if entry.target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            elif entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
