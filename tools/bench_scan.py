"""Benchmark the scan modes of LRU and RG-LRU: time and peak memory of
"parallel", "sequential" and "auto", for T in 256, 1024, 4096, 16384.

Width 256, batch 8, float32: LRU(state_dim=256) on 256 features, RGLRU(256,
num_heads=4). One process per (backend, layer, T), in which the three modes
are timed in alternating rounds (median seconds per call) as users run them:
`predict_on_batch` (forward) and `train_on_batch` (forward, backward, SGD),
compiled with XLA on JAX and TensorFlow, eager on torch. Peak memory is the
largest resident-set growth over the process's idle level, sampled every
0.5 ms while that mode runs (glibc is told to give large blocks back, so
the resident set follows live memory).

    python tools/bench_scan.py                              # all backends
    python tools/bench_scan.py --backends jax --lengths 256,1024
    python tools/bench_scan.py --write docs/benchmarks.md
    python tools/bench_scan.py --table                       # print the AUTO table to paste into recurrent.py
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

from benchlib import write_block

BACKENDS = ("jax", "tensorflow", "torch")
LAYERS = ("LRU", "RGLRU")
LENGTHS = (256, 1024, 4096, 16384)
MODES = ("parallel", "sequential", "auto")
KINDS = ("forward", "train")
WIDTH, BATCH = 256, 8
AIM = 1.10


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest resident set seen by a sampling thread while the block runs."""

    def __enter__(self):
        self.base = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def worker(backend, layer_name, length, rounds, budget, skip=(), kinds=KINDS):
    """Times and peak memory of the modes for each kind; `skip` holds
    "kind:mode" entries not to run."""
    import numpy as np

    import keras

    from glu_zoo.layers import LRU, RGLRU
    from glu_zoo.layers.recurrent import _resolve_mode

    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(BATCH, length, WIDTH)).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.normal(size=(BATCH, length, WIDTH)).astype("float32"))

    def make(mode):
        layer = LRU(WIDTH, mode=mode) if layer_name == "LRU" else RGLRU(WIDTH, num_heads=4, mode=mode)
        model = keras.Sequential([keras.Input((length, WIDTH)), layer])
        model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse",
                      jit_compile=keras.backend.backend() != "torch")
        return {"forward": lambda: keras.ops.convert_to_numpy(model.predict_on_batch(x)),
                "train": lambda: float(model.train_on_batch(x, y))}

    # What "auto" runs: predict_on_batch passes training=False, train_on_batch True.
    auto = {"forward": _resolve_mode("auto", length, False), "train": _resolve_mode("auto", length, True)}
    skip = set(skip) | {f"{k}:auto" for k in KINDS if f"{k}:{auto[k]}" in skip}
    steps = {mode: make(mode) for mode in MODES if any(f"{k}:{mode}" not in skip for k in kinds)}
    result = {"backend": backend, "layer": layer_name, "length": length, "auto": auto,
              "times": {}, "peak_mib": {}, "rounds": {}, "skipped": sorted(skip)}
    for kind in kinds:
        calls = {mode: s[kind] for mode, s in steps.items() if f"{kind}:{mode}" not in skip}
        first = {}
        for mode, call in calls.items():  # compile, settle, and measure memory
            call()
            idle = _rss_bytes()
            with PeakRSS() as peak:
                t0 = time.perf_counter()
                call()
                first[mode] = time.perf_counter() - t0
            result["peak_mib"].setdefault(kind, {})[mode] = (peak.peak - idle) / 2**20
        # As many alternating rounds as fit the budget (at least one).
        n = max(1, min(rounds, int(budget / max(sum(first.values()), 1e-9))))
        times = {mode: [first[mode]] for mode in calls}
        for _ in range(n - 1):
            for mode, call in calls.items():
                t0 = time.perf_counter()
                call()
                times[mode].append(time.perf_counter() - t0)
        result["times"][kind] = {mode: statistics.median(times[mode]) if mode in times else None for mode in MODES}
        for mode in MODES:
            result["peak_mib"].setdefault(kind, {}).setdefault(mode, None)
        result["rounds"][kind] = n
    return result


