"""The only module in Shoal that runs `nft`: apply a rendered script, list or remove Shoal's own table.

Role: the I/O edge of netpolicy. `apply(script)` feeds a script from render.py to `nft -f -` (one
transaction: all of it or none); `ensure(script)` does so only when the listed table's fingerprint differs
from the script's (a no-op otherwise); `present()` lists Shoal's table; `remove()` deletes it if it exists.
Boundary: touches only `table inet shoal`, never another table and never `flush ruleset` (research/lab.md
P10). Blocking calls, each bounded by a timeout: async callers run them in a thread. Acts on the network
namespace of the calling process. A failure raises NftError naming the command and quoting nft's stderr.
"""

from __future__ import annotations

import subprocess

from netpolicy.model import TABLE_FAMILY, TABLE_NAME
from netpolicy.render import listed_fingerprint

NFT = "nft"
TIMEOUT_S = 30.0  # nft answers in milliseconds; a hang (a stuck netlink socket) must not stall a caller forever
_NO_TABLE = "No such file or directory"  # nft's stderr when the table to list does not exist


class NftError(Exception):
    """nft failed or could not run; the message names the command and quotes its stderr."""


def apply(script: str) -> None:
    """Run `script` as one nft transaction (`nft -f -`, script on stdin)."""
    _nft("-f", "-", stdin=script)


def ensure(script: str) -> bool:
    """Apply `script` unless Shoal's table already carries its fingerprint; True if it applied. A missing
    table, or one with another fingerprint or none, is replaced; one with this fingerprint is left alone, so
    its counters keep counting (a hand edit that keeps the comment survives until the next change)."""
    wanted = listed_fingerprint(script)
    if wanted is None:
        raise ValueError("the script has no shoal fingerprint; render it with netpolicy.render.render()")
    if listed_fingerprint(present()) == wanted:
        return False
    apply(script)
    return True


def remove() -> None:
    """Delete Shoal's table if it exists; a no-op otherwise (declaring it first makes the delete safe)."""
    _nft("-f", "-", stdin=f"table {TABLE_FAMILY} {TABLE_NAME}\ndelete table {TABLE_FAMILY} {TABLE_NAME}\n")


def present() -> str | None:
    """`nft list table inet shoal` output, or None when there is no such table."""
    try:
        return _nft("list", "table", TABLE_FAMILY, TABLE_NAME)
    except NftError as exc:
        if _NO_TABLE in str(exc):
            return None
        raise


def _nft(*args: str, stdin: str | None = None) -> str:
    cmd = (NFT, *args)
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise NftError(f"`{' '.join(cmd)}`: {NFT} is not on PATH (install the nftables package)") from None
    except subprocess.TimeoutExpired:
        raise NftError(f"`{' '.join(cmd)}` did not finish within {TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise NftError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout
