"""Regenerate the checked-in Python code from the .proto files under proto/.

The path of a .proto under proto/ is the import path of the generated module, so
proto/engine/rpc/jointstat.proto becomes engine/rpc/jointstat_pb2.py (plus _pb2_grpc.py
and the .pyi stubs). Run from anywhere: ``python proto/generate.py``. ``--check`` exits 1
when the checked-in code differs from what regeneration gives (used by CI).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"


def generate(out: Path) -> list[Path]:
    sources = sorted(PROTO.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    for source in sources:
        args = [
            "protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(source.relative_to(PROTO)),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {source}")
    return sorted(p.relative_to(out) for p in out.rglob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generated = generate(out)
        if args.check:
            stale = [
                p
                for p in generated
                if not (ROOT / p).exists() or not filecmp.cmp(out / p, ROOT / p, shallow=False)
            ]
            for path in stale:
                print(f"stale generated file: {path} (run python proto/generate.py)")
            return 1 if stale else 0
        for path in generated:
            shutil.copyfile(out / path, ROOT / path)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
