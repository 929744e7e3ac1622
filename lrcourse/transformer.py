"""A tiny character-level transformer for the warmup and schedule experiments.

The model is a GPT-style decoder: pre-LayerNorm, width 48, 2 layers, 4 heads, a
context of 32 characters, about 67k parameters, weights initialised from N(0, 0.02).
It learns to predict the next character of ``data/pydoc_topics.txt`` (Python's own
help-topic documentation, shipped with the course). Small enough to train 1,000 steps
in about ten seconds on two CPU cores, big enough to need warmup at a high peak LR.

``train_lm`` is the transformer's counterpart of :func:`lrcourse.train.train`: it takes a
constant or a schedule ``lr(step)``, and returns the same :class:`~lrcourse.train.History`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data import read_verified
from .runtime import pick_device, seed_everything
from .train import History, Schedule, as_schedule, run_updates

CORPUS_FILE = "pydoc_topics.txt"
VAL_FRACTION = 0.1  # the last 10% of the text is the validation set


@dataclass
class CharCorpus:
    """The corpus as token ids: one token per character.

    ``train`` is the first 90% of the text and ``val`` the last 10%, each a 1-D tensor of
    token ids (contiguous text, so the validation text is text the model never saw).
    ``chars[i]`` is the character of token ``i``.
    """

    train: torch.Tensor
    val: torch.Tensor
    chars: str

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.chars)}
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def to(self, device) -> "CharCorpus":
        return CharCorpus(self.train.to(device), self.val.to(device), self.chars)


def load_corpus(device="cpu") -> CharCorpus:
    """``data/pydoc_topics.txt`` (checked against ``data/SHA256SUMS``) as a :class:`CharCorpus`.

    The vocabulary is the sorted set of the characters in the whole file (94 for the
    shipped copy, all ASCII), so every validation character has a token.
    """
    text = read_verified(CORPUS_FILE).decode("ascii")
    chars = "".join(sorted(set(text)))
    lookup = torch.full((128,), -1, dtype=torch.long)
    lookup[torch.tensor([ord(c) for c in chars])] = torch.arange(len(chars))
    ids = lookup[torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8).long()]
    n_train = int(len(ids) * (1 - VAL_FRACTION))
    return CharCorpus(ids[:n_train].clone(), ids[n_train:].clone(), chars).to(device)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` sees positions ``0..t`` only."""

    def __init__(self, width: int, n_heads: int):
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width={width} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        # (b, t, c) -> (b, heads, t, head_dim)
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, width: int, n_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """Character-level GPT: token + position embeddings, pre-LN blocks, final LayerNorm,
    a linear head to next-character logits.

    With the defaults (width 48, 2 layers, 4 heads, context 32, untied input and output
    embeddings) and the course's 94-character vocabulary it has 67,200 parameters. Every
    weight matrix and embedding is drawn from N(0, 0.02), biases start at 0 and LayerNorms
    at the identity; the draw uses PyTorch's global generator, which
    :func:`lrcourse.seed_everything` seeds.
    """

    def __init__(self, vocab_size: int, width: int = 48, n_layers: int = 2, n_heads: int = 4,
                 context: int = 32, tie_embeddings: bool = False):
        super().__init__()
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, width)
        self.pos_emb = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size, bias=False)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        if tie_embeddings:
            self.head.weight = self.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, time, vocab)`` for token ids of shape ``(batch, time)``."""
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of length {t} is longer than the context ({self.context})")
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def n_params(model: nn.Module) -> int:
    """Number of distinct trainable parameters (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-character cross-entropy (nats) of ``model`` on inputs ``x``, targets ``y``."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def sample_batch(tokens: torch.Tensor, batch_size: int, context: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows of ``context`` tokens at random offsets, and the same windows
    shifted by one (the targets). Offsets are drawn on the CPU from ``generator``, so the
    batches depend on the generator's seed only, whatever the device."""
    starts = torch.randint(0, len(tokens) - context, (batch_size, 1), generator=generator)
    idx = (starts + torch.arange(context)).to(tokens.device)
    return tokens[idx], tokens[idx + 1]


def eval_windows(tokens: torch.Tensor, context: int, max_windows: int = 512) -> torch.Tensor:
    """Positions (windows x context) of up to ``max_windows`` non-overlapping windows of
    ``tokens``, spread evenly over the text: a fixed set, so every evaluation is comparable."""
    n_windows = (len(tokens) - 1) // context
    picks = torch.linspace(0, n_windows - 1, min(max_windows, n_windows)).long()
    return (picks[:, None] * context + torch.arange(context)).to(tokens.device)


@torch.no_grad()
def evaluate_lm(model: TinyTransformer, tokens: torch.Tensor, max_windows: int = 512,
                batch_size: int = 256) -> float:
    """Mean cross-entropy on the windows of :func:`eval_windows`."""
    idx = eval_windows(tokens, model.context, max_windows)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for chunk in idx.split(batch_size):
        total += lm_loss(model, tokens[chunk], tokens[chunk + 1]).item() * len(chunk)
        count += len(chunk)
    model.train(was_training)
    return total / count


def train_lm(
    lr: float | Schedule,
    total_steps: int,
    *,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device | None = None,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    eval_every: int | None = None,
    progress: bool | None = None,
    corpus: CharCorpus | None = None,
) -> History:
    """Train a fresh :class:`TinyTransformer` with AdamW for ``total_steps`` updates.

    ``lr`` is a constant or a schedule ``lr(step) -> float``: update ``step`` (counted from
    0) uses ``lr(step)``. The initial weights and the batches depend only on ``seed``, so
    runs that differ only in their schedule see the same data in the same order.
    ``history.loss[k]`` is the training loss (nats per character) of the batch update ``k``
    was computed from; with ``eval_every`` the validation loss is recorded every that many
    updates and after the last. Training stops early, with ``history.diverged = True``, if
    the loss becomes inf or NaN. Pass ``corpus`` (from :func:`load_corpus`) to skip
    reloading the text for every run.
    """
    schedule = as_schedule(lr)
    device = pick_device(device)
    corpus = (corpus if corpus is not None else load_corpus()).to(device)
    generator = seed_everything(seed)
    model = TinyTransformer(corpus.vocab_size).to(device)  # initialised on the CPU, then moved
    opt = torch.optim.AdamW(model.parameters(), lr=0.0, betas=betas, weight_decay=weight_decay)


    def batch_loss(step: int) -> torch.Tensor:
        x, y = sample_batch(corpus.train, batch_size, model.context, generator)
        return lm_loss(model, x, y)

    return run_updates(opt, schedule, total_steps, batch_loss, lambda: evaluate_lm(model, corpus.val),
                       eval_every=eval_every, progress=progress)
