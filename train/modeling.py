"""A causal LM wrapped so that one forward gives the completion log-probs of one packed pair.

Why a wrapper module: under DDP/accelerate the whole computation (decoder + chunked LM head) must
run inside one ``forward`` of the prepared module, and the policy and the reference passes should
share one code path.  The reference is the same weights with the LoRA adapter disabled, never a
second resident model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch.utils.checkpoint import checkpoint

from .attention import register_prefix_attention
from .dpo_config import ATTENTION_MODES
from .logprobs import output_softcap, token_logps
from .packing import PackedPair, dense_attention_mask, flex_block_mask

AttentionMode = Literal["split_sdpa", "dense_mask", "flex"]


def is_peft_model(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a training dependency
        return False
    return isinstance(model, PeftModel)


def base_model_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under an optional PEFT wrapper."""
    return model.get_base_model() if is_peft_model(model) else model


class OffloadableCheckpoint:
    """Activation-checkpoint function for the decoder layers, with optional CPU offload.

    Without offload it is plain non-reentrant checkpointing.  With ``offload`` set, it uses the
    reentrant variant under ``save_on_cpu``: reentrant checkpointing stores each layer's input with
    ``save_for_backward``, which ``save_on_cpu`` moves to (pinned) host memory; the non-reentrant
    variant keeps its inputs in a Python closure that no saved-tensor hook can move.
    """

    def __init__(self) -> None:
        self.offload = False
        self.offloaded_calls = 0  # layers run with offload (lets tests see the hook is installed)

    def __call__(self, function, *args, **kwargs):
        if self.offload and torch.is_grad_enabled():
            self.offloaded_calls += 1
            pin = torch.cuda.is_available()
            with torch.autograd.graph.save_on_cpu(pin_memory=pin):
                return checkpoint(function, *args, use_reentrant=True, **kwargs)
        return checkpoint(function, *args, use_reentrant=False, **kwargs)


def disable_dropout(model: torch.nn.Module) -> None:
    """DPO compares policy and reference log-probs of the same tokens: dropout would add noise to both."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = getattr(base_model_of(model), "config", None)
    if config is not None and hasattr(config, "attention_dropout"):
        config.attention_dropout = 0.0


class PackedPairModel(torch.nn.Module):
    """``forward(pair)`` → (chosen token log-probs [C], rejected token log-probs [R]), float32.

    ``attention``:
      * ``split_sdpa`` (default): two exact SDPA calls per layer (flash on CUDA), see attention.py;
      * ``dense_mask``: SDPA with an explicit [1, 1, T, T] mask (reference path, small T only);
      * ``flex``: FlexAttention with a block mask (CUDA only for training: no CPU backward).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        attention: AttentionMode = "split_sdpa",
        logprob_chunk_size: int = 1024,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        self.model = model
        self.attention = attention
        self.logprob_chunk_size = logprob_chunk_size
        self.checkpointer = OffloadableCheckpoint()
        base = base_model_of(model)
        for name in ("logit_scale", "logits_scaling"):
            if getattr(base.config, name, None) not in (None, 1, 1.0):
                raise NotImplementedError(f"models with {name} in their config are not supported")
        if is_peft_model(model):
            from peft.tuners.tuners_utils import BaseTunerLayer

            if isinstance(base.get_output_embeddings(), BaseTunerLayer):
                raise ValueError("a LoRA adapter on lm_head is not supported: log-probs use lm_head.weight")
        self._original_attn = base.config._attn_implementation
        wanted = {"split_sdpa": register_prefix_attention(), "dense_mask": "sdpa", "flex": "flex_attention"}
        if base.config._attn_implementation != wanted[attention]:
            base.set_attn_implementation(wanted[attention])
        if gradient_checkpointing:
            self.enable_gradient_checkpointing()

    # -- setup -------------------------------------------------------------------------------
    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint every decoder layer through ``OffloadableCheckpoint``."""
        base = base_model_of(self.model)
        base.activation_checkpointing_enable({"use_reentrant": False})
        n = 0
        for module in base.modules():
            if hasattr(module, "_gradient_checkpointing_func") and getattr(module, "gradient_checkpointing", False):
                module._gradient_checkpointing_func = self.checkpointer
                n += 1
        if n == 0:
            raise RuntimeError(f"{type(base).__name__}: no checkpointable layers found")
        # Reentrant checkpointing (offload path) only back-propagates if the layer input requires grad.
        base.enable_input_require_grads()

    def restore_attention(self) -> None:
        """Put back the attention implementation the model came with (before saving it)."""
        base = base_model_of(self.model)
        if base.config._attn_implementation != self._original_attn:
            base.set_attn_implementation(self._original_attn)

    @property
    def lm_head(self) -> torch.nn.Module:
        return base_model_of(self.model).get_output_embeddings()

    # -- forward -----------------------------------------------------------------------------
    def hidden_states(self, pair: PackedPair) -> torch.Tensor:
        """Final (normed) hidden states [T, d] of the packed sequence."""
        device = self.lm_head.weight.device
        input_ids = pair.input_ids.to(device)[None]
        position_ids = pair.position_ids.to(device)[None]
        kwargs: dict = {}
        if self.attention == "split_sdpa":
            # A 2D all-ones mask stops transformers from reading the position restart as a second
            # packed document; SDPA's mask builder then returns None and our kernel sees the layout.
            kwargs["attention_mask"] = torch.ones_like(input_ids, dtype=torch.bool)
            kwargs["prefix_layout"] = pair.layout
        elif self.attention == "dense_mask":
            kwargs["attention_mask"] = dense_attention_mask(pair, device=device)
        else:
            kwargs["attention_mask"] = flex_block_mask(pair, device=device)
        decoder = base_model_of(self.model).get_decoder()
        out = decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False, **kwargs)
        return out.last_hidden_state[0]

    def completion_logps(self, pair: PackedPair) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.hidden_states(pair)
        chosen_rows, rejected_rows = pair.prediction_rows()
        chosen_t, rejected_t = pair.targets()
        rows = torch.cat([chosen_rows, rejected_rows]).to(hidden.device)
        targets = torch.cat([chosen_t, rejected_t]).to(hidden.device)
        softcap = output_softcap(base_model_of(self.model).config)
        logps = token_logps(hidden[rows], self.lm_head, targets, self.logprob_chunk_size, softcap)
        # Copies, not views: FSDP2 hooks the outputs of its root forward, which views would bypass.
        return logps[: pair.chosen_len].clone(), logps[pair.chosen_len :].clone()

    def forward(
        self, pair: PackedPair, reference: bool = False, offload: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy log-probs (with grad), or reference log-probs (adapter disabled, no grad)."""
        if reference:
            with torch.no_grad(), self.reference_weights():
                return self.completion_logps(pair)
        self.checkpointer.offload = offload
        try:
            return self.completion_logps(pair)
        finally:
            self.checkpointer.offload = False

    @contextlib.contextmanager
    def reference_weights(self) -> Iterator[None]:
        """The reference model: the adapter disabled (LoRA); for full fine-tuning there is none online."""
        if not is_peft_model(self.model):
            raise RuntimeError("an online reference needs a LoRA model; precompute the reference instead")
        with self.model.disable_adapter():
            yield
