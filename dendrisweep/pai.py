"""perforatedai wiring: configure its process-wide settings, wrap a model, read back what it did.

PAI keeps its settings on a process-wide singleton (`GPA.pc`) and silently reloads a stale
`<save_name>_config.json` into any setting left unset, so `configure` starts from a fresh config
object and sets every setting a trial relies on. The library is imported lazily: its import
prints to stdout, which must stay clean for `train_trial.py --print-config`.
"""
from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

CPU = torch.device("cpu")
SAVE_NAME = "pai"  # PAI writes ./pai/ in the current directory: the trial's own folder

_FORWARD = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
_SWITCH_MODE = {"history": "DOING_HISTORY", "fixed": "DOING_FIXED_SWITCH"}
# (module class names that get dendrites, module class names that are only tracked)
_LAYERS = {
    "all": (["PAISequential", "Conv1d", "Conv2d", "Linear"], []),
    "conv": (["PAISequential", "Conv1d", "Conv2d"], ["Linear"]),
    "classifier": (["Linear"], ["PAISequential", "Conv1d", "Conv2d", "BatchNorm1d", "BatchNorm2d"]),
}


def _import():
    with contextlib.redirect_stdout(io.StringIO()):  # "Building dendrites without ..." banner
        from perforatedai import globals_perforatedai as gpa
        from perforatedai import utils_perforatedai as upa
    return gpa, upa


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run a block inside `path` (PAI writes its files into the current directory)."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def configure(config: Mapping[str, Any], device: torch.device = CPU) -> None:
    """Reset PAI's global settings and apply the trial's config; call before `wrap`. PAI builds new
    dendrites on its own `device` setting: the trial's device (a loaded checkpoint: the CPU)."""
    gpa, _ = _import()
    gpa.pc = gpa.PAIConfig()
    pc = gpa.pc
    pc.set_device(device)
    pc.set_use_cuda(device.type == "cuda")
    # Unattended, quiet, no debug modes, no interactive prompts.
    pc.set_testing_dendrite_capacity(False)
    pc.set_configuration_confirmed(True)
    pc.set_unwrapped_modules_confirmed(True)
    pc.set_weight_decay_accepted(True)
    pc.set_silent(True)
    pc.set_verbose(False)
    # Test saves are what PAI's learning-rate search reloads its better attempt from; without the search
    # they only cost files and time, so they follow find_best_lr.
    pc.set_test_saves(config["find_best_lr"])
    # Graphs are governed by perforate_model(making_graphs=...); drawing_pai must stay on because
    # 3.2.9 keeps the score history it needs at each switch only when it is (KeyError otherwise).
    pc.set_drawing_pai(True)
    pc.set_drawing_extra_graphs(config["pai_graphs"])
    pc.set_perforated_backpropagation(False)
    # The swept settings.
    pc.set_switch_mode(getattr(pc, _SWITCH_MODE[config["switch_mode"]]))
    pc.set_n_epochs_to_switch(config["n_epochs_to_switch"])
    pc.set_fixed_switch_num(config["fixed_switch_num"])
    first = config["first_fixed_switch_num"]
    pc.set_first_fixed_switch_num(config["fixed_switch_num"] if first < 0 else first)
    pc.set_history_lookback(config["history_lookback"])
    pc.set_initial_history_after_switches(config["initial_history_after_switches"])
    pc.set_improvement_threshold(list(config["improvement_threshold"]))
    pc.set_candidate_weight_initialization_multiplier(config["candidate_weight_initialization_multiplier"])
    pc.set_pai_forward_function(_FORWARD[config["pai_forward_function"]])
    pc.set_dont_give_up_unless_learning_rate_lowered(config["dont_give_up_unless_learning_rate_lowered"])
    pc.set_find_best_lr(config["find_best_lr"])
    pc.set_max_dendrites(config["max_dendrites"])
    pc.set_max_dendrite_tries(config["max_dendrite_tries"])
    perforate, track = _LAYERS[config["dendrite_layers"]]
    pc.set_module_names_to_perforate(list(perforate))
    pc.set_module_names_to_track(list(track))


