"""MPC workers for the peer-codec tests, started as ``python peer_workers.py MODE CONFIG``.

- ``evil``: a real MPyC party, our worker in every way but one: every secure-array share
  it sends is a crafted pickle that, if unpickled, creates the file named by the
  environment variable JOINTSTAT_TEST_MARKER (what an attacker's ``os.system`` would do).
  It reads what others send with the share codec, or pickle if they send pickles, so that
  it never drops out of the protocol first.
- ``unguarded``: our worker without the share codec (MPyC's own pickles), to show that the
  evil party's message really runs code where nothing stops it.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any

import numpy as np

from engine.errors import PeerError
from engine.mpc import _worker, share_codec


class _CreatesMarker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({self.path!r}, 'w').close()",))


class _EvilMarshal:
    def __init__(self, crafted: bytes) -> None:
        self._crafted = crafted
        self._shape: tuple[int, ...] = (0,)

    def dumps(self, value: object, *_: Any, **__: Any) -> bytes:
        if isinstance(value, np.ndarray):
            self._shape = value.shape
            return self._crafted
        return share_codec.encode(value)

    def loads(self, data: bytes, *_: Any, **__: Any) -> Any:
        if data == self._crafted:  # its own share, kept by MPyC: never run it here
            return np.zeros(self._shape, dtype=object)
        try:
            return share_codec.decode(data)
        except PeerError:
            return pickle.loads(data)


def _install_evil(runtime: Any, refusals: Any) -> None:
    runtime.pickle = _EvilMarshal(pickle.dumps(_CreatesMarker(os.environ["JOINTSTAT_TEST_MARKER"])))


def _install_nothing(runtime: Any, refusals: Any) -> None:
    pass


if __name__ == "__main__":
    mode = sys.argv.pop(1)
    _worker.install_peer_codec = {"evil": _install_evil, "unguarded": _install_nothing}[mode]
    _worker.main()
