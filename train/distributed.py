"""Multi-process engines of the DPO trainer: DDP, FSDP2 (torch ``fully_shard``) or DeepSpeed ZeRO-3.

The engine is what the launch selected: ``accelerate launch --config_file train/configs/<x>.yaml``
(FSDP2 or DeepSpeed), a plain ``accelerate launch`` / ``torchrun`` (DDP), or one process.

Why FSDP2 is applied here and not by ``accelerator.prepare``: our forward (modeling.PackedPairModel)
reads ``lm_head.weight`` for the chunked completion log-probs, outside ``lm_head``'s own forward.
accelerate's FSDP2 wrap makes ``lm_head`` its own unit, whose weight is only gathered inside that
forward; here the decoder layers are the units, and embeddings, final norm and ``lm_head`` stay in the
root unit (``PackedPairModel``), gathered for the whole root forward.  And accelerate turns FSDP on
only on accelerators, while the same config must also run the CPU (gloo) proof of
tests/test_dpo_distributed.py: the launch's FSDP plugin supplies the settings only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from .modeling import base_model_of


@dataclass(frozen=True)
class FSDPSettings:
    """What ``fully_shard`` is called with, from the launch's accelerate FSDP plugin."""

    reshard_after_forward: bool = True
    cpu_offload: bool = False
    activation_checkpointing: bool = False
    param_dtype: torch.dtype | None = None  # compute dtype of gathered weights; None: the stored dtype
    reduce_dtype: torch.dtype | None = None  # gradient reduce-scatter dtype


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() == "true"


def deepspeed_launch() -> bool:
    """``accelerate launch`` with a DeepSpeed config (read before the Accelerator exists)."""
    return _env_flag("ACCELERATE_USE_DEEPSPEED")


def fsdp_plugin(accelerator: Any) -> Any | None:
    """The launch's FSDP plugin: accelerate's own (GPUs, 2+ processes), else one built from the launch's
    environment (accelerate leaves FSDP off on CPUs and for one process), else None."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    if plugin is None and _env_flag("ACCELERATE_USE_FSDP"):
        from accelerate.utils import FullyShardedDataParallelPlugin

        plugin = FullyShardedDataParallelPlugin()
    return plugin


def engine_of(accelerator: Any) -> str:
    """``"deepspeed"``, ``"fsdp2"``, ``"ddp"`` (several processes) or ``"single"``.

    Refuses the launches that would silently train the wrong thing: FSDP version 1, and several
    launched processes that accelerate did not join into one group (each would train on all the data).
    """
    from accelerate.utils import DistributedType

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise ValueError(
            f"{launched} processes were launched but accelerate set up {accelerator.num_processes} "
            f"({accelerator.distributed_type}): each would train alone (DeepSpeed through accelerate needs GPUs)"
        )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return "deepspeed"
    plugin = fsdp_plugin(accelerator)
    if plugin is not None:
        if plugin.fsdp_version != 2:
            raise ValueError("FSDP version 1 is not supported: set fsdp_version: 2 in the accelerate config")
        return "fsdp2"
    return "ddp" if accelerator.num_processes > 1 else "single"


def fsdp_settings(accelerator: Any, compute_dtype: torch.dtype) -> FSDPSettings:
    """``fully_shard`` settings: the plugin's reshard / offload / checkpointing, precision from the run."""
    plugin = fsdp_plugin(accelerator)
    if plugin is None:
        raise ValueError("fsdp_settings needs an FSDP launch (engine_of gave no fsdp2)")
    mixed = compute_dtype != torch.float32
    offload = plugin.cpu_offload
    return FSDPSettings(
        reshard_after_forward=bool(plugin.reshard_after_forward),
        cpu_offload=bool(offload) and type(offload).__name__ != "OffloadPolicy",
        activation_checkpointing=bool(plugin.activation_checkpointing),
        param_dtype=compute_dtype if mixed else None,
        reduce_dtype=torch.float32 if mixed else None,
    )


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of a HF causal LM (under an optional PEFT wrapper): the FSDP2 units."""
    decoder = base_model_of(model).get_decoder()
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise NotImplementedError(f"{type(decoder).__name__} has no .layers: cannot pick FSDP2 units")
    return list(layers)


def shard_fsdp2(packed: torch.nn.Module, settings: FSDPSettings, device: torch.device) -> None:
    """``fully_shard`` every decoder layer, then the root ``packed`` (embeddings, norm, LM head)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    if settings.param_dtype is not None:
        # Trainable weights keep fp32 masters (LoRA adapters, full fine-tuning); gathers run in param_dtype.
        for param in packed.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs = dict(
        mesh=mesh,
        reshard_after_forward=settings.reshard_after_forward,
        mp_policy=MixedPrecisionPolicy(param_dtype=settings.param_dtype, reduce_dtype=settings.reduce_dtype),
        offload_policy=CPUOffloadPolicy(pin_memory=device.type == "cuda") if settings.cpu_offload else OffloadPolicy(),
    )
    for layer in decoder_layers(packed.model):
        fully_shard(layer, **kwargs)
    fully_shard(packed, **kwargs)


