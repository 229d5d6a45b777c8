"""The command line of agent.py."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dendrisweep.errors import ArgumentParser, UsageError, cli_errors, positive
from dendrisweep.files import make_dir
from dendrisweep.sweep.samplers import SAMPLERS
from dendrisweep.sweep.spec import SweepSpec, load_sweep

DEFAULT_RUNS_DIR = Path("runs")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="agent.py", allow_abbrev=False,
                     description="Run a W&B sweep YAML: offline with Optuna (default), or on W&B (--wandb).")
    parser.add_argument("sweep", type=Path, help="sweep YAML, e.g. sweeps/quickstart.yaml")
    parser.add_argument("--count", type=positive(int), help="trials this agent runs (like wandb agent --count)")
    parser.add_argument("--workers", type=positive(int), help="trials at once on this machine (default: 1, or one "
                                                               "per GPU given with --gpus)")
    parser.add_argument("--gpus", type=parse_gpus, metavar="0,1,...|all",
                        help="pin each worker to one of these GPUs (CUDA_VISIBLE_DEVICES, round robin)")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///runs/<study>/study.db); "
                                          "postgresql://... lets agents on many machines share one study, "
                                          "grpc://host:port goes through Optuna's storage proxy")
    parser.add_argument("--study", help="study name (default: the YAML file's name)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="search engine (default: auto for bayes; "
                                                            "random / grid follow the YAML's method)")
    parser.add_argument("--timeout-per-trial", type=positive(float), metavar="S", help="kill a trial after S s")
    parser.add_argument("--heartbeat", type=positive(int), default=20, metavar="S",
                        help="seconds between heartbeats; a trial silent for 3x this is lost and re-run")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR, help="local files (default: runs/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-flapping-guard", action="store_true",
                        help="go on when runs keep failing (default, as wandb agent: stop after 3 failed runs in "
                             "the first 60 s; also WANDB_AGENT_DISABLE_FLAPPING=true)")
    parser.add_argument("--max-initial-failures", type=positive(int),
                        default=int(os.environ.get("WANDB_AGENT_MAX_INITIAL_FAILURES") or 5), metavar="N",
                        help="stop once N runs failed and failures outnumber successes (default 5)")
    parser.add_argument("--wandb", action="store_true", help="create the sweep on W&B and run `wandb agent`")
    parser.add_argument("--project", help="W&B project of the runs, when the YAML names none (default: the study's "
                                          "name; with --wandb: W&B's default)")
    parser.add_argument("--entity", help="W&B entity for --wandb")
    return parser


def build_sync_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="agent.py sync", allow_abbrev=False,
                            description="Upload a study's offline W&B runs and make them one W&B sweep, which "
                                        "`wandb agent` can continue (needs a W&B account).")
    parser.add_argument("study_dir", type=Path, help="the study's run folder, e.g. runs/kws_dendrites")
    parser.add_argument("--project", required=True, help="W&B project for the runs and the sweep")
    parser.add_argument("--entity", help="W&B entity (default: your default entity)")
    parser.add_argument("--storage", help="the study's storage URL (default: STUDY_DIR/study.db)")
    parser.add_argument("--study", help="study name (default: STUDY_DIR's name)")
    parser.add_argument("--skip-upload", action="store_true",
                        help="the runs are on W&B already (wandb sync): only create the sweep")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with cli_errors("agent.py"):
        if args[:1] == ["sync"]:
            return sync_study(build_sync_parser().parse_args(args[1:]))
        opts = build_parser().parse_args(args)
        spec = load_sweep(opts.sweep)
        for warning in spec.warnings:
            print(f"agent.py: warning: {spec.path}: {warning}", file=sys.stderr)
        if opts.wandb:
            from dendrisweep.sweep.wandb_cloud import run_on_wandb

            return run_on_wandb(spec.raw, opts.project or spec.project, opts.entity, opts.count)
        return run_offline(spec, opts)


def sync_study(opts: argparse.Namespace) -> int:
    """The study's offline runs uploaded with `wandb sync`, then one W&B sweep made of them."""
    from dendrisweep.sweep.storage import default_storage_url, read_trials, stored_record
    from dendrisweep.sweep.wandb_cloud import agent_command, create_sweep, sweep_url, upload
    from dendrisweep.wandb_files import find_run_files

    study = opts.study or opts.study_dir.resolve().name
    attrs, trials = read_trials(opts.storage or default_storage_url(opts.study_dir), study)
    if "sweep" not in attrs:
        raise UsageError(f"study {study}: no sweep config recorded (was it made by agent.py?)")
    run_ids = {r.run_id for r in map(stored_record, trials) if r is not None and r.run_id}
    runs = find_run_files(opts.study_dir / "wandb")
    folders = sorted({f.parent for f in runs if f.stem.removeprefix("run-") in run_ids})
    if not folders:
        raise UsageError(f"no offline W&B runs of study {study} under {opts.study_dir / 'wandb'}")
    if not opts.skip_upload:
        upload(folders, opts.project, opts.entity)
    synced = [folder.name.rsplit("-", 1)[-1] for folder in folders]  # offline-run-<time>-<run id>
    sweep = create_sweep(attrs["sweep"], opts.project, opts.entity, synced)
    print(f"W&B sweep {sweep_url(sweep)} holds the study's {len(synced)} runs")
    print(f"continue the same search on any machine: {' '.join(agent_command(sweep.path, None)[2:])}")
    return 0


