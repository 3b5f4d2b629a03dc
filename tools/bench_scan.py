"""Benchmark the scan modes of LRU and RG-LRU: time and peak memory of
"parallel", "sequential", "chunked" and "auto", for T in 256, 1024, 4096,
16384; with --table, write the auto table (glu_zoo/ops/scan_auto.json).

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
    python tools/bench_scan.py --table                       # also write glu_zoo/ops/scan_auto.json

--table writes, for each backend measured, the rows of this device kind
("cpu", or "accelerator" on a GPU/TPU) of `glu_zoo/ops/scan_auto.json`:
per T measured, for the forward pass and the train step, the mode whose
worst time ratio to the fastest mode over the layers measured is smallest,
except that the previous T's mode (for the smallest T, "sequential") is
kept while its worst ratio is at most 1.10 (so that noise does not flip the
table); runs of equal modes merge into one row bounded by their largest T,
and the last row takes any T. Entries of backends or device kinds not measured are
kept from the file (an accelerator row never measured says
"measured": false). "auto" is timed as the table stood when the run began.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from benchlib import PeakRSS, rss_bytes, write_block

BACKENDS = ("jax", "tensorflow", "torch")
LAYERS = ("LRU", "RGLRU")
LENGTHS = (256, 1024, 4096, 16384)
SCANS = ("parallel", "sequential", "chunked")
MODES = SCANS + ("auto",)
KINDS = ("forward", "train")
WIDTH, BATCH = 256, 8
AIM = 1.10
AIM_JAX = 2.0  # every backend's auto within 2× of JAX's auto
TIE = 1.10  # --table: a mode within 10% of the fastest counts as fast
TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "glu_zoo", "ops", "scan_auto.json")


def worker(backend, layer_name, length, rounds, budget, skip=(), kinds=KINDS):
    """Times and peak memory of the modes for each kind; `skip` holds
    "kind:mode" entries not to run."""
    import numpy as np

    import keras

    from glu_zoo.layers import LRU, RGLRU
    from glu_zoo.ops.scan import device_kind, resolve_mode

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
    try:
        auto = {"forward": resolve_mode("auto", length, False), "train": resolve_mode("auto", length, True)}
    except FileNotFoundError:  # no auto table yet: time the modes only
        auto = {"forward": None, "train": None}
    skip = set(skip) | {f"{k}:auto" for k in KINDS if auto[k] is None or f"{k}:{auto[k]}" in skip}
    steps = {mode: make(mode) for mode in MODES if any(f"{k}:{mode}" not in skip for k in kinds)}
    result = {"backend": backend, "device": device_kind(), "layer": layer_name, "length": length, "auto": auto,
              "times": {}, "peak_mib": {}, "rounds": {}, "skipped": sorted(skip)}
    for kind in kinds:
        calls = {mode: s[kind] for mode, s in steps.items() if f"{kind}:{mode}" not in skip}
        first = {}
        for mode, call in calls.items():  # compile, settle, and measure memory
            call()
            idle = rss_bytes()
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


def lookup(rows, length):
    """The mode of auto-table `rows` for sequence length `length` (as glu_zoo.ops.scan.resolve_mode)."""
    return next((mode for bound, mode in rows if bound is None or length <= bound), rows[-1][1])


def table(results, auto_table=None):
    """The markdown table. With `auto_table` (a table just written from these
    results), "auto" is the mode that table picks; else the mode auto ran as."""

    def auto_mode(r, kind):
        if auto_table is None:
            return r["auto"][kind]
        return lookup(auto_table[r["backend"]][r.get("device", "cpu")][kind], r["length"])

    lines = [
        f"LRU (state 256) and RG-LRU (4 heads) on width {WIDTH}, batch {BATCH}, float32, "
        f"{platform.machine()} CPU with {os.cpu_count()} cores. Median ms per call (alternating "
        "rounds in one process per backend, layer and T); peak MiB = largest resident-set growth "
        "during the call. par = parallel, seq = sequential, chu = chunked.",
        "",
        "| backend | layer | T | auto → (fwd, train) | fwd par / seq / chu ms | fwd auto/best | fwd auto/JAX's | "
        "train par / seq / chu ms | train auto/best | train auto/JAX's | train peak MiB par / seq / chu |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ms = lambda v: "–" if v is None else f"{1e3 * v:,.0f}" if v >= 0.1 else f"{1e3 * v:,.1f}"  # noqa: E731
    mib = lambda v: "–" if v is None else f"{v:,.0f}"  # noqa: E731

    def picked(r, kind):
        """The time of the mode auto picks, its ratio to the fastest mode's, and auto's own measured ratio."""
        times = r["times"][kind]
        done = [times[m] for m in SCANS if times.get(m) is not None]
        mode = auto_mode(r, kind)
        pick = times.get(mode) if mode else None
        if not done or pick is None:
            return None, None, None
        best = min(done)
        # auto's own instance, when it ran the mode that auto now picks
        same = times.get("auto") is not None and r["auto"][kind] == mode
        measured = times["auto"] / best if same else None
        return pick, pick / best, measured

    jax = {(r["layer"], r["length"], k): picked(r, k)[0] for r in results if r["backend"] == "jax" for k in KINDS}
    worst = worst_measured = worst_jax = 0.0
    for r in results:
        cells = []
        for kind in KINDS:
            t = r["times"][kind]
            pick, ratio, measured = picked(r, kind)
            reference = jax.get((r["layer"], r["length"], kind))
            versus = pick / reference if pick is not None and reference else None
            if ratio is not None:
                worst = max(worst, ratio)
            if measured is not None:
                worst_measured = max(worst_measured, measured)
            if versus is not None:
                worst_jax = max(worst_jax, versus)
            cells += [" / ".join(ms(t.get(m)) for m in SCANS),
                      "–" if ratio is None else f"{ratio:.2f}" + ("" if measured is None else f" ({measured:.2f})"),
                      "–" if versus is None else f"{versus:.2f}"]
        m = r["peak_mib"]["train"]
        lines.append(f"| {r['backend']} | {r['layer']} | {r['length']} | {(auto_mode(r, 'forward') or '–')[:3]}, "
                     f"{(auto_mode(r, 'train') or '–')[:3]} | " + " | ".join(cells) + " | "
                     + " / ".join(mib(m.get(x)) for x in SCANS) + " |")
    source = ("the table written from this run (glu_zoo/ops/scan_auto.json)" if auto_table is not None
              else "the table as it stood when the run began")
    lines += ["", f"auto: the mode that {source} picks. auto/best: its time over the fastest mode's, worst over "
              f"all rows {worst:.2f} (aim ≤ {AIM:.2f}); in brackets auto's own instance, timed beside them where it "
              f"ran that mode (worst {worst_measured:.2f}): the same code, so its distance from that mode is the "
              f"run-to-run spread. auto/JAX's: the time of the mode auto picks over that of JAX's auto for the same "
              f"layer, T and kind, worst {worst_jax:.2f} (aim ≤ {AIM_JAX:.1f}). \"–\": skipped, that call at the "
              f"previous T, times the growth in T, was over the {{max_call}} s limit."]
    return "\n".join(lines)


def best_modes(results):
    """{(backend, device): {kind: [(T, mode), …]}}: per T, the mode whose worst
    ratio to the fastest mode over the layers measured is smallest."""
    out = {}
    for r in results:
        out.setdefault((r["backend"], r.get("device", "cpu")), {}).setdefault(r["length"], []).append(r)
    picks = {}
    for key, by_length in out.items():
        for kind in KINDS:
            rows = []
            for length in sorted(by_length):
                def worst(mode, rs=by_length[length]):
                    ratios = []
                    for r in rs:
                        times = r["times"][kind]
                        done = [times[m] for m in SCANS if times.get(m) is not None]
                        ratios.append(float("inf") if times.get(mode) is None else times[mode] / min(done))
                    return max(ratios)
                best = min(SCANS, key=worst)
                # Noise guard: keep the previous T's mode (at first "sequential") while it is within
                # TIE of the fastest, so that the table changes mode only on a clear win.
                keep = rows[-1][1] if rows else "sequential"
                rows.append((length, keep if worst(keep) <= TIE else best))
            picks.setdefault(key, {})[kind] = rows
    return picks


def write_auto_table(results, command, path=TABLE):
    """Replace this run's backends and device kinds in the auto table file."""
    table = json.load(open(path)) if os.path.exists(path) else {}
    table["_about"] = ("mode=\"auto\" of glu_zoo.ops.scan.linear_recurrence: per backend and device kind, rows "
                       "[T bound, mode] for the forward pass and the train step (the first row whose bound is at "
                       "least T wins; null: any T). Written by tools/bench_scan.py --table; not edited by hand.")
    for backend in ("jax", "tensorflow", "torch"):
        entry = table.setdefault(backend, {})
        entry.setdefault("accelerator", {
            "measured": False,
            "note": "never measured (no GPU or TPU was lent): parallel, the form that fills many cores",
            "forward": [[None, "parallel"]], "train": [[None, "parallel"]]})
    date = datetime.date.today().isoformat()
    for (backend, device), kinds in best_modes(results).items():
        entry = {"measured": f"{date}: {platform.machine()} with {os.cpu_count()} cores, {command}"}
        for kind, rows in kinds.items():
            merged = []
            for length, mode in rows:
                if merged and merged[-1][1] == mode:
                    merged[-1][0] = length
                else:
                    merged.append([length, mode])
            merged[-1][0] = None
            entry[kind] = merged
        table[backend][device] = entry
    with open(path, "w") as f:  # one line per device entry
        lines = [f' "_about": {json.dumps(table["_about"], ensure_ascii=False)}']
        for backend in sorted(k for k in table if k != "_about"):
            devices = ",\n".join(f'  "{d}": {json.dumps(e, ensure_ascii=False)}'
                                  for d, e in sorted(table[backend].items()))
            lines.append(f' "{backend}": {{\n{devices}\n }}')
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=40.0, help="seconds of timed rounds per (case, kind)")
    parser.add_argument("--write", metavar="PATH", help="put the table into this markdown file")
    parser.add_argument("--table", action="store_true",
                        help="write the auto table (glu_zoo/ops/scan_auto.json) from this run's results")
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
                    skip = [f"{k}:{m}" for k in kinds for m in SCANS
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
    written = None
    if args.table:
        argv, skip_next = [], False  # the measuring options (not where the results were saved)
        for arg in sys.argv[1:]:
            if skip_next or arg in ("--resume", "--table"):
                skip_next = False
                continue
            skip_next = arg in ("--json", "--write")
            if not skip_next and not arg.startswith(("--json=", "--write=")):
                argv.append(arg)
        command = "python tools/bench_scan.py " + " ".join(argv)
        written = write_auto_table(results, command)
        print(f"wrote {os.path.normpath(TABLE)}", file=sys.stderr)
    text = table(results, written).replace("{max_call}", f"{args.max_call:g}")
    print(text)
    if args.write:
        write_block(args.write, "bench_scan", "Scan modes of the linear recurrences (`tools/bench_scan.py`)", text)


if __name__ == "__main__":
    main()
