"""Installing and running the verifier pulls in no issuer machinery (DESIGN §3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import NOW, World

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = (
    "flask",
    "sqlalchemy",
    "jinja2",
    "werkzeug",
    "alembic",
    "dualres.issuer",
    "dualres.wallet",
)

_CHILD = """
import json, sys
from dualres.verifier import Bundle, MemoryReplayStore, verify
bundle = Bundle.load(sys.argv[1])
payloads = json.loads(open(sys.argv[2], encoding="utf-8").read())
reasons = [str(verify(p, bundle, prof, now=int(sys.argv[3]), replay=MemoryReplayStore()).reason)
           for p, prof in payloads]
loaded = sorted({".".join(n.split(".")[:2]) if n.startswith("dualres.") else n.split(".")[0]
                 for n in sys.modules})
print(json.dumps({"reasons": reasons, "modules": loaded}))
"""


def test_verifier_imports_no_issuer_stack(world: World, tmp_path: Path) -> None:
    bundle_path = tmp_path / "bundle.json"
    world.bundle().save(bundle_path)
    payloads = [
        (world.present(), "counter"),
        (world.present(qr=False, profile="office"), "office"),
        ("DR1:garbage", "counter"),
    ]
    payload_path = tmp_path / "payloads.json"
    payload_path.write_text(json.dumps(payloads), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(bundle_path), str(payload_path), str(NOW)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reasons"] == ["ok", "ok", "malformed"]
    loaded = set(out["modules"])
    assert "dualres.verifier" in loaded and "cryptography" in loaded
    assert not loaded & set(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
