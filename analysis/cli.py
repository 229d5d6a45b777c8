"""`python -m analysis report|verdict|regenerate`: the same trial sources for all three."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dendrisweep import ArgumentParser, ExportError, UsageError, cli_errors, make_dir, positive
from dendrisweep.sweep import DEFAULT_RUNS_DIR, SweepSpec, default_storage_url, parse_gpus

if TYPE_CHECKING:  # the commands import the analysis (pandas, Optuna) when they run, not for --help
    from analysis.load import Trials


def _add_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", nargs="?", type=Path,
                        help="sweep YAML: analyse the study agent.py made for it (runs/<name>/study.db)")
    parser.add_argument("--storage", help="Optuna storage URL (with --study)")
    parser.add_argument("--study", help="study name in --storage")
    parser.add_argument("--wandb-dir", type=Path, help="W&B folder of offline runs (wandb/offline-run-*)")
    parser.add_argument("--wandb-sweep", help="ENTITY/PROJECT/SWEEP_ID on W&B (cached as parquet)")
    parser.add_argument("--metric", help="W&B sources: the objective (default: the W&B sweep's own metric; "
                                         "best_val_acc for --wandb-dir)")
    parser.add_argument("--goal", choices=("maximize", "minimize"), help="W&B sources: the metric's goal (default: "
                                                                          "the W&B sweep's own; maximize)")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="agent.py's runs folder")
    parser.add_argument("--baseline", type=Path, help="baseline sweep YAML (e.g. sweeps/kws_baseline.yaml)")
    parser.add_argument("--baseline-study", help="baseline study name (in --baseline-storage or --storage)")
    parser.add_argument("--baseline-storage", help="storage URL of --baseline-study")
    parser.add_argument("--baseline-wandb-sweep", metavar="ENTITY/PROJECT/ID", help="the baseline sweep on W&B")
    parser.add_argument("--out", type=Path, help="output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m analysis", allow_abbrev=False, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    report = commands.add_parser("report", help="report.html + report.md + trials.csv (default reports/<sweep>)")
    _add_sources(report)
    report.add_argument("--max-params", type=int, help="best trial with at most this many parameters")
    report.add_argument("--max-macs", type=int, help="best trial with at most this many MACs")
    report.add_argument("--min-accuracy", type=float, help="best trial with at least this val accuracy")
    report.add_argument("--within-pp", type=float, default=1.0,
                        help="compression: smallest model within this many points of the best baseline")
    verdict = commands.add_parser("verdict", help="re-train the top configs of a sweep and its baseline with fresh "
                                                  "seeds and say whether dendrites help, with intervals "
                                                  "(default reports/<sweep>/verdict.json, and the report)")
    _add_sources(verdict)
    verdict.add_argument("--top", type=positive(int), default=3, help="configs per sweep, by its metric (default 3)")
    verdict.add_argument("--front", type=positive(int), default=0, metavar="K",
                         help="also re-train K members of each family's Pareto front (accuracy vs flash, else "
                              "parameters), spread along it: the compression answer as a curve with intervals")
    verdict.add_argument("--seeds", type=positive(int), default=5, help="fresh seeds per config (default 5)")
    verdict.add_argument("--within-pp", type=float, default=0.5,
                         help="compression: not worse than the best baseline by more than this (default 0.5)")
    verdict.add_argument("--workers", type=positive(int), help="replicates at once on this machine (default: 1, or "
                                                               "one per GPU given with --gpus)")
    verdict.add_argument("--gpus", type=parse_gpus, metavar="0,1,...|all", help="pin each worker to one GPU, as "
                                                                                "agent.py --gpus does")
    verdict.add_argument("--heartbeat", type=positive(int), default=20, metavar="S",
                         help="seconds between heartbeats; a replicate silent for 3x this is lost and re-run")
    verdict.add_argument("--timeout-per-trial", type=positive(float), metavar="S", help="kill a replicate after S s")
    verdict.add_argument("--no-progress", action="store_true", help="no progress bar")
    verdict.add_argument("--include-capped", action="store_true",
                         help="let trials the epoch cap stopped before training was complete be candidates")
    verdict.add_argument("--min-effect", type=positive(float), default=0.10, metavar="ER",
                         help="the smallest error reduction worth finding, as a fraction (default 0.10): power and "
                              "the seeds needed are planned for it")
    verdict.add_argument("--schedule", type=_schedule, metavar="N,N,...",
                         help="declared looks, e.g. 5,10,20: run with --seeds 5, later 10, later 20; each look is "
                              "tested at its O'Brien-Fleming level, so adding seeds after a look stays valid")
    _add_data_directory(verdict)
    verdict.add_argument("--resample-split", action="store_true",
                         help="each replicate draws its own data split (train_trial.py's data_seed), so the "
                              "interval covers new splits too, where the data allows it")
    regenerate = commands.add_parser("regenerate", help="retrain, export and verify the best model and its "
                                                        "baseline (default artifacts/<sweep>)")
    _add_sources(regenerate)
    _add_data_directory(regenerate)
    regenerate.add_argument("--verdict", type=Path, help="verdict.json whose choice to regenerate (default "
                                                         "reports/<sweep>/verdict.json when it exists)")
    return parser


def _add_data_directory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-directory", type=Path, metavar="DIR",
                        help="train on this folder (default: the folder the sweep recorded, when this machine has "
                             "it); it must hold the data the sweep trained on (checked by digest)")


def _schedule(text: str) -> list[int]:
    """--schedule: increasing seed counts, at least 2 each."""
    try:
        looks = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--schedule: expected seed counts such as 5,10,20, got {text!r}") from None
    if len(looks) < 2 or looks != sorted(set(looks)) or looks[0] < 2:
        raise UsageError(f"--schedule: expected at least two increasing seed counts of 2 or more, got {text!r}")
    return looks


def resolve_source(opts: argparse.Namespace) -> Trials:
    """The trials named on the command line (exactly one source)."""
    from analysis import load

    given = [bool(opts.sweep), bool(opts.storage or opts.study), bool(opts.wandb_dir), bool(opts.wandb_sweep)]
    if sum(given) != 1:
        raise UsageError("name one source: a sweep YAML, --storage URL --study NAME, --wandb-dir DIR or "
                         "--wandb-sweep ENTITY/PROJECT/ID")
    if opts.sweep:
        return load.sweep_trials(opts.sweep, opts.runs_dir)
    if opts.storage or opts.study:
        if not (opts.storage and opts.study):
            raise UsageError("--storage and --study go together")
        return load.study_trials(opts.storage, opts.study)
    if (opts.metric or opts.goal) and not (opts.wandb_dir or opts.wandb_sweep):
        raise UsageError("--metric and --goal are for W&B sources; a study is analysed on its sweep's own metric")
    if opts.wandb_dir:
        return load.offline_trials(opts.wandb_dir, opts.metric or "best_val_acc", opts.goal != "minimize")
    return _wandb_sweep(opts.wandb_sweep, opts)


def _wandb_sweep(path: str, opts: argparse.Namespace) -> Trials:
    from analysis import load

    maximize = None if opts.goal is None else opts.goal == "maximize"
    return load.wandb_sweep_trials(path, opts.runs_dir, opts.metric, maximize)


def resolve_baseline(opts: argparse.Namespace) -> Trials | None:
    from analysis import load

    if opts.baseline_wandb_sweep:
        return _wandb_sweep(opts.baseline_wandb_sweep, opts)
    if opts.baseline:
        return load.sweep_trials(opts.baseline, opts.runs_dir)
    if opts.baseline_study:
        storage = opts.baseline_storage or opts.storage
        if not storage:
            raise UsageError("--baseline-study needs --baseline-storage (or --storage)")
        return load.study_trials(storage, opts.baseline_study)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    with cli_errors("python -m analysis"):
        opts = build_parser().parse_args(argv)
        source = resolve_source(opts)
        baseline = resolve_baseline(opts)
        if opts.command == "report":
            return _report(opts, source, baseline)
        if opts.command == "verdict":
            return _verdict(opts, source, baseline)
        return _regenerate(opts, source, baseline)


def _report_dir(opts: argparse.Namespace, source: Trials) -> Path:
    return make_dir(opts.out or Path("reports") / source.name, "the report folder")


def _report(opts: argparse.Namespace, source: Trials, baseline: Trials | None) -> int:
    from analysis.report import Constraints

    constraints = Constraints(opts.max_params, opts.max_macs, opts.min_accuracy)
    _write_report(source, baseline, _report_dir(opts, source), constraints, opts.within_pp)
    return 0


def _write_report(source: Trials, baseline: Trials | None, out: Path, constraints: Any, within_pp: float) -> None:
    """report.html / report.md / trials.csv, opening with the verdict when this sweep has one in `out`."""
    from analysis import verdict
    from analysis.report import build_sections, verdict_section, write_report

    sections = build_sections(source.df, source.metric, source.maximize, baseline.df if baseline else None,
                              constraints, within_pp)
    found = verdict.read(out / verdict.VERDICT_FILE, source.name)
    if found is not None:
        sections.insert(0, verdict_section(found))
    page = write_report(sections, source.df, out, f"Sweep report: {source.name}")
    print(f"{len(source.df)} trials -> {page} (also report.md, trials.csv)"
          + (" with the verdict" if found is not None else ""))


def _verdict(opts: argparse.Namespace, source: Trials, baseline: Trials | None) -> int:
    from analysis import verdict
    from analysis.report import Constraints

    families = _families(source, baseline, opts.data_directory)
    if opts.seeds < 2:
        raise UsageError("--seeds: at least 2 (an interval needs a spread)")
    storage = source.storage or default_storage_url(make_dir(opts.runs_dir / source.name, "the verdict's study folder"))
    out = _report_dir(opts, source)
    gpus = tuple(opts.gpus or ())
    if opts.schedule and opts.seeds not in opts.schedule:
        raise UsageError(f"--seeds {opts.seeds} is not a look of --schedule {','.join(map(str, opts.schedule))}")
    request = verdict.Request(opts.top, opts.seeds, opts.within_pp, opts.workers or len(gpus) or 1, gpus,
                              opts.heartbeat, opts.timeout_per_trial, not opts.no_progress, opts.include_capped,
                              opts.min_effect, tuple(opts.schedule or ()), opts.resample_split, opts.front)
    try:
        found = verdict.run(families[0], families[1], storage, opts.runs_dir, out, request)
    except verdict.NoVerdict as exc:
        print(f"python -m analysis: no verdict: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("python -m analysis: interrupted; finished replicates are kept, run the same command to resume",
              file=sys.stderr)
        return 130
    print(found.statement)
    for secondary in (found.equal_params, found.compression):
        if secondary is not None:
            print(secondary.statement)
    print(f"verdict: {out / verdict.VERDICT_FILE}")
    _write_report(source, baseline, out, Constraints(), opts.within_pp)
    return 0


def _families(source: Trials, baseline: Trials | None, data_directory: Path | None) -> list[Any]:
    """The verdict's two sides: the sweep and its baseline sweep, or one sweep that switches `dendrites` per
    trial (sweeps/kws_pareto.yaml), split by each trial's own setting and re-run by that same sweep."""
    from analysis import verdict
    from analysis.pareto import families

    if baseline is not None:
        return [verdict.Family(name, side.name, side.df, _replicable(side, data_directory))
                for name, side in ((verdict.DENDRITIC, source), (verdict.BASELINE, baseline))]
    split = families(source.df) if "dendrites" in source.df else {}
    if set(split) != {verdict.DENDRITIC, verdict.BASELINE}:
        raise UsageError("verdict needs a baseline sweep: --baseline BASELINE.yaml (or --baseline-study NAME, "
                         "--baseline-wandb-sweep ENTITY/PROJECT/ID), or one sweep whose finished trials have "
                         "dendrites on and off")
    spec = _replicable(source, data_directory)
    return [verdict.Family(name, source.name, split[name], spec) for name in (verdict.DENDRITIC, verdict.BASELINE)]


