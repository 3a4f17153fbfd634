"""The private part of a state folder: folders only this user enters, secret files, stable ports.

Every embedded server keeps what it needs under the state folder: its data, its log, a
credential generated on first use (a 0600 file) and the port it listens on (recorded the first
time, reused on every start, so what depends on it keeps a valid URL across restarts). Nothing
here touches a folder outside the state folder: no ``chmod`` or ``chown`` of an ancestor.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
LOOPBACK = "127.0.0.1"


def private_dir(path: Path) -> Path:
    """Create ``path`` mode 0700 (or make it 0700 if it exists); return it.

    Only for the state folder and folders inside it: missing ancestors are created with the
    default mode, existing ones are left as they are.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR:
        path.chmod(PRIVATE_DIR)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, readable by this user only (0600); return the path."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def open_private_log(path: Path) -> IO[bytes]:
    """Open ``path`` for appending, mode 0600 (a log older runs left readable is made private).

    A missing parent folder is created 0700; an existing one is left as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "ab")


def secret(path: Path, nbytes: int = 32) -> str:
    """Return the secret kept in ``path``, generating it (URL-safe, 0600) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(nbytes) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < 16:
        raise ValueError(f"{path} holds fewer than 16 characters: delete it to have a new secret generated")
    return value


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Tell whether a server could listen on ``host:port`` now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stable_port(path: Path) -> int:
    """Return the port recorded in ``path``; record a free one first if none is, or if it is taken.

    Called when a server starts afresh. A supervisor restarting a server keeps the port it has
    and never comes here, so clients of a restarted server reconnect to the same address.
    """
    try:
        recorded = int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        recorded = 0
    if recorded and port_is_free(recorded):
        return recorded
    port = free_port()
    if recorded:
        log.warning("port %d recorded in %s is taken by another program; using %d from now on", recorded, path, port)
    write_private(path, f"{port}\n")
    return port


def _listening_inodes(port: int) -> set[str]:
    """Return the inodes of the TCP sockets listening on ``port`` (any address); none without ``/proc/net``."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _with_descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
                parents[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    family, added = {pid}, True
    while added:
        children = {child for child, parent in parents.items() if parent in family} - family
        family |= children
        added = bool(children)
    return family


def port_held_by(port: int, pid: int) -> bool | None:
    """Tell whether process ``pid`` (or one it started) listens on ``port``.

    :return: True or False when another process's socket listens there; None when nothing listens
        there or this host has no ``/proc`` to tell (callers then trust their readiness check).
    """
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for member in _with_descendants(pid):
        try:
            fds = list(Path(f"/proc/{member}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in sockets:
                    return True
            except OSError:
                continue
    return False
