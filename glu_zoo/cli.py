"""The `glu-zoo` command: list, train, evaluate and interpret.

    glu-zoo list
    glu-zoo train activator_vit_digits [--epochs N] [--out DIR] [--backend B]
                  [--precision mixed_bfloat16] [--distribute data|model]
                  [--backup-interval SECONDS] [--overwrite]
    glu-zoo evaluate activator_vit_digits [--json]     # a preset name, a preset folder or a run folder
    glu-zoo interpret bilinear_digits [--out DIR] [--json] [-k K]

`--backend` sets KERAS_BACKEND before Keras is imported. Unless the user set
TF_CPP_MIN_LOG_LEVEL, the backends' C++ INFO and WARNING lines and the CUDA
probes of a machine without a GPU ("failed call to cuInit", "Could not find
cuda drivers") are kept off stderr.
"""

import argparse
import contextlib
import json
import os
import re
import sys
import threading

BACKENDS = ("jax", "tensorflow", "torch")


def _parser():
    parser = argparse.ArgumentParser(prog="glu-zoo", description="glu_zoo: recipes, presets and training.")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: KERAS_BACKEND)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="recipes and shipped presets, with their metrics")
    train = commands.add_parser("train", parents=[backend], help="train a recipe with model.fit")
    train.add_argument("recipe")
    train.add_argument("--epochs", type=int, help="override the recipe's epochs")
    train.add_argument("--out", help="run folder (default runs/RECIPE); an interrupted run there resumes")
    train.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"))
    train.add_argument("--distribute", choices=("data", "model"),
                       help="data parallel over all devices, or model parallel (FFN hidden axis and attention "
                            "heads sharded; language models) combined with data parallel (JAX)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--backup-interval", type=float, default=60.0, metavar="SECONDS",
                       help="back up at an epoch's end at most this often (0: every epoch; default 60); "
                            "a killed run resumes from its last backup")
    train.add_argument("--overwrite", action="store_true", help="train over a finished run in the run folder")
    evaluate = commands.add_parser("evaluate", parents=[backend], help="test metrics of a preset")
    evaluate.add_argument("preset", metavar="PRESET_OR_DIR")
    evaluate.add_argument("--json", action="store_true", help="one JSON line: metrics, backend, ...")
    interpret = commands.add_parser("interpret", parents=[backend],
                                    help="read a preset's GLU weights: bilinear eigenvectors or the GLU logit lens")
    interpret.add_argument("preset", metavar="PRESET_OR_DIR")
    interpret.add_argument("--out", help="folder for the PNG plots (none without it)")
    interpret.add_argument("--json", action="store_true", help="the whole result as one JSON line")
    interpret.add_argument("-k", type=int, help="eigen-components per output (default 3) or top tokens per neuron "
                                                "(default 10)")
    return parser


# Lines that the backends write on stderr from C++ (absl's format: severity,
# date, time, thread, file:line]) at INFO and WARNING level, which
# TF_CPP_MIN_LOG_LEVEL cannot stop before absl's logging is initialised, and
# the CUDA probes of a machine without a GPU, which TensorFlow logs as errors.
_NOISE = re.compile(
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.-]+:\d+\] "
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "  # the format of older TensorFlow
    rb"|To enable the following instructions: "
    rb"|.*(cuInit|cuda drivers|Unable to register cu(DNN|FFT|BLAS) factory)"
)