def run_offline(spec: SweepSpec, opts: argparse.Namespace) -> int:
    from dendrisweep.sweep.controller import AgentOptions, Controller, SweepSource
    from dendrisweep.sweep.storage import default_storage_url, open_storage, redact

    if spec.program is not None and "${program}" in spec.command and not Path(spec.program).is_file():
        raise UsageError(f"program {spec.program} not found from {Path.cwd()}; run agent.py where "
                         "`wandb agent` would run (the folder holding it)")
    study = opts.study or spec.name
    if opts.storage:
        open_storage(opts.storage)  # a bad URL fails before any folder is made
    run_dir = make_dir(opts.runs_dir / study, "the run folder")
    storage = opts.storage or default_storage_url(run_dir)
    options = AgentOptions(spec=spec, study_name=study, storage_url=storage, run_dir=run_dir,
                           workers=opts.workers or len(opts.gpus or ()) or 1, gpus=tuple(opts.gpus or ()),
                           count=opts.count, sampler=opts.sampler, timeout=opts.timeout_per_trial,
                           heartbeat=opts.heartbeat, progress=not opts.no_progress,
                           flapping_guard=not (opts.no_flapping_guard or _env_true("WANDB_AGENT_DISABLE_FLAPPING")),
                           max_initial_failures=opts.max_initial_failures, project=opts.project)
    controller = Controller(options, SweepSource(options))
    try:
        result = controller.run()
    except KeyboardInterrupt:
        print("agent.py: interrupted; running trials were recorded and will be re-run on resume", file=sys.stderr)
        return 130
    best = ("no metric" if spec.metric is None
            else f"Pareto front of {', '.join(n for n, _ in spec.objectives)}: {result.front} trials"
            if spec.multi_objective
            else f"best {spec.metric} {result.best_value:.4f} (trial {result.best.number})" if result.best is not None
            else "no finished trial yet")
    print(f"study {study}: {result.finished} finished, {result.failed} failed, {result.pruned} pruned; {best}")
    print(f"storage: {redact(storage)}   trials: {run_dir / 'trials'}   W&B offline runs: {run_dir / 'wandb'}")
    if not storage.startswith("grpc://"):  # optuna-dashboard reads the database behind a proxy, not the proxy
        print(f"browse: optuna-dashboard {redact(storage)}")
    if controller.flapping is not None:
        print(f"agent.py: error: {controller.flapping}; stopped, as wandb agent does (the failures and their "
              "stderr are in the study; --no-flapping-guard to go on regardless)", file=sys.stderr)
        return 1
    return 0


def parse_gpus(text: str) -> list[str]:
    """`--gpus`: GPU indices (`0,1,3`) or `all`, as this process sees them. Under a scheduler that already
    set CUDA_VISIBLE_DEVICES (Slurm's --gres), index i is its i-th entry, so workers stay on the GPUs
    the job was given."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if text.strip().lower() == "all":
        if visible:
            return visible
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError("--gpus all: this machine has no CUDA GPU (torch sees none)")
        return [str(i) for i in range(count)]
    gpus = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in gpus) or len(set(gpus)) != len(gpus):
        raise UsageError(f"--gpus: expected GPU indices such as 0,1 or 'all', got {text!r}")
    if visible:
        if max(int(g) for g in gpus) >= len(visible):
            raise UsageError(f"--gpus {text}: this job sees {len(visible)} GPU(s) (CUDA_VISIBLE_DEVICES="
                             f"{','.join(visible)})")
        return [visible[int(g)] for g in gpus]
    return gpus


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