def _replicable(side: Trials, data_directory: Path | None) -> SweepSpec:
    """The sweep that re-runs a side's configs: the study's own, or a W&B sweep's config (its program, on
    this machine); on data proven by digest to be the sweep's when it is not the sweep's own folder."""
    from analysis.rank import best, recorded_data, row_config
    from dendrisweep import resolve_data
    from dendrisweep.sweep import parse_sweep

    spec = side.spec or (parse_sweep(side.wandb_config, Path(f"{side.name}.yaml")) if side.wandb_config else None)
    if spec is None:
        raise UsageError(f"verdict re-runs trials, so {side.name} must be a study agent.py made (a sweep YAML, "
                         "--storage/--study) or a W&B sweep (--wandb-sweep), not a folder of runs")
    if data_directory is None and side.spec is not None:
        return spec  # the study's own command names its data
    if not spec.ours:
        if data_directory is not None:
            raise UsageError(f"--data-directory: {side.name} runs {spec.program}, not train_trial.py; its command "
                             "names its data")
        return spec
    top = best(side.df, side.maximize)
    if top is None:
        raise UsageError(f"{side.name}: no finished trial to re-run")
    folder = resolve_data(data_directory, *recorded_data(top), row_config(top))
    return replace(spec, command=[*spec.command, *(["--data-directory", str(folder)] if folder else [])])