@contextlib.contextmanager
def _quiet_backend_logs():
    """Unless the user set TF_CPP_MIN_LOG_LEVEL: set it to 2 (before any
    backend is imported) and pass stderr (fd 2, where C++ code writes too)
    through a filter that drops `_NOISE` lines; everything else is kept."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not _NOISE.match(line):
                    os.write(stderr, line)

    # A daemon, joined with a timeout: a child process that inherited fd 2
    # may keep the pipe open after we let go of it.
    thread = threading.Thread(target=pump, name="glu-zoo-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # closes our write end of the pipe: the pump reads to its end
        thread.join(timeout=5)


def _set_backend(backend):
    if not backend:
        return
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != backend:
        raise ValueError(f"--backend {backend}: Keras is already imported with another backend.")
    os.environ["KERAS_BACKEND"] = backend


def _list():
    from glu_zoo import presets, recipes

    print("recipes:")
    for name in recipes.list_recipes():
        r = recipes.get(name)
        limits = "".join(f", {k} <= {v}" for k, v in r.limits.items())
        bound = ">=" if r.metric_mode == "max" else "<="
        print(f"  {name:32s} {r.architecture} on {r.data}, {r.epochs} epochs; target {r.metric} {bound} {r.target}"
              f"{limits}")
    print("presets:")
    for name in presets.list_presets():
        m = presets.get_metadata(name)
        metrics = ", ".join(f"{k} {_number(v)}" for k, v in m.get("test_metrics", {}).items())
        print(f"  {name:32s} {m['class_name']}, {m['parameters']:,} parameters, trained on {m['backend']}; "
              f"test {metrics}")


def main(argv=None):
    args = _parser().parse_args(argv)
    with _quiet_backend_logs():
        return _run(args)


def _run(args):
    try:
        if args.command == "list":
            _list()
            return 0
        _set_backend(args.backend)
        from glu_zoo import presets, training

        if args.command == "train":
            result = training.train(
                args.recipe, epochs=args.epochs, out=args.out, precision=args.precision,
                distribute=args.distribute, verbose=0 if args.quiet else "auto",
                backup_interval=args.backup_interval, overwrite=args.overwrite,
            )
            metric, target = next(iter(result["target"].items()))
            rate = result["examples_per_second"]
            limits = "".join(f", {name} {_number(result['metrics'].get(name))} (at most {limit})"
                             for name, limit in result.get("limits", {}).items())
            print(f"{result['recipe']} on {result['backend']}: test {metric} {_number(result['metrics'][metric])} "
                  f"(target {'at most ' if result.get('metric_mode') == 'min' else ''}{target}{limits}; {'reached' if result['reached'] else 'NOT reached'})"
                  + ("" if rate is None else f"; {rate:.0f} training examples/s"))
            print(f"preset: {result['preset']}")
            return 0
        if args.command == "interpret":
            from glu_zoo.interpret import interpret_preset

            result = interpret_preset(args.preset, out=args.out, k=args.k, verbose=not args.json)
            print(presets.dump_json(result) if args.json else _summary(result))
            return 0
        result = training.evaluate(args.preset)
        if args.json:
            print(presets.dump_json(result))
        else:
            metrics = ", ".join(f"{k} {_number(v)}" for k, v in result["metrics"].items())
            print(f"{args.preset} ({result['source']} preset {result['preset']}) on {result['backend']}: "
                  f"test {metrics}; largest difference from recorded outputs {result['expected_output_error']:.2e}")
        return 0
    except ValueError as error:
        print(f"glu-zoo: error: {error}", file=sys.stderr)
        return 2


def _summary(result):
    """The human-readable lines of an `interpret` result."""
    lines = [f"{result['preset']} on {result['backend']}: {result['analysis']} analysis"]
    if result["analysis"] == "bilinear":
        for row in result["outputs"]:
            share = next(v for key, v in row.items() if key.startswith("share_top_"))
            values = ", ".join(f"{v:+.3f}" for v in row["top_eigenvalues"])
            lines.append(f"  output {row['label']}: top eigenvalues {values}; they hold {share:.1%} of Q")
        if "accuracy_against_k" in result:
            pairs = ", ".join(f"{k}: {v:.3f}" for k, v in result["accuracy_against_k"].items())
            lines.append(f"  test accuracy with the top k components per class: {pairs} "
                         f"(full model {result['full_accuracy']:.3f})")
    else:
        lines.append(f"  unembedding: {result['unembedding']}; candidates: {result['candidates']}")
        for layer in result["layers"]:
            lines.append(f"  {layer['name']} ({layer['hidden']} neurons), strongest value vectors' top tokens:")
            lines.extend(f"    #{n['index']}: {' '.join(n.get('tokens', map(str, n['ids'])))}" for n in layer["neurons"])
        if "search" in result:
            found = ", ".join(f"{n['layer']}#{n['index']} ({n['score']:.2f})" for n in result["search"]["neurons"])
            lines.append(f"  neurons promoting {' '.join(result['search'].get('tokens', []))}: {found}")
        if "ablation" in result:
            a = result["ablation"]
            lines.append(f"  held-out loss {a['loss_before']:.4f} -> {a['loss_after']:.4f} with those "
                         f"{a['neurons']} neurons ablated ({a['change']:+.4f}; as many random neurons: "
                         f"{a['random_baseline']['change']:+.4f})")
        if "heads" in result:
            lines.append("  heads driving them most: " + ", ".join(
                f"{h['layer']} head {h['head']} ({h['score']:.3f})" for h in result["heads"][:5]))
    lines.extend(f"  plot: {path}" for path in result.get("plots", []))
    return "\n".join(lines)


def _number(value):
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
