"""Time the course on this machine: one training run, a 16-LR sweep done one run after
another and batched, and every notebook top to bottom.

Not collected by pytest (no ``test_`` prefix). Run it with ``bin/benchmark`` (sets up
``.venv`` first) or ``.venv/bin/python tests/benchmark.py``. Options::

    --skip-notebooks     only the training timings (about a minute)
    --device DEV         cpu, cuda or mps (default: lrcourse.pick_device(), i.e. cuda > mps > cpu)
    --repeats N          repeats of each training timing (default 5); the median is reported
    --notebooks PATTERN  only the notebooks whose folder name contains PATTERN
    --modes full,quick   which notebook modes to run (default both)

What it prints:

* the device, the CPU, PyTorch's thread count and the load average (other processes on
  the machine slow every number here; the load is printed before and after each part);
* ``one run``: ``lrcourse.train(0.05, 300)`` on the digits MLP (SGD, momentum 0.9, batch 64);
* ``sequential``: ``lr_sweep`` over 16 LRs (1e-4 to 1, log-spaced: none of them reaches
  NaN, so every run does all 300 updates) and ``batched``: ``lr_sweep_batched`` over the
  same LRs; then batched / one run (the target is 2x or less) and sequential / batched;
  and the same sweep written with ``torch.func`` (``vmap`` of ``grad`` of
  ``functional_call``), against the hand-written batched passes.
  The repeats are interleaved (one run, sequential, batched, one run, ...) so that a
  change in the machine's load hits all three alike; each figure is the median. It also
  checks that the batched curves equal the sequential ones (largest relative difference);
* every ``solutions/NN-topic/NN-topic.py``, built with ``lrgrade``'s ``build_notebook``
  into a temporary folder and executed with nbclient, once in full mode
  (``LRCOURSE_QUICK=0``: what a learner runs) and once in quick mode (``LRCOURSE_QUICK=1``:
  what grading and CI run): the time of its cells, and of kernel start-up plus cells;
* the whole course: the sum over the notebooks, for each mode.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))

import torch  # noqa: E402

import lrcourse  # noqa: E402
from lrcourse.batched import lr_sweep_batched  # noqa: E402
from lrcourse.train import lr_sweep, train  # noqa: E402

STEPS = 300
N_LRS = 16
LRS = [10 ** (-4 + 4 * i / (N_LRS - 1)) for i in range(N_LRS)]  # 1e-4 ... 1


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load n/a"
    return f"load {one:.2f} (1 min) {five:.2f} (5 min)"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return f"mps (Apple GPU, {platform.machine()})"
    return f"cpu ({cpu_name()})"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn, device: torch.device):
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def matmul_flops_per_update(batch: int = 64) -> int:
    """Multiply-adds x 2 in one update of one DigitsMLP: forward, weight gradients, and the
    input gradients of every layer but the first."""
    layers = [m for m in lrcourse.DigitsMLP().modules() if isinstance(m, torch.nn.Linear)]
    sizes = [layer.in_features * layer.out_features for layer in layers]
    return 2 * batch * (3 * sum(sizes) - sizes[0])


def largest_difference(seq: dict, bat: dict) -> float:
    worst = 0.0
    for lr in seq:
        a, b = seq[lr], bat[lr]
        if a.diverged != b.diverged or len(a.loss) != len(b.loss):
            return math.inf
        for x, y in zip(a.loss, b.loss):
            if math.isfinite(x) and math.isfinite(y):
                worst = max(worst, abs(x - y) / max(abs(x), 1e-12))
    return worst


def sweep_with_torch_func(lrs, total_steps: int, data, device) -> None:
    """The batched sweep written with torch.func (stack_module_state, functional_call, vmap,
    grad) and SGD with momentum: the alternative to lrcourse.batched's hand-written passes."""
    import copy

    import torch.nn.functional as F
    from torch.func import functional_call, grad, stack_module_state, vmap

    from lrcourse.train import minibatch_indices

    lrcourse.seed_everything(0)
    models = [lrcourse.DigitsMLP().to(device) for _ in lrs]
    params, buffers = stack_module_state(models)
    skeleton = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, x, y):
        return F.cross_entropy(functional_call(skeleton, (p, b), (x,)), y)

    grads_of = vmap(grad(loss), in_dims=(0, 0, None, None))
    lr = torch.tensor(list(lrs), device=device)
    momentum = {}
    batches = minibatch_indices(len(data.x_train), 64, torch.Generator().manual_seed(0))
    for _ in range(total_steps):
        idx = next(batches).to(device)
        grads = grads_of(params, buffers, data.x_train[idx], data.y_train[idx])
        for name, g in grads.items():
            momentum[name] = g if name not in momentum else momentum[name].mul_(0.9).add_(g)
            params[name] = params[name] - lr.view(-1, *[1] * (g.dim() - 1)) * momentum[name]


