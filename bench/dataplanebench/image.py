"""The backend image of bench/dataplane.py: this machine's nginx binary, its shared libraries and a config that
answers `/` with 100 bytes over keep-alive, as a rootfs tar for `podman import`.

Why not the demo image: busybox httpd closes every connection and forks per request, so a proxy in front of it
is never what limits the test. nginx with one worker is what bench/proxy.py uses as its backends.
Boundary: pure but for reading the binary and its libraries (ldd); the tar goes to a file object the caller opens.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

NGINX = "/usr/sbin/nginx"
PORT = 8080
BODY = "a" * 100  # bench/proxy.py's `/`
MTIME = 1_700_000_000
IMPORT_CHANGES = (f'CMD ["{NGINX}", "-e", "stderr", "-c", "/etc/nginx/nginx.conf"]', f"EXPOSE {PORT}")
CONFIG = f"""daemon off;
master_process off;
worker_processes 1;
error_log stderr warn;
pid /tmp/nginx.pid;
events {{ worker_connections 8000; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type text/plain;
  server {{
    listen {PORT} backlog=4096;
    location = / {{ return 200 "{BODY}"; }}
  }}
}}
"""


def libraries(binary: str) -> list[str]:
    """Absolute paths of the shared libraries `binary` loads (ldd), the dynamic loader included."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True, timeout=30).stdout
    return sorted({m.group(1) for m in re.finditer(r"(/\S+) \(0x", out)})


def write_tar(out: BinaryIO) -> None:
    """The rootfs: nginx and its libraries at their own paths, the config, users for nginx, writable dirs."""
    files: dict[str, tuple[bytes, int]] = {NGINX: (Path(NGINX).read_bytes(), 0o755)}
    for lib in libraries(NGINX):
        files[lib] = (Path(lib).resolve().read_bytes(), 0o755)  # the file a symlink names, stored under its name
    files["etc/nginx/nginx.conf"] = (CONFIG.encode(), 0o644)
    files["etc/passwd"] = (b"root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534::/:/nonexistent\n", 0o644)
    files["etc/group"] = (b"root:x:0:\nnogroup:x:65534:\n", 0o644)
    dirs = {"tmp": 0o1777, "var/lib/nginx": 0o755, "var/log/nginx": 0o755}
    with tarfile.open(fileobj=out, mode="w") as tar:
        made: set[str] = set()
        for path, mode in sorted(dirs.items()):
            _dir(tar, path, made, mode)
        for path, (data, mode) in sorted(files.items()):
            name = path.lstrip("/")
            parent = name.rpartition("/")[0]
            if parent:
                _dir(tar, parent, made)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, MTIME
            tar.addfile(info, io.BytesIO(data))


def _dir(tar: tarfile.TarFile, path: str, made: set[str], mode: int = 0o755) -> None:
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        name = "/".join(parts[:i])
        if name in made:
            continue
        made.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode if i == len(parts) else 0o755, MTIME
        tar.addfile(info)
