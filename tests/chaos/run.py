"""`make chaos`: the attack machine with random seeds until the time is up.

    python -m tests.chaos.run [--minutes 30] [--examples 10] [--steps 10] [--layer DIR] [--exec-wrapper]
    CHAOS_WITHOUT=forbidden,nested,after_raise python -m tests.chaos.run ...   # look past those

Each run is one pytest process of tests/chaos/test_chaos.py's random profile under a fresh
seed (printed first; ``pytest tests/chaos -k random --hypothesis-seed=SEED`` with the same
CHAOS_EXAMPLES/CHAOS_STEPS replays it). A failing run prints the shrunk step sequence and the
checker's verdict. At the end: dist/chaos/report.json (every environment's steps, items,
faults and verdicts) and dist/chaos/timeline.png (what was tried over time, and where the
invariant broke). Exit status 1 if any run found a violation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("CHAOS_OUT") or ROOT / "dist" / "chaos")


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.run", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES", "30")))
    parser.add_argument("--examples", type=int, default=10, help="environments per seed")
    parser.add_argument("--steps", type=int, default=10, help="steps per environment at most")
    parser.add_argument("--layer", default=os.environ.get("DEFER_TEST_LAYER", ""),
                        help="the layer under attack (default: dist/layer)")
    parser.add_argument("--exec-wrapper", action="store_true",
                        help="run the runtime under the layer's exec wrapper (its Runtime API proxy)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stop_at = time.monotonic() + args.minutes * 60
    runs: List[Dict[str, Any]] = []
    started = time.time()
    while time.monotonic() < stop_at:
        seed = random.randrange(1 << 32)
        report = OUT / f"run-{seed}.json"
        env = {**os.environ, "CHAOS_EXAMPLES": str(args.examples), "CHAOS_STEPS": str(args.steps),
               "CHAOS_REPORT": str(report), "CHAOS_EXEC_WRAPPER": "1" if args.exec_wrapper else "0"}
        if args.layer:
            env["DEFER_TEST_LAYER"] = args.layer
        print(f"chaos: seed {seed} ({args.examples} environments, up to {args.steps} steps each)", flush=True)
        # Under /tmp: the sandbox runs the function and the extension as Lambda's unprivileged
        # user, who cannot reach a folder of root's elsewhere (its socket would be refused).
        basetemp = Path(tempfile.gettempdir()) / f"defer-chaos-{seed}"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                               "tests/chaos/test_chaos.py", "-k", "random", f"--hypothesis-seed={seed}",
                               "--timeout=0",  # shrinking a long sequence outlasts the suite's 300 s
                               f"--basetemp={basetemp}"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0 and basetemp.is_dir():  # only a failing seed's logs are worth keeping, with the report
            shutil.copytree(basetemp, OUT / f"tmp-{seed}", ignore=shutil.ignore_patterns("*.sock", "journal*"),
                            dirs_exist_ok=True)
        shutil.rmtree(basetemp, ignore_errors=True)
        envs = json.loads(report.read_text()) if report.exists() else []
        verdict = ""
        if proc.returncode != 0:
            text = proc.stdout
            start = text.find("the invariant does not hold")
            verdict = text[start:start + 6000] if start >= 0 else text[-6000:]
            verdict = verdict.replace(str(basetemp), str(OUT / f"tmp-{seed}"))  # where its logs were kept
            print(f"chaos: seed {seed} FOUND:\n{verdict}", flush=True)
        runs.append({"seed": seed, "at_s": round(time.time() - started, 1), "ok": proc.returncode == 0,
                     "environments": envs, "verdict": verdict})
    summary = {
        "layer": args.layer or str(ROOT / "dist" / "layer"), "minutes": args.minutes, "seeds": len(runs),
        "without": os.environ.get("CHAOS_WITHOUT", ""),
        "environments": sum(len(r["environments"]) for r in runs),
        "items": sum(e.get("items", 0) for r in runs for e in r["environments"]),
        "faults": sum(e.get("faults", 0) for r in runs for e in r["environments"]),
        "failing_seeds": [r["seed"] for r in runs if not r["ok"]], "runs": runs,
    }
    (OUT / "report.json").write_text(json.dumps(summary, indent=1))
    _picture(runs, OUT / "timeline.png")
    print(f"chaos: {summary['seeds']} seeds, {summary['environments']} environments, {summary['items']} items, "
          f"{summary['faults']} faults; failing seeds: {summary['failing_seeds'] or 'none'}; "
          f"report in {OUT / 'report.json'}")
    return 1 if summary["failing_seeds"] else 0


def _picture(runs: List[Dict[str, Any]], path: Path) -> None:
    """Per seed, over the run's time: items deferred and faults tried; a failing seed in red."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(11, 4))
    for run in runs:
        items = sum(e.get("items", 0) for e in run["environments"])
        faults = sum(e.get("faults", 0) for e in run["environments"])
        color = "#2a9d8f" if run["ok"] else "#d62828"
        ax.bar(run["at_s"], items, width=4, color=color, alpha=0.8)
        ax.plot(run["at_s"], faults, "k^", markersize=4)
    ax.set_xlabel("seconds into the chaos run (one bar per seed: items deferred; ^ faults tried)")
    ax.set_ylabel("count")
    ax.set_title("lambda-defer chaos: green = invariant held, red = a violation was found")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