def bench_training(device: torch.device, repeats: int) -> None:
    data = lrcourse.load_digits(device)
    print(f"\n== Training: digits MLP, {STEPS} updates, SGD momentum 0.9, batch 64 "
          f"({repeats} repeats, median) ==")
    print(f"sweep: {N_LRS} LRs, {LRS[0]:.0e} to {LRS[-1]:g} log-spaced   [{load()}]")
    # warm-up: first calls load kernels and allocate
    train(0.05, 20, data=data, device=device)
    lr_sweep_batched(LRS, 20, data=data, device=device)

    sweep_with_torch_func(LRS, 20, data, device)
    one, seq, bat, func = [], [], [], []
    seq_runs = bat_runs = None
    for r in range(repeats):
        t, _ = timed(lambda: train(0.05, STEPS, data=data, device=device), device)
        one.append(t)
        t, seq_runs = timed(lambda: lr_sweep(LRS, STEPS, data=data, device=device), device)
        seq.append(t)
        t, bat_runs = timed(lambda: lr_sweep_batched(LRS, STEPS, data=data, device=device), device)
        bat.append(t)
        t, _ = timed(lambda: sweep_with_torch_func(LRS, STEPS, data, device), device)
        func.append(t)
        print(f"  repeat {r + 1}: one run {one[-1]:.3f} s, sequential {seq[-1]:.3f} s, "
              f"batched {bat[-1]:.3f} s, torch.func {func[-1]:.3f} s   [{load()}]", flush=True)
    one_s, seq_s, bat_s = (statistics.median(v) for v in (one, seq, bat))
    paired = statistics.median(b / o for b, o in zip(bat, one))
    print(f"one run ({STEPS} updates):         {one_s:8.3f} s  (best {min(one):.3f} s)")
    print(f"{N_LRS}-LR sweep, sequential:        {seq_s:8.3f} s  ({seq_s / one_s:.1f}x one run; best {min(seq):.3f} s)")
    print(f"{N_LRS}-LR sweep, batched:           {bat_s:8.3f} s  ({bat_s / one_s:.2f}x one run; best {min(bat):.3f} s)")
    print(f"batched / one run:               {bat_s / one_s:8.2f}x  (target <= 2x; median of the "
          f"per-repeat ratios {paired:.2f}x, best times {min(bat) / min(one):.2f}x)")
    print(f"speed-up of batching:            {seq_s / bat_s:8.2f}x  (sequential / batched)")
    func_s = statistics.median(func)
    print(f"torch.func instead:              {func_s:8.3f} s  ({func_s / bat_s:.2f}x batched's time; "
          f"lrcourse.batched keeps its hand-written passes unless this is under 1.3x)")
    flops = N_LRS * STEPS * matmul_flops_per_update()
    print(f"batched matrix products:         {flops / 1e9:8.1f} GFLOP, {flops / bat_s / 1e9:.1f} GFLOP/s "
          f"(the floor of the batched time is this work at the BLAS's speed)")
    diff = largest_difference(seq_runs, bat_runs)
    print(f"batched vs sequential curves:    largest relative difference {diff:.1e}"
          + ("  (bit-identical)" if diff == 0 else ""))


