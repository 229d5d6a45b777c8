"""Epoch time of real trials: baseline vs 1 and 2 dendrites, the overhead, and (MobileNet) what the
CPU optimisations buy.

Runs train_trial.py (W&B offline, PAI) on the offline data and prints tables: median seconds per
epoch grouped by the dendrites present, the ratio to the plain baseline measured in the same run
(these machines are noisy: compare ratios, not seconds), and the share of an epoch spent outside
forward/backward/evaluation. With --task mobilenet it also times a naive training loop (an
ImageFolder of PNG files decoded by a DataLoader every epoch, NCHW tensors, validation with
autograd on) against dendrisweep's (images decoded once, channels_last, validation under no_grad).

With --device cuda (or mps) it times the same trials on the CPU and on that device instead, and
prints the speed-up (MobileNet trains on 3x32x32 images: CIFAR-shaped).

    python bench/trial_speed.py [--task kws|mobilenet] [--epochs N] [--repeats 1] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETTINGS = {
    "kws": ["--switch-mode", "fixed", "--fixed-switch-num", "6", "--max-dendrites", "2"],
    "mobilenet": ["--task", "mobilenet", "--width-multiplier", "0.5", "--switch-mode", "fixed",
                  "--fixed-switch-num", "3", "--max-dendrites", "2", "--dendrite-layers", "all"],
}
DENDRITIC = ["--max-dendrite-tries", "1", "--improvement-threshold", "0"]


def run(args: list[str], out: Path) -> tuple[dict, list[dict]]:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(out)}
    subprocess.run([sys.executable, str(ROOT / "train_trial.py"), *args, "--out-directory", str(out)],
                   check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    trial = max(out.glob("trial-*"), key=lambda p: p.stat().st_mtime)
    history = [json.loads(line) for line in (trial / "history.jsonl").read_text().splitlines()]
    return json.loads((trial / "result.json").read_text()), history


def dendrite_table(task: str, epochs: int, repeats: int) -> None:
    epochs_by: dict[str, list[dict]] = defaultdict(list)
    loop = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for label, extra in (("baseline", ["--dendrites", "0"]), ("dendritic", DENDRITIC)):
                result, history = run([*SETTINGS[task], *extra, "--epochs", str(epochs)],
                                      Path(tmp) / f"{label}{repeat}")
                loop[label].append(1 - result["compute_seconds"] / result["train_seconds"])
                for h in history[1:]:  # the first epoch pays one-off warm-up costs
                    key = "baseline (plain model)" if label == "baseline" else f"PAI, {h['dendrites_added']} dendrites"
                    epochs_by[key].append(h)
    reference = statistics.median(h["epoch_seconds"] for h in epochs_by["baseline (plain model)"])
    print(f"{task}: epoch time by dendrites")
    print(f"{'model':<26}{'epochs':>8}{'s/epoch':>10}{'x baseline':>12}{'outside fwd/bwd':>17}")
    for key, rows in epochs_by.items():
        seconds = statistics.median(h["epoch_seconds"] for h in rows)
        outside = statistics.median(1 - h["compute_seconds"] / h["epoch_seconds"] for h in rows)
        print(f"{key:<26}{len(rows):>8}{seconds:>10.3f}{seconds / reference:>12.2f}{outside:>16.1%}")
    for label, shares in loop.items():
        print(f"whole loop incl. W&B logging, {label}: {statistics.median(shares):.1%} outside fwd/bwd")


def device_table(task: str, epochs: int, device: str) -> None:
    """The same trials on the CPU and on `device`: median s/epoch and the speed-up."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (("baseline", ["--dendrites", "0"]), ("dendritic", DENDRITIC)):
            seconds = {}
            for where in ("cpu", device):
                result, history = run([*SETTINGS[task], *extra, "--epochs", str(epochs), "--device", where],
                                      Path(tmp) / f"{label}-{where}")
                seconds[where] = statistics.median(h["epoch_seconds"] for h in history[1:])
                name = result["device_name"]
            rows.append((label, seconds["cpu"], seconds[device], name))
    print(f"{task}: s/epoch on the CPU and on {device}")
    print(f"{'model':<12}{'cpu':>10}{device:>10}{'speed-up':>10}  device")
    for label, cpu, other, name in rows:
        print(f"{label:<12}{cpu:>10.3f}{other:>10.3f}{cpu / other:>9.2f}x  {name}")


def naive_vs_ours(epochs: int) -> None:
    """The same plain MobileNet epoch, the naive way and dendrisweep's way."""
    import torch
    from PIL import Image
    from torch import nn
    from torchvision import datasets, transforms

    from dendrisweep.data import load_dataset
    from dendrisweep.device import Precision
    from dendrisweep.models import build_model
    from dendrisweep.settings import defaults
    from dendrisweep.trial.trainer import Baseline, _train_epoch, score

    config = {**defaults(), "task": "mobilenet", "width_multiplier": 0.5, "dendrites": False, "test_fraction": 0.0}
    data = load_dataset(None, config)
    with tempfile.TemporaryDirectory() as tmp:
        from sklearn.datasets import load_digits

        digits = load_digits()
        for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            folder = Path(tmp) / ("train" if i % 5 else "val") / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((image / 16 * 255).astype("uint8")).convert("RGB").save(folder / f"{i}.png")
        transform = transforms.Compose([transforms.Resize(32), transforms.ToTensor(),
                                        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        loaders = {split: torch.utils.data.DataLoader(datasets.ImageFolder(f"{tmp}/{split}", transform),
                                                      batch_size=config["batch_size"], shuffle=split == "train")
                   for split in ("train", "val")}
        torch.manual_seed(0)
        model = build_model(config, data.shape).to(memory_format=torch.contiguous_format)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
        naive = []
        for _ in range(epochs):
            started = time.perf_counter()
            model.train()
            for x, y in loaders["train"]:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            model.eval()
            for x, y in loaders["val"]:  # autograd still recording, as many hand-written loops do
                nn.functional.cross_entropy(model(x), y)
            naive.append(time.perf_counter() - started)
    torch.manual_seed(0)
    model = build_model(config, data.shape)
    strategy = Baseline(config)
    optimizer = strategy.optimizer(model)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    generator, precision = torch.Generator().manual_seed(0), Precision(torch.device("cpu"))
    ours = []
    for epoch in range(epochs):
        started = time.perf_counter()
        _train_epoch(model, optimizer, x, y, config, generator, epoch, precision, precision.scaler())
        score(model, data.val)
        ours.append(time.perf_counter() - started)
    before, after = statistics.median(naive[1:]), statistics.median(ours[1:])
    print(f"mobilenet (width 0.5, 32x32 digits, {len(data.train.y)} train + {len(data.val.y)} val images, "
          f"{torch.get_num_threads()} threads): s/epoch, median of {epochs - 1}")
    print(f"{'naive: DataLoader re-decoding PNGs, NCHW, grad in validation':<64}{before:>8.2f}")
    print(f"{'dendrisweep: decoded once, channels_last, no_grad validation':<64}{after:>8.2f}")
    print(f"speed-up: {before / after:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SETTINGS), default="kws")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: 24 kws, 10 mobilenet)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", help="compare the CPU with this device (cuda, cuda:N, mps)")
    opts = parser.parse_args()
    epochs = opts.epochs or (24 if opts.task == "kws" else 10)
    if opts.device:
        device_table(opts.task, epochs, opts.device)
        return
    if opts.task == "mobilenet":
        naive_vs_ours(min(epochs, 4))
        print()
    dendrite_table(opts.task, epochs, opts.repeats)


if __name__ == "__main__":
    main()
