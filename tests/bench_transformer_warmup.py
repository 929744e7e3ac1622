"""Measure the tiny transformer's warmup and schedule experiments (notebooks 03-04).

Not collected by pytest (no ``test_`` prefix): run it by hand to re-measure the numbers
that the notebooks and COURSE.md quote::

    .venv/bin/python tests/bench_transformer_warmup.py timing            # s per 100 steps
    .venv/bin/python tests/bench_transformer_warmup.py warmup            # 1,000 steps, 3 seeds
    .venv/bin/python tests/bench_transformer_warmup.py schedules         # peak 0.01, 3 seeds
    .venv/bin/python tests/bench_transformer_warmup.py warmup --steps 300 --peaks 0.03 0.05
    .venv/bin/python tests/bench_transformer_warmup.py report results.json   # tables again

Options: ``--jobs N`` runs N trainings in parallel processes, each with ``--threads``
PyTorch threads (default: what ``lrcourse`` sets, one thread unless ``LRCOURSE_THREADS``
says otherwise; ``--jobs 2`` uses both cores of a 2-core machine); ``--out FILE``
appends every run (settings, summary and the whole loss curve) to a JSON-lines file.
Losses do not depend on ``--jobs``; with another thread count they differ by ~1e-6 at
first and by up to ~0.02 in the final loss after 300 steps (same conclusions).

The schedules are written inline here on purpose: students implement them in the
notebooks, so ``lrcourse`` must not ship them. Conventions (COURSE.md): update ``t``
uses ``lr(t)``; warmup of ``W`` steps is linear from ``peak / W`` (update 0) to ``peak``
(update ``W - 1``); the decay after warmup runs over progress ``(t - W) / (T - W)``.

Per run it reports: ``final`` the mean training loss of the last 20 updates
(``History.final_loss``), ``val`` the validation loss after the last update, ``rise``
the largest rise of the 10-step running mean of the loss above its lowest earlier value
(a spike or a collapse shows as a rise of several tenths of a nat), and ``div`` whether
the loss became NaN/inf.

Measured on the 2-core CPU, torch 2.13, one thread per job (final = mean training loss
of the last 20 updates; seeds 0, 1, 2 unless said; W = warmup steps; constant after W)::

    peak   W    300 steps           1000 steps constant   1000 steps cosine to 10%
    0.003  0    -                   1.715 1.665 1.659     -
    0.003  100  -                   1.674 1.683 1.693     -
    0.005  0    -                   1.668 1.713 1.695     -
    0.005  100  -                   1.672 1.673 1.661     -
    0.01   0    2.41-2.58 (10 seeds) 2.022 1.994 2.032     2.013 2.010 1.979
    0.01   100  2.13-2.25 (10 seeds) 1.706 1.709 1.666     1.628 1.619 1.580
    0.03   0    2.80-2.93           2.757 2.736 2.810     2.598 2.618 2.615
    0.03   100  2.29-2.60           2.728 1.983 1.841     2.439 1.846 1.670
    0.03   300  -                   1.829 1.835 1.771     1.632 1.630 1.594

Schedules at peak 0.01 with W = 100, 1000 steps (mean of 3 seeds): constant 1.694,
step (x0.316 at 50% and 75% of the decay) 1.624, cosine to 10% 1.609, linear to 10%
1.599, linear to 0 1.597. At peaks 0.1-0.3 nothing trains past ~3.0 in 300 steps;
without warmup the loss spikes to 9-22 nats in updates 3-5 at 0.3 (10 of 10 seeds).
About 1.2 s per 100 steps with one thread (idle or busy machine); two threads: 1.3 s
when the second core is free, 8-50 s when another process uses it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from lrcourse.transformer import load_corpus, train_lm  # noqa: E402


# --------------------------------------------------------------------------- schedules
def make_schedule(kind: str, peak: float, total: int, warmup: int = 0, final_frac: float = 0.1):
    """``lr(step)`` for ``kind`` in constant / cosine / linear / linear0 / step, with
    ``warmup`` linear warmup steps in front (0 = none)."""
    lo = peak * final_frac

    def decay(p: float) -> float:  # p in [0, 1]: progress through the post-warmup part
        p = min(max(p, 0.0), 1.0)
        if kind == "constant":
            return peak
        if kind == "cosine":
            return lo + 0.5 * (peak - lo) * (1 + math.cos(math.pi * p))
        if kind == "linear":  # linear decay to final_frac * peak
            return peak + (lo - peak) * p
        if kind == "linear0":  # linear decay to 0 (the last update uses a tiny LR, not 0)
            return peak * (1 - p)
        if kind == "step":  # x sqrt(final_frac) at 50% and again at 75%: ends at final_frac * peak
            return peak * math.sqrt(final_frac) ** ((p >= 0.5) + (p >= 0.75))
        raise ValueError(kind)

    def lr(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / warmup
        return decay((step - warmup) / max(1, total - warmup))

    return lr


# --------------------------------------------------------------------------- one run
_CORPUS = None


def _worker_init(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def run_one(cfg: dict) -> dict:
    global _CORPUS
    if _CORPUS is None:
        _CORPUS = load_corpus("cpu")
    schedule = make_schedule(cfg["kind"], cfg["peak"], cfg["steps"], cfg["warmup"])
    start = time.perf_counter()
    h = train_lm(schedule, cfg["steps"], seed=cfg["seed"], device="cpu", corpus=_CORPUS,
                 betas=(0.9, cfg.get("beta2", 0.999)), eval_every=cfg["steps"], progress=False)
    seconds = time.perf_counter() - start
    loss = h.loss
    smooth = [sum(loss[max(0, i - 9):i + 1]) / len(loss[max(0, i - 9):i + 1]) for i in range(len(loss))]
    best, rise, rise_at = math.inf, 0.0, 0
    for i, v in enumerate(smooth):
        if math.isfinite(v) and v - best > rise:
            rise, rise_at = v - best, i
        best = min(best, v)
    return {
        **cfg,
        "final": h.final_loss(),
        "val": h.val_loss[-1] if h.val_loss else math.inf,
        "rise": rise, "rise_at": rise_at,
        "min_smooth": min(smooth),
        "div": h.diverged,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
        "loss": loss,
    }


def run_all(cfgs: list[dict], jobs: int, threads: int | None, out: Path | None) -> list[dict]:
    results = []
    if jobs == 1:
        _worker_init(threads)
        iterator = map(run_one, cfgs)
    else:
        pool = ProcessPoolExecutor(jobs, initializer=_worker_init, initargs=(threads,))
        iterator = pool.map(run_one, cfgs)
    for r in iterator:
        results.append(r)
        print(f"  {_label(r):<28} seed {r['seed']}: final {r['final']:.3f}  val {r['val']:.3f}  "
              f"rise {r['rise']:.2f}@{r['rise_at']}  {'DIVERGED ' if r['div'] else ''}"
              f"{r['seconds']:.1f}s", flush=True)
        if out is not None:
            with out.open("a") as f:
                f.write(json.dumps(r) + "\n")
    return results


# --------------------------------------------------------------------------- reports
def _label(r: dict) -> str:
    beta2 = r.get("beta2", 0.999)
    label = f"{r['steps']} steps peak {r['peak']:g} W={r['warmup']} {r['kind']}"
    return label + (f" b2={beta2:g}" if beta2 != 0.999 else "")


def report(results: list[dict]) -> None:
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["steps"], r.get("beta2", 0.999), r["peak"], r["kind"], r["warmup"]), []).append(r)
    print(f"\n{'steps':>5} {'beta2':>5} {'peak':>6} {'decay':<9}{'W':>4} | {'final loss per seed':<24}| {'mean':>6} "
          f"{'val':>6} | {'max rise per seed':<18}| diverged")
    for key in sorted(groups):
        rs = sorted(groups[key], key=lambda r: r["seed"])
        finals = [r["final"] for r in rs]
        mean = statistics.fmean(finals) if all(map(math.isfinite, finals)) else math.inf
        vals = [r["val"] for r in rs]
        vmean = statistics.fmean(vals) if all(map(math.isfinite, vals)) else math.inf
        rises = " ".join(f"{r['rise']:4.2f}" for r in rs)
        print(f"{key[0]:>5} {key[1]:>5g} {key[2]:>6g} {key[3]:<9}{key[4]:>4} | "
              f"{' '.join(f'{v:6.3f}' for v in finals):<24}| {mean:6.3f} {vmean:6.3f} | "
              f"{rises:<18}| {sum(r['div'] for r in rs)}/{len(rs)}")


def timing(threads: int | None, steps: int = 300) -> None:
    _worker_init(threads)
    corpus = load_corpus("cpu")
    train_lm(0.01, 20, corpus=corpus, device="cpu", progress=False)  # warm up the kernels
    for _ in range(3):
        start = time.perf_counter()
        train_lm(0.01, steps, corpus=corpus, device="cpu", progress=False)
        per100 = (time.perf_counter() - start) / steps * 100
        print(f"threads={torch.get_num_threads()}: {per100:.2f} s per 100 steps (batch 32, context 32), "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["timing", "warmup", "schedules", "report"])
    parser.add_argument("files", nargs="*", type=Path, help="for `report`: JSON-lines files")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, nargs="+", default=[0, 100], help="warmup lengths to compare")
    parser.add_argument("--peaks", type=float, nargs="+", default=[0.01, 0.03])
    parser.add_argument("--kinds", nargs="+", default=None,
                        help="decays (default: constant cosine for warmup, all for schedules)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--beta2", type=float, default=0.999, help="AdamW's beta2 (beta1 is 0.9)")
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch CPU threads per job (default: lrcourse's, 1 unless LRCOURSE_THREADS)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    if args.what == "timing":
        timing(args.threads)
        return
    if args.what == "report":
        report([json.loads(line) for f in args.files for line in f.read_text().splitlines() if line.strip()])
        return
    if args.what == "warmup":
        kinds = args.kinds or ["constant", "cosine"]
        cfgs = [dict(steps=args.steps, peak=p, kind=k, warmup=w, seed=s)
                for p in args.peaks for k in kinds for w in args.warmup for s in args.seeds]
        cfgs = [dict(c, beta2=args.beta2) for c in cfgs]
    else:
        kinds = args.kinds or ["constant", "step", "cosine", "linear", "linear0"]
        warmup = args.warmup[-1]
        cfgs = [dict(steps=args.steps, peak=p, kind=k, warmup=warmup, seed=s, beta2=args.beta2)
                for p in args.peaks for k in kinds for s in args.seeds]
    report(run_all(cfgs, args.jobs, args.threads, args.out))


if __name__ == "__main__":
    main()
