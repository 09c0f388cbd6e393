"""A party's private files: its state directory and its keys, readable by the owner only.

The state directory holds the ledger copy, the witness state, replay nonces and the MPC
worker's TLS files; the key files sign and authenticate for the agency. A daemon makes new
files 0600 and directories 0700 (process umask 077, set at start), and tightens what
already exists (a state directory created by an older version with 0755/0644, a key file
copied with a loose mode) before it opens anything, logging each change (paths only).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterable
from pathlib import Path

from engine.config import PartyConfig
from engine.errors import ConfigError

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def make_private(config: PartyConfig) -> list[Path]:
    """Create the state directory (0700) and tighten it, its contents and the party's key
    files to owner-only modes; return the paths whose mode changed.

    Sets the process umask to 077 so that files created later are private too. Raises
    ConfigError if a mode cannot be changed (a file owned by another user).
    """
    os.umask(PRIVATE_UMASK)
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    keys = [config.tls_key, config.signing_key]
    if config.log_key is not None:
        keys.append(config.log_key)
    changed = []
    for path, mode in (*_tree(config.state_dir), *((k, FILE_MODE) for k in keys if k.exists())):
        if _tighten(path, mode):
            changed.append(path)
    return changed


def _tree(root: Path) -> Iterable[tuple[Path, int]]:
    yield root, DIRECTORY_MODE
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories:
            yield Path(directory, name), DIRECTORY_MODE
        for name in files:
            yield Path(directory, name), FILE_MODE


def _tighten(path: Path, mode: int) -> bool:
    """Clear the group and other bits of ``path`` (no symlinks followed); return whether
    its mode changed."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
    except FileNotFoundError:
        return False  # removed meanwhile (a worker's socket, a SQLite -shm file)
    except PermissionError:
        raise ConfigError(
            f"{path}: got mode {stat.S_IMODE(info.st_mode):04o} that this user cannot "
            f"change, want {mode:04o} (owner only)"
        ) from None
    log.warning(
        "%s: mode %04o was readable by others; now %04o",
        path,
        stat.S_IMODE(info.st_mode),
        stat.S_IMODE(info.st_mode) & mode,
    )
    return True


def private_database(path: Path) -> sqlite3.Connection:
    """Open (creating) a SQLite file of the state directory for one daemon's threads:
    owner-only (0600), WAL with full sync (a record survives a crash once committed),
    autocommit (callers open their own transactions). The caller serializes access."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    os.chmod(path, FILE_MODE)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return db
