"""`python -m peakmixer …`: thin commands over the package.

profile    params / MACs / FLOPs of a model (JSON with --json)
train      train from a YAML config (+ --set key=value, --resume); torchrun for DDP
evaluate   metrics of a checkpoint on a split
export     a trained model for models/ (.pt, no optimiser state) or as ONNX (fp32, int8), checked
predict    predictions for unlabelled spectrum files with a .pt or .onnx model (torch or ONNX Runtime)
data       synth | import | download
sweep      resumable extractor x mixer x seeds sweeps into one table
results    the generated README / docs sections from the store (--readme writes, --check compares)
explain    predictions and Grad-CAM figures for your own spectrum files (exit 1 when some were refused)
ship       export a stored run to models/ with its model card
notebooks  run the paper notebooks with papermill (what ./run_all.sh calls)
bench      throughput and memory, as ratios measured in one run
calibrate  the default training budget on each synthetic benchmark (the calibration table in docs/)
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from peakmixer.architecture import IP_MODES
from peakmixer.config import add_threads_argument
from peakmixer.files import write_text


def _profile(args: argparse.Namespace) -> int:
    from peakmixer.ip import attach_ip
    from peakmixer.models import build_model, describe, profile_model

    model = build_model(
        args.extractor,
        args.mixer,
        n_classes=args.n_classes,
        width=args.width,
        blocks=args.blocks,
        mixer_layers=args.mixer_layers,
        mlp_layers=args.mlp_layers,
        input_length=args.input_length,
        hidden=args.hidden,
        mlp_hidden=args.mlp_hidden,
    )
    model = attach_ip(model, mode=args.ip, task="multilabel", channels=args.ip_channels)
    cost = profile_model(model)
    name = describe(model.spec) + (
        "" if args.ip == "off" else f" + IP ({args.ip}, {model.spec['ip']['channels']} ch)"
    )
    result = {"model": name, **cost, "input_length": args.input_length, "batch": 1}
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['model']}: {cost['params'] / 1e6:.3f} M params, {cost['macs'] / 1e9:.4f} GMACs "
            f"({cost['flops'] / 1e9:.4f} GFLOPs) per spectrum of {args.input_length} points"
        )
    return 0


def _train(args: argparse.Namespace) -> int:
    from peakmixer.config import ConfigError
    from peakmixer.train.config import load_config
    from peakmixer.train.loop import train

    cfg = load_config(args.config, args.set)
    if args.threads:
        cfg.threads = args.threads
    out = Path(cfg.out_dir)
    made = [f for f in ("last.pt", "best.pt", "metrics.json") if (out / f).exists()]
    if args.resume and "last.pt" not in made:
        raise ConfigError(f"{out}: nothing to resume (no last.pt); leave out --resume to start the run")
    if made and not args.resume:
        if not args.overwrite:
            raise ConfigError(
                f"{out} holds a run already ({', '.join(made)}): --resume continues it, --overwrite starts "
                "it again, or choose another out_dir"
            )
        for f in made:
            (out / f).unlink()
    try:
        summary = train(cfg, resume=args.resume)
    except KeyboardInterrupt:
        last = out / "last.pt"
        raise Interrupted(
            f"{last} holds the run as last saved: --resume continues it"
            if last.exists()
            else f"before the first checkpoint: nothing saved in {out}"
        ) from None
    keys = ("model", "best_epoch", "best_val", "train_seconds", "stopped")
    print(
        json.dumps(
            {k: summary[k] for k in keys if k in summary} | {"test": summary.get("test", {})}, default=str
        )[:2000]
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import tempfile

    from peakmixer.data.dataset import DatasetError
    from peakmixer.data.io.arguments import import_from_args
    from peakmixer.data.io.dataset_file import is_dataset_path
    from peakmixer.data.preprocess import from_record
    from peakmixer.train.checkpoint import checkpoint_axis, load_checkpoint
    from peakmixer.train.evaluate import evaluate_checkpoint

    def score(data: str | None, split: str) -> dict:
        if args.engine != "torch":
            from peakmixer.deploy.engines import open_model

            logits_of = open_model(args.checkpoint, args.engine).logits
        else:
            logits_of = None
        return {"engine": args.engine} | evaluate_checkpoint(
            args.checkpoint,
            split,
            data_path=data,
            device=args.device,
            allow_changed_splits=args.allow_changed_splits,
            predictions=args.out,
            logits_of=logits_of,
        )

    sources = args.sources or []
    if len(sources) <= 1 and all(is_dataset_path(s) for s in sources):
        metrics = score(str(sources[0]) if sources else None, args.split or "test")
    else:  # spectrum files and folders: imported onto the model's axis, with their labels, then scored
        ckpt = load_checkpoint(args.checkpoint)
        axis = checkpoint_axis(ckpt)
        pipeline = from_record(ckpt["preprocess"]) if ckpt.get("preprocess") else None
        with tempfile.TemporaryDirectory(prefix="peakmixer-evaluate-") as tmp:
            report = import_from_args(
                args,
                Path(tmp) / "scored.npz",
                axis=f"{float(axis[0])!r}:{float(axis[-1])!r}:{len(axis)}",
                preprocess=pipeline,  # raw files go through the model's own pipeline
            )
            if report.rejected:  # the refused spectra and why, beside the scores of the others
                print(report.summary().rsplit("\nreport: ", 1)[0], file=sys.stderr)
            if report.out is None:
                raise DatasetError(f"{' '.join(map(str, sources))}: no spectrum could be read to score")
            metrics = score(str(report.out), args.split or "all")
        metrics["data"] = [str(s) for s in sources]
    text = json.dumps(metrics, indent=1)
    if args.metrics:
        write_text(args.metrics, text + "\n")
    print(text if args.json else metrics_table(metrics))
    if args.out:
        print(f"per-spectrum predictions: {args.out}")
    return 0


def metrics_table(m: dict) -> str:
    """`evaluate`'s result for a terminal: the headline metrics, per label (multilabel) or the confusion
    matrix (multiclass), and what a reader must know."""
    lines = [
        f"{m['model']}",
        f"{m['checkpoint']} on split {m['split']!r} ({m['n']} spectra): {m['split_check']}",
    ]
    if "micro_f1" in m:
        keys = ("micro_f1", "macro_f1", "samples_f1", "hamming_accuracy", "emr")
        lines.append("  ".join(f"{k} {m[k]:.3f}" for k in keys))
        lines.append(f"{'label':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
        for name, r in m["per_label"].items():
            scores = f"{r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} {r['support']:>8}"
            lines.append(f"{name[:24]:<24} {scores}")
    else:
        lines.append(f"accuracy {m['accuracy']:.3f}  macro_f1 {m['macro_f1']:.3f}")
        names = [n[:12] for n in m["label_names"]]
        width = max(8, *(len(n) for n in names))
        lines.append("confusion (rows: true, columns: predicted)")
        lines.append(" " * width + " " + " ".join(f"{n:>{width}}" for n in names))
        for name, row in zip(names, m["confusion"], strict=True):
            lines.append(f"{name:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    lines += [f"warning: {w}" for w in m["warnings"]]
    return "\n".join(lines)


def _notebooks(args: argparse.Namespace) -> int:
    from peakmixer.config import apply_overrides
    from peakmixer.report.notebooks import NotebookFailed, run_notebooks

    kwargs = {"out_root": Path(args.figures)} if args.figures else {}
    extra = apply_overrides({}, args.set)
    extra |= {k: v for k, v in (("device", args.device), ("data_dir", args.data_dir)) if v}
    try:
        run_notebooks(args.profile, args.only, extra=extra, execution_timeout=args.timeout, **kwargs)
    except NotebookFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _bench(args: argparse.Namespace) -> int:
    from peakmixer.studies.bench import benchmark, benchmark_synth, describe_result
    from peakmixer.studies.bench_report import write_report

    if args.report:
        print(write_report(Path(args.report), quick=args.quick))
        return 0
    if args.engines:
        from peakmixer.studies.bench_engines import benchmark_engines, describe_engines

        sizes = {"widths": (args.width,)} if args.width else {}
        sizes |= {"batches": (args.batch,)} if args.batch else {}
        if args.quick:  # tiny sizes, for tests
            sizes = {"widths": (8,), "batches": (1, 4), "n_classes": 5, "repeats": 1, "seconds": 0.05} | sizes
        r = benchmark_engines(**sizes)
        print(json.dumps(r) if args.json else describe_engines(r))
        return 0
    if args.synth:
        r = benchmark_synth(args.synth, args.n, version=args.version)
        ratio = r["spectra_per_s"] / r["target_per_s"]
        text = (
            f"{r['kind']} v{r['version']}: {r['n']} spectra generated and saved in {r['seconds']:.2f} s "
            f"(after {r['setup_seconds']:.1f} s of once-per-process setup)"
        )
        print(
            json.dumps(r)
            if args.json
            else f"{text} = {r['spectra_per_s']:.0f} spectra/s ({ratio:.2f} x target)"
        )
        return 0
    result = benchmark(
        extractor=args.extractor,
        mixer=args.mixer,
        width=args.width or 64,
        blocks=args.blocks,
        mixer_layers=args.mixer_layers,
        n_classes=args.n_classes,
        input_length=args.input_length,
        batch=args.batch or 64,
        steps=args.steps,
        device=args.device,
        compile_model=args.compile,
    )
    print(json.dumps(result) if args.json else describe_result(result))
    return 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    from peakmixer.architecture import DEFAULTS, EXTRACTORS, MIXERS

    p.add_argument("--extractor", default=DEFAULTS.extractor, choices=EXTRACTORS)
    p.add_argument("--mixer", default=DEFAULTS.mixer, choices=MIXERS)
    p.add_argument("--width", type=int, default=DEFAULTS.width, help="extractor channels (ResPeak 8a)")
    p.add_argument("--blocks", type=int, default=DEFAULTS.blocks, help="ResPeak blocks (default 6)")
    p.add_argument("--mixer-layers", type=int, default=DEFAULTS.mixer_layers)
    p.add_argument("--mlp-layers", type=int, default=DEFAULTS.mlp_layers)
    p.add_argument("--n-classes", type=int, default=957)
    p.add_argument("--input-length", type=int, default=DEFAULTS.input_length)
    p.add_argument("--hidden", type=int, default=DEFAULTS.hidden, help="mixer MLP hidden width")
    p.add_argument(
        "--mlp-hidden", type=int, default=DEFAULTS.mlp_hidden, help="width of the MLP mixer's layers"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _add_profile(p: argparse.ArgumentParser) -> None:
    _model_arguments(p)
    p.add_argument("--ip", default="off", choices=IP_MODES, help="interpretable path")
    p.add_argument("--ip-channels", type=int, default=0, help="C_ip (0: the extractor's width)")
    p.set_defaults(func=_profile)


def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="YAML file (see params/train/)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. optim.lr=1e-3"
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true", help="start again in an OUT_DIR that holds a run")
    add_threads_argument(p, "CPU threads (else the config's `threads`)")
    p.set_defaults(func=_train)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    from peakmixer.data.io.arguments import add_label_arguments, add_source_arguments

    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--split",
        default=None,
        help="split to score (default: test of a dataset file, all of imported files)",
    )
    p.add_argument(
        "--data",
        dest="sources",
        nargs="+",
        default=None,
        metavar="SOURCE",
        help="a dataset file (default: the one it was trained on), or labelled spectrum files and folders, "
        "read as `data import` reads them (with the label options below)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--engine",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="what computes the logits: torch, or ONNX Runtime on the CPU (the model exported in memory)",
    )
    p.add_argument("--out", default=None, help="write per-spectrum predictions here (CSV)")
    p.add_argument("--metrics", default=None, help="write the metrics here (JSON)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON, not as a table")
    p.add_argument(
        "--allow-changed-splits",
        action="store_true",
        help="score a split that holds spectra the run trained or validated on (said in the output)",
    )
    add_source_arguments(p, split=False)
    add_label_arguments(p)
    add_threads_argument(p)
    p.set_defaults(func=_evaluate)


def _add_notebooks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", choices=["smoke", "default", "full", "paper"])
    p.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK")
    p.add_argument("--figures", default=None, help="output root instead of <repo>/figures")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a notebook parameter where declared, e.g. seeds=[0] or data_dir=/tmp/d",
    )
    p.add_argument("--device", default=None, help="auto | cpu | cuda, for the notebooks that train")
    p.add_argument("--data-dir", default=None, help="where datasets are made and found (data_dir)")
    p.add_argument(
        "--timeout", type=int, default=None, help="seconds per cell (default by profile; 0: no limit)"
    )
    add_threads_argument(p, "CPU threads of the notebooks' kernels")
    p.set_defaults(func=_notebooks)


def _add_bench(p: argparse.ArgumentParser) -> None:
    _model_arguments(p)
    p.set_defaults(width=None, n_classes=17)  # width: 64, or with --engines both 64 and 160
    p.add_argument(
        "--synth",
        choices=["synth-ir17", "synth-bac30"],
        default=None,
        help="benchmark the synthetic generator instead of a model",
    )
    p.add_argument("--version", default=None, help="generator version with --synth (default: the default)")
    p.add_argument("--n", type=int, default=20_000, help="spectra to generate with --synth")
    p.add_argument(
        "--compile", action="store_true", help="also torch.compile the fast path (reports its time)"
    )
    p.add_argument(
        "--report", default=None, metavar="FILE", help="measure everything into FILE (BENCHMARKS.md)"
    )
    p.add_argument(
        "--engines",
        action="store_true",
        help="torch fp32 / bf16 and ONNX Runtime fp32 / int8 inference, at widths 64 and 160 and batches 1 "
        "and 64 unless --width / --batch name one",
    )
    p.add_argument("--quick", action="store_true", help="with --report or --engines: tiny sizes (tests)")
    p.add_argument("--batch", type=int, default=None, help="spectra per step (default 64)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="auto")
    add_threads_argument(p)
    p.set_defaults(func=_bench)


# Every command: its name, its one-line help, and what adds its options (a function here, or the module whose
# `add_arguments` does). Only the command being run is built, so `--help` imports neither torch nor RDKit.
COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None] | str], ...] = (
    ("profile", "params / MACs / FLOPs of a model at batch 1", _add_profile),
    ("train", "train from a YAML config", _add_train),
    ("evaluate", "metrics of a checkpoint on a split (and per-spectrum predictions)", _add_evaluate),
    (
        "export",
        "a trained model for models/ (.pt) or for deployment (ONNX fp32 / int8)",
        "peakmixer.commands.export",
    ),
    (
        "predict",
        "a model's predictions for unlabelled spectrum files, one CSV row each",
        "peakmixer.commands.predict",
    ),
    ("data", "make, import or download datasets", "peakmixer.commands.data"),
    ("sweep", "resumable extractor x mixer x seeds sweep into one table", "peakmixer.commands.sweep"),
    ("results", "the results store as the README's and docs' generated sections", "peakmixer.report.docs"),
    ("explain", "predictions and Grad-CAM figures for your own spectrum files", "peakmixer.report.explain"),
    ("ship", "export a stored run to models/ with its model card", "peakmixer.report.shipped"),
    ("notebooks", "run the notebooks with papermill into figures/<profile>/", _add_notebooks),
    ("bench", "fp32 eager vs the fast path: throughput, memory (ratios from one run)", _add_bench),
    (
        "calibrate",
        "the default training budget on each synthetic benchmark case (difficulty)",
        "peakmixer.studies.calibration",
    ),
    (
        "sim2real",
        "train on synthetic IR only, score on real labelled IR spectra",
        "peakmixer.commands.sim2real",
    ),
)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; of the commands, only the one `argv` names gets its options (and imports)."""
    parser = argparse.ArgumentParser(
        prog="python -m peakmixer",
        description="PeakMixer's commands; `python -m peakmixer COMMAND --help` for one command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    wanted = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    for name, help_text, add in COMMANDS:
        p = sub.add_parser(name, help=help_text)
        if name != wanted:
            continue
        if isinstance(add, str):
            importlib.import_module(add).add_arguments(p)
        else:
            add(p)
    return parser


@contextmanager
def _threads(args: argparse.Namespace) -> Iterator[None]:
    """The command's CPU threads: ``--threads``, else `train.default_threads`; restored afterwards (a command
    called in-process leaves the caller's count). Child processes (a notebook's kernel, sweep workers, which
    divide them among themselves) inherit the count as ``OMP_NUM_THREADS``."""
    import torch

    from peakmixer.train.device import default_threads

    n = args.threads or default_threads()
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


class Interrupted(Exception):
    """Ctrl-C, with where the interrupted work stands."""


# The commands that read or write the checkout's own files (params/, results/, models/, notebooks/).
CHECKOUT_COMMANDS = ("notebooks", "sweep", "results", "ship", "calibrate", "sim2real")


def main(argv: list[str] | None = None) -> int:
    from peakmixer.config import BadInput
    from peakmixer.paths import REPO_ROOT, in_checkout

    args = build_parser(argv).parse_args(argv)
    needs_checkout = args.command in CHECKOUT_COMMANDS or (args.command == "explain" and not args.checkpoint)
    if needs_checkout and not in_checkout():
        print(
            f"error: {args.command} works in a PeakMixer checkout, and {REPO_ROOT} is none (the package is "
            "installed outside it): set PEAKMIXER_REPO=/path/to/checkout, or `pip install -e .` from it",
            file=sys.stderr,
        )
        return 2
    try:
        if "threads" not in args:
            return args.func(args)
        with _threads(args):
            return args.func(args)
    except BadInput as e:
        # Expected bad input gets one line naming the file and the reason; a bug keeps its traceback.
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted) as e:
        where = f": {e}" if isinstance(e, Interrupted) else ""
        print(f"interrupted{where}", file=sys.stderr)
        return 130
