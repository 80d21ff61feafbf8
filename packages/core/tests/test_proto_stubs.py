"""The committed Python stubs must be exactly what scripts/gen-protos.sh generates from proto/."""

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    protos = sorted((ROOT / "proto" / "gravity" / "v1").glob("*.proto"))
    assert protos, "no protos found"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT / 'proto'}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        *map(str, protos),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    generated = sorted(p.name for p in (tmp_path / "gravity" / "v1").iterdir())
    committed_dir = ROOT / "packages" / "core" / "src" / "gravity" / "v1"
    committed = sorted(
        p.name for p in committed_dir.iterdir() if p.name != "__init__.py" and p.suffix in (".py", ".pyi")
    )
    assert generated == committed, "stub files differ from protos: run scripts/gen-protos.sh"
    stale = [
        n
        for n in generated
        if not filecmp.cmp(tmp_path / "gravity" / "v1" / n, committed_dir / n, shallow=False)
    ]
    assert not stale, f"stale stubs {stale}: run scripts/gen-protos.sh"