def full_state_dict(module: torch.nn.Module, names: set[str] | None = None) -> dict[str, torch.Tensor]:
    """The unsharded state dict (of ``names`` only, if given) on CPU; a collective under FSDP2.

    Every rank must call it; each tensor is gathered in turn, so a rank never holds more than one
    full tensor on its device.  Only rank 0's copy is kept (others get an empty dict).
    """
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    keep = not dist.is_initialized() or dist.get_rank() == 0
    out: dict[str, torch.Tensor] = {}
    for name, value in module.state_dict().items():
        if names is not None and name not in names:
            continue
        if isinstance(value, DTensor):
            value = value.full_tensor()
        if keep:
            out[name] = value.detach().to("cpu", copy=True)
    return out


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Optimizer state keyed by parameter names, unsharded: the same file for 1 or N processes."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True,
                                                                              cpu_offload=True))


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Inverse of ``optimizer_state``; each rank keeps its own shard of the full state it is given."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def local_norm(value: Any) -> float:
    """A grad norm as a float (FSDP2's clip returns a replicated DTensor; DeepSpeed may have none yet)."""
    from torch.distributed.tensor import DTensor

    if value is None:
        return float("nan")
    if isinstance(value, DTensor):
        value = value.full_tensor()
    return float(value)


def fill_deepspeed_config(accelerator: Any, accumulation: int, max_grad_norm: float | None) -> None:
    """Our step is ``accumulation`` micro-steps of one packed pair per process: tell DeepSpeed so."""
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    stage = config.get("zero_optimization", {}).get("stage")
    if stage == 3 and not config["zero_optimization"].get("stage3_gather_16bit_weights_on_model_save"):
        raise ValueError("ZeRO-3 needs stage3_gather_16bit_weights_on_model_save: true to save HF checkpoints")
    config["train_micro_batch_size_per_gpu"] = 1
    config["gradient_accumulation_steps"] = accumulation
    config["train_batch_size"] = accumulation * accelerator.num_processes
    config["gradient_clipping"] = float(max_grad_norm or 0.0)


def gather_lm_head_with_root(packed: torch.nn.Module) -> None:
    """ZeRO-3 gathers a weight inside its own module's forward; the chunked log-probs read ``lm_head.weight``
    from ``packed``'s forward (and its checkpointed backward), a chunk count that differs between ranks.
    Registered as an external parameter of ``packed``, it is gathered once per forward and per backward
    of ``packed`` on every rank alike (the FSDP2 root unit does the same for FSDP2)."""
    import deepspeed

    deepspeed.zero.register_external_parameter(packed, packed.lm_head.weight)


def equal_rounds(n: int, rank: int, world: int) -> list[int | None]:
    """Indices ``rank, rank + world, ...`` of ``n`` items, padded with None so every rank gets as many.

    Sharded engines gather weights inside each forward (a collective): all ranks must run the same
    number of forwards, so a rank without an item of its own runs a throw-away one.
    """
    rounds = -(-n // world)
    return [i if i < n else None for i in range(rank, rounds * world, world)]