def pair_conv_with_norm(model: nn.Module) -> None:
    """Replace each torchvision Conv2dNormActivation (conv, norm, activation) by
    Sequential(PAISequential([conv, norm]), activation): a dendrite must see the normalised output,
    and PAI cannot wrap a BatchNorm on its own (it stops in pdb)."""
    from torchvision.ops.misc import Conv2dNormActivation

    gpa, _ = _import()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv2dNormActivation):
                conv, norm, *rest = list(child)
                setattr(parent, name, nn.Sequential(gpa.PAISequential([conv, norm]), *rest))


def wrap(model: nn.Module, config: Mapping[str, Any], device: torch.device = CPU) -> nn.Module:
    """Configure PAI and convert the model's layers into dendrite-capable modules, on `device`."""
    configure(config, device)
    model = model.to(device)
    gpa, upa = _import()
    with contextlib.redirect_stdout(io.StringIO()):  # "[PAI Config] Saved 75 variables ..."
        wrapped = upa.perforate_model(model, doing_pai=True, save_name=SAVE_NAME,
                                      making_graphs=config["pai_graphs"], maximizing_score=True)
    gpa.pai_tracker.set_optimizer(torch.optim.Adam)
    gpa.pai_tracker.set_scheduler(torch.optim.lr_scheduler.ReduceLROnPlateau)
    return wrapped


def setup_optimizer(model: nn.Module, config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Adam + ReduceLROnPlateau through PAI's tracker, which steps the scheduler itself."""
    gpa, _ = _import()
    optimizer, _scheduler = gpa.pai_tracker.setup_optimizer(
        model,
        {"params": model.parameters(), "lr": config["learning_rate"], "weight_decay": config["weight_decay"]},
        {"mode": "max", "patience": config["scheduler_patience"]},
    )
    return optimizer


def record_epoch(model: nn.Module, val_acc: float, train_acc: float) -> tuple[nn.Module, bool, bool]:
    """Hand PAI the epoch's scores: (model to continue with, restructured?, training complete?)."""
    gpa, _ = _import()
    gpa.pai_tracker.add_extra_score(train_acc, "Train")
    model, restructured, complete = gpa.pai_tracker.add_validation_score(val_acc, model)
    return model, bool(restructured), bool(complete)


def dendrites_added() -> int:
    """Dendrites PAI has added so far (per layer); not the maximum asked for."""
    gpa, _ = _import()
    return int(gpa.pai_tracker.member_vars["num_dendrites_added"])


def snapshot(model: nn.Module) -> nn.Module:
    """A detached copy of a wrapped model (PAI's own deep copy clears its processors first)."""
    _, upa = _import()
    return upa.deep_copy_pai(model)


def count_params(model: nn.Module) -> int:
    """Parameters of a wrapped model, without PAI's template copies (plain numel() overcounts)."""
    _, upa = _import()
    return int(upa.count_params(model))


def load_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Rebuild a wrapped model's dendrites from a saved state dict (after `wrap`)."""
    _, upa = _import()
    with contextlib.redirect_stdout(io.StringIO()):
        return upa.load_net_from_dict(model, dict(state_dict))


def inference_model(model: nn.Module) -> nn.Module:
    """PAI's final-model preparation (scaffolding removed), repaired and in eval mode.

    perforatedai 3.2.9 drops the dendrite-to-neuron weights of every layer that has exactly one
    dendrite (`PAIModulePyThread` assumes its single skip weight is the unused dendrite-to-dendrite
    slot), so the prepared model ignores those dendrites and its outputs drift from the trained
    model's. The weights are put back here; callers still verify the outputs.
    """
    _, upa = _import()
    model.eval()
    final = upa.prepare_final_model(model)
    trained = dict(model.named_modules())
    for name, module in final.named_modules():
        layers = getattr(module, "layer_array", None)
        if layers is not None and len(layers) == 2 and not hasattr(module, "skip_weights"):
            to_top = trained[name].dendrites_to_top[-1].detach().clone()
            module.skip_weights = nn.ParameterList([nn.Parameter(to_top, requires_grad=False)])
    return final.eval()