def table(results):
    lines = [
        f"LRU (state 256) and RG-LRU (4 heads) on width {WIDTH}, batch {BATCH}, float32, "
        f"{platform.machine()} CPU with {os.cpu_count()} cores. Median ms per call (alternating "
        "rounds in one process per backend, layer and T); peak MiB = largest resident-set growth "
        "during the call.",
        "",
        "| backend | layer | T | auto → (fwd, train) | fwd parallel ms | fwd sequential ms | fwd auto/best | "
        "train parallel ms | train sequential ms | train auto/best | train peak MiB par / seq |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    ms = lambda v: "skipped" if v is None else f"{1e3 * v:,.1f}"  # noqa: E731
    mib = lambda v: "–" if v is None else f"{v:,.0f}"  # noqa: E731

    def ratio(times, pick):
        """(time of the mode auto picks / best, auto's own measured time / best)."""
        done = [times[m] for m in ("parallel", "sequential") if times[m] is not None]
        if not done:
            return float("inf"), float("inf")
        best = min(done)
        picked = times[pick] / best if times[pick] is not None else float("inf")
        measured = times["auto"] / best if times["auto"] is not None else float("inf")
        return picked, measured

    worst_measured = 0.0
    for r in results:
        f, t, m = r["times"]["forward"], r["times"]["train"], r["peak_mib"]["train"]
        (fp, fm), (tp, tm) = ratio(f, r["auto"]["forward"]), ratio(t, r["auto"]["train"])
        worst, worst_measured = max(worst, fp, tp), max(worst_measured, fm, tm)
        lines.append(
            f"| {r['backend']} | {r['layer']} | {r['length']} | {r['auto']['forward'][:3]}, {r['auto']['train'][:3]} | "
            f"{ms(f['parallel'])} | "
            f"{ms(f['sequential'])} | {fp:.2f} ({fm:.2f}) | {ms(t['parallel'])} | {ms(t['sequential'])} | "
            f"{tp:.2f} ({tm:.2f}) | {mib(m['parallel'])} / {mib(m['sequential'])} |"
        )
    lines += ["", f"auto/best: the time of the mode auto picks over the faster mode's, worst over all rows "
              f"{worst:.2f} (aim ≤ {AIM:.2f}); in brackets auto's own instance, timed beside them (worst "
              f"{worst_measured:.2f}): the same code as the mode it picks, so its distance from that mode is the "
              f"run-to-run spread. \"skipped\": that call at the previous T, times the growth in T, was over "
              f"the {{max_call}} s limit."]
    return "\n".join(lines)


def auto_table(results):
    """The faster train-step mode per backend: what `_AUTO_MODE` should say,
    and for which T (the smallest T from which parallel wins, if it ever does)."""
    out = {}
    for backend in sorted({r["backend"] for r in results}):
        rows = [r for r in results if r["backend"] == backend]
        wins = {r["length"]: (r["times"]["train"]["sequential"] is None
                              or r["times"]["train"]["parallel"] < r["times"]["train"]["sequential"]) for r in rows}
        out[backend] = wins
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=40.0, help="seconds of timed rounds per (case, kind)")
    parser.add_argument("--write", metavar="PATH", help="put the table into this markdown file")
    parser.add_argument("--max-call", type=float, default=60.0,
                        help="skip a mode whose call, extrapolated from the previous T, would take longer")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help="measure only these (forward, train); with --json they replace those of a saved case")
    parser.add_argument("--json", metavar="PATH", help="save the raw results after each case; with --resume, "
                        "cases already there are not run again")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("BACKEND", "LAYER", "T"), help=argparse.SUPPRESS)
    parser.add_argument("--skip", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        backend, layer, length = args.worker
        skip = [m for m in args.skip.split(",") if m]
        kinds = tuple(args.kinds.split(","))
        print("RESULT " + json.dumps(worker(backend, layer, int(length), args.rounds, args.budget, skip, kinds)),
              flush=True)
        return
    results = []
    kinds = args.kinds.split(",")
    if set(kinds) - set(KINDS):
        parser.error(f"--kinds: allowed: {', '.join(KINDS)}")
    partial = set(kinds) != set(KINDS)
    if (args.resume or partial) and args.json and os.path.exists(args.json):
        with open(args.json) as f:
            results = json.load(f)
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            parser.error(f"--backends: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        for layer in args.layers.split(","):
            if layer not in LAYERS:
                parser.error(f"--layers: unknown layer {layer!r}; allowed: {', '.join(LAYERS)}")
            previous = None
            for length in args.lengths.split(","):
                done = [r for r in results if (r["backend"], r["layer"], str(r["length"])) == (backend, layer, length)]
                if done and not partial:
                    previous = done[0]
                    continue
                skip = []
                if previous is not None:  # time grows at least linearly in T
                    growth = int(length) / previous["length"]
                    skip = [f"{k}:{m}" for k in kinds for m in ("parallel", "sequential")
                            if previous["times"][k][m] is None or previous["times"][k][m] * growth > args.max_call]
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
                       "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
                cmd = [sys.executable, __file__, "--worker", backend, layer, length,
                       "--rounds", str(args.rounds), "--budget", str(args.budget), "--skip", ",".join(skip),
                       "--kinds", args.kinds]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode or "RESULT " not in proc.stdout:
                    print(f"{backend} {layer} T={length}: FAILED\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
                    continue
                r = json.loads(proc.stdout.split("RESULT ", 1)[1])
                if done:  # a partial run: replace the kinds measured, keep the others
                    for key in ("times", "peak_mib", "rounds", "auto"):
                        done[0][key].update({k: r[key][k] for k in kinds})
                    done[0]["skipped"] = sorted({x for x in done[0]["skipped"] if x.split(":")[0] not in kinds}
                                                | set(r["skipped"]))
                    r = done[0]
                else:
                    results.append(r)
                previous = r
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(results, f, indent=1)
                for k in kinds:
                    t = r["times"][k]
                    print(f"{backend} {layer} T={length}: {k} " + ", ".join(
                        f"{m} {'skipped' if t[m] is None else f'{t[m]:.3f}s'}" for m in MODES)
                        + f" (auto = {r['auto'][k]})", file=sys.stderr, flush=True)
    text = table(results).replace("{max_call}", f"{args.max_call:g}")
    print(text)
    print("parallel faster (train) per T:", json.dumps(auto_table(results)), file=sys.stderr)
    if args.write:
        write_block(args.write, "bench_scan", "Scan modes of the linear recurrences (`tools/bench_scan.py`)", text)


if __name__ == "__main__":
    main()