def notebook_env(quick: bool, device: str | None = None) -> dict[str, str]:
    """The kernel's environment for a learner's run: full or quick mode, never "grading"."""
    env = {k: v for k, v in os.environ.items() if k not in ("NBGRADER_EXECUTION", "CI")}
    env["LRCOURSE_QUICK"] = "1" if quick else "0"
    if device:
        env["LRCOURSE_DEVICE"] = device
    return env


def run_notebook(source: Path, workdir: Path, env: dict[str, str], timeout: int):
    """Build ``source`` into ``workdir`` and execute it top to bottom with the kernel's
    environment ``env``; (cells s, total s, error or None, the executed notebook)."""
    import nbformat
    from nbclient import NotebookClient
    from lrgrade.notebooks import build_notebook
    from lrgrade.preprocessors import no_output_widget_emulation

    nb = build_notebook(source)
    path = workdir / f"{source.stem}.ipynb"
    nbformat.write(nb, path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    no_output_widget_emulation(client)  # else a widget cell can stall until the timeout
    start = time.perf_counter()
    cells = math.nan
    error = None
    kernel_log = workdir / "kernel-stderr.log"  # kept out of the report unless it fails
    try:
        with open(kernel_log, "w") as log, client.setup_kernel(stderr=log, env=env):
            cells_start = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            cells = time.perf_counter() - cells_start
    except Exception as exc:  # report and go on with the next notebook
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
        log_lines = kernel_log.read_text().strip().splitlines() if kernel_log.exists() else []
        tail = [line for line in log_lines if "without encryption" not in line][-5:]
        if tail:
            error += "\n    kernel stderr: " + "\n    ".join(tail)
    return cells, time.perf_counter() - start, error, nb


def bench_notebooks(device: str | None, pattern: str | None, modes: list[str], timeout: int) -> None:
    from lrgrade.notebooks import assignments, source_path

    names = [a for a in assignments() if not pattern or pattern in a]
    sources = [source_path(a) for a in names if source_path(a).is_file()]
    if not sources:
        print("\nno notebooks found under solutions/")
        return
    totals: dict[str, tuple[float, float]] = {}
    for mode in modes:
        quick = mode == "quick"
        print(f"\n== Notebooks, {mode} mode (LRCOURSE_QUICK={int(quick)}), top to bottom ==   [{load()}]")
        print(f"{'notebook':32s} {'cells':>9s} {'+kernel':>9s}")
        sum_cells = sum_total = 0.0
        with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
            for source in sources:
                workdir = Path(tmp) / source.parent.name
                workdir.mkdir()
                cells, total, error, _ = run_notebook(source, workdir, notebook_env(quick, device), timeout)
                sum_cells += cells if math.isfinite(cells) else 0.0
                sum_total += total
                status = f"  FAILED: {error}" if error else ""
                print(f"{source.parent.name:32s} {cells:8.1f}s {total:8.1f}s{status}   [{load()}]", flush=True)
        print(f"{'whole course (' + mode + ')':32s} {sum_cells:8.1f}s {sum_total:8.1f}s")
        totals[mode] = (sum_cells, sum_total)
    if len(totals) > 1:
        print("\nwhole course: " + ", ".join(
            f"{mode} {cells:.1f} s of cells ({total:.1f} s with kernel start-ups)"
            for mode, (cells, total) in totals.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cpu, cuda or mps (default: lrcourse.pick_device())")
    parser.add_argument("--skip-notebooks", action="store_true", help="only the training timings")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per training timing (median)")
    parser.add_argument("--notebooks", metavar="PATTERN", help="only notebooks whose name contains this")
    parser.add_argument("--modes", default="full,quick", help="notebook modes: full, quick or both")
    parser.add_argument("--cell-timeout", type=int, default=900, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"full", "quick"}:
        parser.error("--modes takes full, quick or full,quick")

    device = lrcourse.pick_device(args.device)
    print("== LR Schedules benchmark ==")
    print(f"device:  {describe(device)}")
    print(f"machine: {cores()} CPU cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s) (LRCOURSE_THREADS), Python {platform.python_version()}")
    print(f"start:   {load()}")
    bench_training(device, max(1, args.repeats))
    if not args.skip_notebooks:
        bench_notebooks(args.device, args.notebooks, modes, args.cell_timeout)
    print(f"\nend:     {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
