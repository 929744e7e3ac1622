"""Batched sweeps: train N independent copies of a small MLP at once, one schedule each.

The weights of the N copies are stacked along a leading dimension (``W[n]`` is copy
``n``'s weight matrix) and every layer is one batched matrix product (``torch.baddbmm``),
so a step of N copies is a handful of large operations instead of N times as many small
ones. Forward, backward and the optimizer are written out by hand for the MLP (linear
layers and ReLUs), which keeps the Python overhead of a step about that of a single run;
``torch.func`` (``vmap`` of ``grad`` of ``functional_call``) does the same work more slowly
here (``bin/benchmark`` prints the ratio), so the passes stay hand-written.

The results are those of the sequential loop :func:`lrcourse.train.train`:

* each copy starts from the weights ``train(..., seed=s)`` would build (same
  ``seed_everything`` call, same ``model_fn``) and sees the same minibatches in the same
  order (both draw them from :func:`lrcourse.train.minibatch_indices`);
* the updates are those of ``torch.optim.SGD`` (momentum, with the buffer set to the first
  gradient as PyTorch does; weight decay added to the gradient) or ``torch.optim.AdamW``;
* a copy whose minibatch loss becomes inf or NaN records that loss and stops, exactly where
  ``train`` would stop (``History.diverged``). It is removed from the stack, so its NaNs
  never reach the other copies, and the rest go on.

Every operation is the one ``train`` runs (through autograd and ``torch.optim``) for one
copy, applied to all copies at once, so the curves agree with ``train``'s to float
rounding: a batched kernel adds in another order than a single one, and training amplifies
the difference (``tests/test_batched.py`` allows 1e-4 relative). A run that blows up
amplifies it most, so there the curves drift apart and may reach inf/NaN a step earlier or
later than ``train``.

Cost: the matrix products are N runs' worth of arithmetic and are most of a batched step,
so batching saves the per-step overhead of N - 1 runs (Python, dispatch, tiny kernels),
not their arithmetic. ``bin/benchmark`` prints what that is worth on your machine: one
run, N runs batched, and N runs one after another.

Every copy may have its own seed (``seeds=[...]``): it then gets its own initial weights
and its own minibatch order, still exactly those of ``train(..., seed=seeds[n])``.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .data import DigitsData, load_digits
from .models import DigitsMLP
from .runtime import pick_device, progress as progress_line, seed_everything
from .train import History, Schedule, as_schedule, check_optimizer, minibatch_indices

__all__ = ["train_batched", "lr_sweep_batched", "train_lm_batched", "per_schedule_and_seed"]


def _mlp_layers(model: nn.Module) -> list[nn.Linear]:
    """The linear layers of an MLP made of ``nn.Linear`` and ``nn.ReLU`` only (in order,
    a ReLU between two linear layers, none after the last)."""
    leaves = [m for m in model.modules() if not list(m.children())]
    kinds = ["linear" if isinstance(m, nn.Linear) else "relu" if isinstance(m, nn.ReLU) else None
             for m in leaves]
    expected = ["linear", "relu"] * (kinds.count("linear") - 1) + ["linear"]
    if kinds != expected or any(m.bias is None for m in leaves[::2]):
        raise ValueError(
            "train_batched trains MLPs built from nn.Linear (with bias) and nn.ReLU layers, "
            f"alternating and ending with a linear layer; got {[type(m).__name__ for m in leaves]}"
        )
    return leaves[::2]


@torch.no_grad()
def _check_forward(model: nn.Module, layers: list[nn.Linear], x: torch.Tensor) -> None:
    """Refuse a model whose forward is not its linear layers and ReLUs applied in order."""
    h = x
    for i, layer in enumerate(layers):
        h = layer(h)
        if i < len(layers) - 1:
            h = h.relu()
    if not torch.allclose(model(x), h, rtol=1e-4, atol=1e-5):
        raise ValueError("train_batched: model_fn's forward is not its Linear and ReLU layers in order")


class _Stack:
    """The weights (``W[l]``: N x out x in, as ``nn.Linear`` keeps them) and biases
    (``b[l]``: N x 1 x out) of N MLPs."""

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor]):
        self.weights, self.biases = weights, biases

    @property
    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits (N x B x classes) and the input of every layer (for the backward pass)."""
        inputs = [x]
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w.transpose(1, 2))  # nn.Linear: x @ W^T + b
            if i < last:
                h = h.relu_()
                inputs.append(h)
        return h, inputs

    @staticmethod
    def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
        """``log_softmax`` over the classes, returned as an N x C x B tensor.

        Same values as over the last dimension of the N x B x C logits, but PyTorch's CPU
        kernel for a short last dimension (10 classes) is several times slower.
        """
        return F.log_softmax(logits.transpose(1, 2).contiguous(), dim=1)

    @staticmethod
    def _loss(logp_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # One nll_loss per copy: it sums a batch in its own order, and this keeps the
        # recorded losses equal to F.cross_entropy's in train(), not just close.
        return torch.stack([F.nll_loss(logp_t[n].t(), y[n]) for n in range(len(logp_t))])

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of each copy (N)."""
        logits, _ = self.forward(x)
        return self._loss(self._log_softmax(logits), y)

    def loss_and_grads(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mean cross-entropy of each copy and its gradients (ordered like ``params``).

        The backward pass is the one autograd runs for ``train``'s model, operation for
        operation, so the gradients agree with it to float rounding.
        """
        logits, inputs = self.forward(x)
        batch = logits.shape[1]
        logp_t = self._log_softmax(logits)  # N x C x B
        loss = self._loss(logp_t, y)
        # cross-entropy's backward: nll_loss puts -1/batch at each target, then log_softmax's
        grad_t = torch.zeros_like(logp_t).scatter_(1, y.unsqueeze(1), -1.0 / batch)
        grad_t = torch._log_softmax_backward_data(grad_t, logp_t, 1, logp_t.dtype)
        # back to N x B x C in memory: the products below then run the very GEMMs that
        # autograd runs in train() (another memory layout sums in another order)
        grad = grad_t.transpose(1, 2).contiguous()
        n_layers = len(self.weights)
        w_grads: list[torch.Tensor] = [None] * n_layers  # type: ignore[list-item]
        b_grads: list[torch.Tensor] = [None] * n_layers  # type: ignore[list-item]
        for i in range(n_layers - 1, -1, -1):
            a = inputs[i]
            w_grads[i] = torch.bmm(grad.transpose(1, 2), a)  # dL/dW = grad^T @ input
            b_grads[i] = grad.sum(1, keepdim=True)
            if i > 0:
                # through the ReLU: a = relu(z) > 0 exactly where z > 0 (autograd's own op,
                # and much faster on a CPU than masked_fill_ or where)
                grad = torch.ops.aten.threshold_backward(torch.bmm(grad, self.weights[i]), a, 0)
        return loss, [*w_grads, *b_grads]


def per_copy(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """One Python float per copy, as an N x 1 x ... tensor that broadcasts over the stacked ``like``.

    Each value is computed in double precision, the way ``torch.optim`` computes its scalars,
    and rounded once to the parameters' dtype, as a scalar argument of an operation is.
    """
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *[1] * (like.dim() - 1))


class _SGD:
    """``torch.optim.SGD`` (momentum, weight decay, no dampening or Nesterov), per-copy LR."""

    def __init__(self, momentum: float, weight_decay: float):
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor] | None = None

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor], lrs: list[float]) -> None:
        neg_lr = per_copy([-lr for lr in lrs], params[0])
        if self.weight_decay:
            grads = [g.add_(p, alpha=self.weight_decay) for p, g in zip(params, grads)]
        if self.momentum:
            if self.buffers is None:  # PyTorch starts the buffer at the first gradient
                self.buffers = [g.clone() for g in grads]
            else:
                for buf, g in zip(self.buffers, grads):
                    buf.mul_(self.momentum).add_(g)
            grads = self.buffers
        for p, g in zip(params, grads):
            p.addcmul_(g, neg_lr)  # p.add_(g, alpha=-lr), one lr per copy

    def keep(self, rows: torch.Tensor) -> None:
        if self.buffers is not None:
            self.buffers = [b[rows] for b in self.buffers]