def _fetch(source: Trials) -> Callable[[str, Path], Path | None] | None:
    """For a W&B sweep: download a chosen run's own model (its `log_model` artifact) instead of retraining."""
    from analysis import load

    path = source.wandb_sweep
    return None if path is None else lambda run_id, into: load.download_model(path, run_id, into)


def _regenerate(opts: argparse.Namespace, source: Trials, baseline: Trials | None) -> int:
    from analysis import verdict
    from analysis.regenerate import regenerate

    out = make_dir(opts.out or Path("artifacts") / source.name, "the artifacts folder")
    if opts.verdict and not opts.verdict.is_file():
        raise UsageError(f"--verdict {opts.verdict}: no such file")
    chosen = verdict.read(opts.verdict or Path("reports") / source.name / verdict.VERDICT_FILE, source.name)
    try:
        comparison = regenerate(source.df, source.maximize, out, baseline.df if baseline else None, chosen,
                                project=source.name, data_dir=opts.data_directory, fetch=_fetch(source))
    except ExportError as exc:
        print(f"python -m analysis: export check failed: {exc}", file=sys.stderr)
        return 1
    repro = comparison["reproduction"]
    if not repro["within_tolerance"]:
        print(f"WARNING: the {repro['model']} best model scores {repro['regenerated']:.4f} ({repro['compared']}), "
              f"the sweep recorded {repro['recorded']:.4f} ({repro['difference_pp']:.2f} pp apart, more than "
              f"{repro['tolerance_pp']:g} pp): see comparison.md", file=sys.stderr)
    for name in ("dendritic", "baseline"):
        m = comparison[name]
        print(f"{name:>9}: val {m['best_val_acc']:.4f}  test {m['test_acc']:.4f}  onnx {m['onnx_acc']:.4f}  "
              f"tflite {m['tflite_acc']:.4f}  tflite int8 {m['tflite_int8_acc']:.4f}  params {m['params']}  "
              f"MACs {m['macs']}  {m['onnx_latency_ms']:.3f} ms  -> {out / m['files']['onnx']}")
    print(f"comparison: {out / 'comparison.md'}")
    return 0
