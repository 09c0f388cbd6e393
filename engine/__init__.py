"""jointstat engine: party daemons, query planning, MPC jobs, the analyst client and the CLI.

Only :mod:`engine.mpc._worker` imports MPyC; only :mod:`engine.daemon` and
:mod:`engine.client` use the generated protobuf code in :mod:`engine.rpc`.
"""

__version__ = "0.1.0"