class _AdamW:
    """``torch.optim.AdamW`` (no amsgrad), per-copy LR."""

    def __init__(self, betas: tuple[float, float], weight_decay: float, eps: float = 1e-8):
        self.beta1, self.beta2 = betas
        self.weight_decay, self.eps = weight_decay, eps
        self.step_count = 0
        self.exp_avg: list[torch.Tensor] | None = None
        self.exp_avg_sq: list[torch.Tensor] | None = None

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor], lrs: list[float]) -> None:
        if self.exp_avg is None:
            self.exp_avg = [torch.zeros_like(p) for p in params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.step_count += 1
        bias_correction1 = 1 - self.beta1 ** self.step_count
        bias_correction2_sqrt = (1 - self.beta2 ** self.step_count) ** 0.5
        neg_step_size = per_copy([-lr / bias_correction1 for lr in lrs], params[0])
        decay = per_copy([1 - lr * self.weight_decay for lr in lrs], params[0]) if self.weight_decay else None
        for p, g, m, v in zip(params, grads, self.exp_avg, self.exp_avg_sq):
            if decay is not None:
                p.mul_(decay)
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.addcdiv_(m * neg_step_size, denom)  # p.addcdiv_(m, denom, value=-step_size)

    def keep(self, rows: torch.Tensor) -> None:
        if self.exp_avg is not None:
            self.exp_avg = [t[rows] for t in self.exp_avg]
            self.exp_avg_sq = [t[rows] for t in self.exp_avg_sq]


def train_batched(
    lrs_or_schedules: Sequence[float | Schedule],
    total_steps: int,
    *,
    data: DigitsData | None = None,
    model_fn: Callable[[], nn.Module] = DigitsMLP,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    device: str | torch.device | None = None,
    eval_every: int | None = None,
    progress: bool | None = None,
) -> list[History]:
    """Train one model per entry of ``lrs_or_schedules``, all at once; a :class:`History` each.

    Entry ``n`` is a constant LR or a schedule ``lr(step) -> float``. The result ``[n]`` is
    what ``train(lrs_or_schedules[n], total_steps, seed=seeds[n], ...)`` returns, to float
    rounding, with the same keyword arguments (``seeds`` defaults to ``seed`` for every copy).
    ``model_fn`` must build an MLP of ``nn.Linear`` and ``nn.ReLU`` layers, like
    :class:`~lrcourse.models.DigitsMLP`. A copy whose loss becomes inf or NaN stops there
    (``diverged``) without disturbing the others.
    """
    schedules = [as_schedule(lr) for lr in lrs_or_schedules]
    n_runs = len(schedules)
    seeds = [seed] * n_runs if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n_runs:
        raise ValueError(f"got {len(seeds)} seeds for {n_runs} runs")
    opt = _SGD(momentum, weight_decay) if check_optimizer(optimizer) == "sgd" else _AdamW(betas, weight_decay)
    histories = [History() for _ in range(n_runs)]
    if n_runs == 0:
        return histories
    device = pick_device(device)
    data = (data if data is not None else load_digits()).to(device)

    # Initial weights and minibatch order of each distinct seed, built as train() builds them.
    unique_seeds = list(dict.fromkeys(seeds))
    initial: dict[int, list[nn.Linear]] = {}
    batches = {}
    for s in unique_seeds:
        generator = seed_everything(s)
        model = model_fn().to(device)
        initial[s] = _mlp_layers(model)
        _check_forward(model, initial[s], data.x_val[:16])
        batches[s] = minibatch_indices(len(data.x_train), batch_size, generator)
    with torch.no_grad():
        net = _Stack(
            [torch.stack([initial[s][i].weight.detach() for s in seeds])
             for i in range(len(initial[seeds[0]]))],
            [torch.stack([initial[s][i].bias.detach().unsqueeze(0) for s in seeds])
             for i in range(len(initial[seeds[0]]))],
        )
    del initial

    # Row r of the stack is run alive[r]; runs that diverge are dropped from the stack.
    alive = list(range(n_runs))
    seed_row = torch.tensor([unique_seeds.index(s) for s in seeds], device=device)
    shared = len(unique_seeds) == 1
    with progress_line(total_steps, f"{n_runs} runs", progress) as bar, torch.no_grad():
        for step in range(total_steps):
            idx = [next(batches[s]) for s in unique_seeds]
            if shared:  # one minibatch for every copy: no copy of the data per run
                idx_d = idx[0].to(device)
                x = data.x_train[idx_d].expand(len(alive), -1, -1)
                y = data.y_train[idx_d].expand(len(alive), -1)
            else:
                rows = torch.stack(idx).to(device)[seed_row]
                x, y = data.x_train[rows], data.y_train[rows]

            step_lrs = [float(schedules[run](step)) for run in alive]
            loss, grads = net.loss_and_grads(x, y)
            losses = loss.tolist()
            finite = []
            for r, (run, lr, value) in enumerate(zip(alive, step_lrs, losses)):
                histories[run].lr.append(lr)
                histories[run].loss.append(value)
                if math.isfinite(value):
                    finite.append(r)
                else:
                    histories[run].diverged = True
            if len(finite) < len(alive):  # drop the diverged copies before they update
                keep = torch.tensor(finite, dtype=torch.long, device=device)
                net = _Stack([w[keep] for w in net.weights], [b[keep] for b in net.biases])
                grads = [g[keep] for g in grads]
                opt.keep(keep)
                alive = [alive[r] for r in finite]
                step_lrs = [step_lrs[r] for r in finite]
                seed_row = seed_row[keep]
                if not alive:
                    break
            opt.step(net.params, grads, step_lrs)

            if eval_every and ((step + 1) % eval_every == 0 or step + 1 == total_steps):
                val = net.loss(data.x_val.expand(len(alive), -1, -1),
                               data.y_val.expand(len(alive), -1)).tolist()
                for run, value in zip(alive, val):
                    histories[run].val_steps.append(step + 1)
                    histories[run].val_loss.append(value)
            bar.update(1)
    return histories


def lr_sweep_batched(lrs: Sequence[float], total_steps: int, **train_kwargs) -> dict[float, History]:
    """:func:`lrcourse.train.lr_sweep`, with every learning rate trained at once."""
    return dict(zip(lrs, train_batched(list(lrs), total_steps, **train_kwargs)))


def per_schedule_and_seed(trainer: Callable[..., list[History]], schedules: dict[str, float | Schedule],
                          seeds: Sequence[int], total_steps: int | dict[str, int],
                          **train_kwargs) -> dict[str, list[History]]:
    """Every named schedule on every seed, trained at once by ``trainer`` (:func:`train_batched`
    or :func:`train_lm_batched`): ``{name: [History of each seed, in the order of seeds]}``.

    ``total_steps`` is one length for all, or (``train_lm_batched`` only) a length per name."""
    jobs = [(name, seed) for seed in seeds for name in schedules]  # a seed's runs together: they share updates
    lengths = total_steps if isinstance(total_steps, int) else [total_steps[name] for name, _ in jobs]
    trained = trainer([schedules[name] for name, _ in jobs], lengths, seeds=[seed for _, seed in jobs],
                      **train_kwargs)
    return {name: [h for (job, _), h in zip(jobs, trained) if job == name] for name in schedules}


# -- the tiny transformer, N copies at once -------------------------------------------------
def _stacked_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``nn.Linear`` for R stacked copies: x is R x N x in, w is R x out x in, b is R x out."""
    if b is None:
        return torch.bmm(x, w.transpose(1, 2))
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def _stacked_layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:]) * w.unsqueeze(1) + b.unsqueeze(1)


def _stacked_lm_losses(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                       n_layers: int, n_heads: int) -> torch.Tensor:
    """Mean next-character loss of each of R stacked :class:`TinyTransformer` copies (R values).

    ``p`` maps each parameter name of ``TinyTransformer.named_parameters()`` to the R copies
    stacked on a leading dimension; ``x`` and ``y`` are R x B x T token ids. The forward pass
    is ``TinyTransformer.forward``'s, with every copy's batch folded into one (the attention
    sees R * B sequences), so autograd's backward gives each copy its own gradient.
    """
    r, b, t = x.shape
    tok = p["tok_emb.weight"]  # R x V x C
    vocab, width = tok.shape[1], tok.shape[2]
    rows = (x + (torch.arange(r, device=x.device) * vocab).view(r, 1, 1)).reshape(r, b * t)
    h = tok.reshape(r * vocab, width)[rows] + p["pos_emb.weight"][:, :t].repeat(1, b, 1)  # R x BT x C
    head_dim = width // n_heads
    for i in range(n_layers):
        q = f"blocks.{i}."
        a = _stacked_layer_norm(h, p[q + "ln1.weight"], p[q + "ln1.bias"])
        qkv = _stacked_linear(a, p[q + "attn.qkv.weight"], p[q + "attn.qkv.bias"])
        qs, ks, vs = (z.reshape(r * b, t, n_heads, head_dim).transpose(1, 2) for z in qkv.split(width, dim=2))
        att = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True).transpose(1, 2).reshape(r, b * t, width)
        h = h + _stacked_linear(att, p[q + "attn.proj.weight"], p[q + "attn.proj.bias"])
        a = _stacked_layer_norm(h, p[q + "ln2.weight"], p[q + "ln2.bias"])
        a = F.gelu(_stacked_linear(a, p[q + "mlp.0.weight"], p[q + "mlp.0.bias"]))
        h = h + _stacked_linear(a, p[q + "mlp.2.weight"], p[q + "mlp.2.bias"])
    logits = _stacked_linear(_stacked_layer_norm(h, p["ln_f.weight"], p["ln_f.bias"]), p["head.weight"])
    losses = F.cross_entropy(logits.reshape(r * b * t, vocab), y.reshape(-1), reduction="none")
    return losses.view(r, b * t).mean(1)


def train_lm_batched(
    lrs_or_schedules: Sequence[float | Schedule],
    total_steps: int | Sequence[int],
    *,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 32,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    eval_every: int | None = None,
    corpus=None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    workers: int = 1,
) -> list[History]:
    """:func:`lrcourse.transformer.train_lm` for every entry of ``lrs_or_schedules`` at once.

    Run ``n`` is ``train_lm(lrs_or_schedules[n], total_steps[n], seed=seeds[n], ...)``
    (AdamW): same initial weights, same batches, the same History to float rounding.
    ``total_steps`` is one length for every run or one per run; a run that is done stops
    (its last validation loss is taken at its own end), and the others go on.

    The copies' weights are stacked and trained by batched matrix products, which saves
    the Python and dispatch overhead of separate runs, not their arithmetic (on a CPU the
    transformer is compute-bound, so this gains little by itself).

    Runs of the same seed whose learning rates agree share one copy until the first update
    where they differ: a common warmup, or a step schedule before its first cut, is trained
    once and then branched (the copy and its AdamW state are duplicated). A copy whose loss
    becomes inf or NaN stops, with ``diverged`` set for its runs.

    ``workers`` > 1 splits the runs into that many groups (by seed, as far as it can) and
    trains each group in its own Python thread. PyTorch runs an operation in the thread
    that calls it (with one intra-op thread, the course's default) and releases the GIL
    while it computes, so on a CPU the groups use that many cores at once; the results do
    not change.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .transformer import TinyTransformer, load_corpus

    schedules = [as_schedule(lr) for lr in lrs_or_schedules]
    n_runs = len(schedules)
    seeds = [seed] * n_runs if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n_runs:
        raise ValueError(f"got {len(seeds)} seeds for {n_runs} runs")
    totals = [int(total_steps)] * n_runs if isinstance(total_steps, int) else [int(t) for t in total_steps]
    if len(totals) != n_runs:
        raise ValueError(f"got {len(totals)} lengths (total_steps) for {n_runs} runs")
    if n_runs == 0:
        return []
    device = pick_device(device)
    corpus = (corpus if corpus is not None else load_corpus()).to(device)

    # Initial weights and batch generator of each seed, made as train_lm makes them (one
    # after another: seed_everything seeds the global generator the model draws from).
    unique_seeds = list(dict.fromkeys(seeds))
    generators, initial = {}, {}
    for s in unique_seeds:
        generators[s] = seed_everything(s)
        model = TinyTransformer(corpus.vocab_size).to(device)
        initial[s] = [w.detach() for w in model.parameters()]

    # Groups of about equal numbers of runs, cut from the runs ordered by seed (a seed is
    # split between two groups only where that evens them out; its runs then share less).
    ordered = sorted(range(n_runs), key=lambda run: (unique_seeds.index(seeds[run]), run))
    n_groups = max(1, min(int(workers), n_runs))
    size = -(-n_runs // n_groups)
    groups = [ordered[g * size:(g + 1) * size] for g in range(n_groups)]
    groups = [group for group in groups if group]
    n_groups = len(groups)

    def train_group(g: int) -> list[History]:
        runs = groups[g]
        # each group draws its own copy of a seed's batches (a seed may be in two groups)
        own = {}
        for s in {seeds[r] for r in runs}:
            own[s] = torch.Generator()
            own[s].set_state(generators[s].get_state())
        return _train_lm_group([schedules[r] for r in runs], [seeds[r] for r in runs], [totals[r] for r in runs],
                               model, initial, own, corpus, batch_size, betas, weight_decay, eval_every, device,
                               progress if g == 0 else False, f"{n_runs} runs")

    with ThreadPoolExecutor(n_groups - 1) if n_groups > 1 else contextlib.nullcontext() as pool:
        others = [pool.submit(train_group, g) for g in range(1, n_groups)]
        results = [train_group(0)]  # in this thread, which shows the progress line
        results += [future.result() for future in others]
    histories: list[History] = [History()] * n_runs
    for runs, group_histories in zip(groups, results):
        for run, history in zip(runs, group_histories):
            histories[run] = history
    return histories


def _train_lm_group(schedules, seeds, totals, model, initial, generators, corpus, batch_size, betas,
                    weight_decay, eval_every, device, progress, desc) -> list[History]:
    """The runs of :func:`train_lm_batched` whose seeds are in one group, as stacked copies."""
    from .transformer import eval_windows, sample_batch

    n_runs = len(schedules)
    histories = [History() for _ in range(n_runs)]
    unique_seeds = list(dict.fromkeys(seeds))
    names = [name for name, _ in model.named_parameters()]
    shapes = [w.shape for w in model.parameters()]
    sizes = [w.numel() for w in model.parameters()]
    n_layers, n_heads, context = len(model.blocks), model.blocks[0].attn.n_heads, model.context

    # One row of `flat` per copy being trained: all its parameters, one after another.
    row_seed = list(unique_seeds)
    row_of = [unique_seeds.index(s) for s in seeds]  # run -> the row that trains it
    flat = torch.stack([torch.cat([w.reshape(-1) for w in initial[s]]) for s in row_seed])
    exp_avg, exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
    beta1, beta2 = betas

    def params(flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, shape, size in zip(names, shapes, sizes):
            out[name] = flat[:, start:start + size].view(len(flat), *shape)
            start += size
        return out

    val = corpus.val
    val_idx = eval_windows(val, context)  # those of evaluate_lm

    def keep_rows(rows: list[int], grad: torch.Tensor | None = None) -> torch.Tensor | None:
        """Drop every row of the stack but ``rows`` (in increasing order), renumbering runs."""
        nonlocal flat, exp_avg, exp_avg_sq, row_seed, row_of
        keep = torch.tensor(rows, device=device, dtype=torch.long)
        flat, exp_avg, exp_avg_sq = (t[keep] for t in (flat, exp_avg, exp_avg_sq))
        row_seed = [row_seed[row] for row in rows]
        row_of = [rows.index(row) if row in rows else -1 for row in row_of]
        return None if grad is None else grad[keep]

    alive = [run for run in range(n_runs) if totals[run] > 0]
    with progress_line(max(totals), desc, progress) as bar:
        for step in range(max(totals)):
            if not alive:
                break
            lrs = {run: float(schedules[run](step)) for run in alive}
            # Branch: runs on one row that now want different LRs get copies of the row.
            wanted: dict[int, dict[float, list[int]]] = {}
            for run in alive:
                wanted.setdefault(row_of[run], {}).setdefault(lrs[run], []).append(run)
            sources = []
            for row, by_lr in wanted.items():
                for runs in list(by_lr.values())[1:]:
                    for run in runs:
                        row_of[run] = len(flat) + len(sources)
                    sources.append(row)
            if sources:
                src = torch.tensor(sources, device=device)
                flat, exp_avg, exp_avg_sq = (torch.cat([t, t[src]]) for t in (flat, exp_avg, exp_avg_sq))
                row_seed += [row_seed[row] for row in sources]
            row_lr = [0.0] * len(flat)
            for run in alive:
                row_lr[row_of[run]] = lrs[run]

            batches = {s: sample_batch(corpus.train, batch_size, context, generators[s]) for s in unique_seeds}
            x = torch.stack([batches[s][0] for s in row_seed])
            y = torch.stack([batches[s][1] for s in row_seed])
            # Leaves that share flat's memory: autograd fills one gradient per parameter, and
            # the in-place update of flat below moves them too.
            leaves = {name: w.detach().requires_grad_() for name, w in params(flat).items()}
            loss = _stacked_lm_losses(leaves, x, y, n_layers, n_heads)
            loss.sum().backward()  # rows are independent: each gets its own gradient
            grad = torch.cat([leaves[name].grad.reshape(len(flat), -1) for name in names], dim=1)
            del leaves
            loss = loss.detach()
            losses = loss.tolist()
            for run in alive:
                histories[run].lr.append(lrs[run])
                histories[run].loss.append(losses[row_of[run]])
            finite = [row for row, value in enumerate(losses) if math.isfinite(value)]
            if len(finite) < len(flat):  # stop the rows that blew up, as train_lm stops
                for run in alive:
                    if row_of[run] not in finite:
                        histories[run].diverged = True
                alive = [run for run in alive if row_of[run] in finite]
                if not alive:
                    break
                row_lr = [row_lr[row] for row in finite]
                grad = keep_rows(finite, grad)

            # AdamW, as torch.optim.AdamW computes it, one LR per row: the decay first
            # (weights times 1 - lr * weight_decay), then Adam's step.
            t = step + 1
            if weight_decay:
                flat.mul_(torch.tensor([1 - lr * weight_decay for lr in row_lr], dtype=flat.dtype,
                                       device=device).view(-1, 1))
            bias_correction1 = 1 - beta1 ** t
            bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
            neg_step_size = torch.tensor([-lr / bias_correction1 for lr in row_lr], dtype=flat.dtype,
                                         device=device).view(-1, 1)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(1e-8)
            flat.addcdiv_(exp_avg * neg_step_size, denom)

            due = [run for run in alive if eval_every and (t % eval_every == 0 or t == totals[run])]
            if due:  # evaluate only the rows whose runs record a validation loss now
                rows = sorted({row_of[run] for run in due})
                with torch.no_grad():
                    total = torch.zeros(len(rows), dtype=torch.float64, device=device)
                    for chunk in val_idx.split(256):
                        xs, ys = (val[c].expand(len(rows), -1, -1) for c in (chunk, chunk + 1))
                        total += _stacked_lm_losses(params(flat[rows]), xs, ys, n_layers, n_heads).double() * len(chunk)
                    val_losses = (total / len(val_idx)).tolist()
                for run in due:
                    histories[run].val_steps.append(t)
                    histories[run].val_loss.append(val_losses[rows.index(row_of[run])])
            if any(totals[run] == t for run in alive):  # runs that are done stop; so do rows no run needs
                alive = [run for run in alive if totals[run] > t]
                needed = sorted({row_of[run] for run in alive})
                if len(needed) < len(flat):
                    keep_rows(needed)
            bar.update(1)
    return histories
