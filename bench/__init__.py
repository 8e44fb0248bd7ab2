"""Benchmarks: each writes one JSON result to bench/results/ and exits 1 if it missed a target."""

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def report(kind: str, result: dict) -> int:
    """Writes bench/results/<kind>-<time>.json, prints it; the exit code says if the targets held."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if all(result["targets"].values()) else 1
