# %% [markdown]
# # 10 · Why warmup works: sharpness and the edge of stability
#
# Notebook 01 proved that gradient descent on a quadratic is stable only while
# $\eta < 2/\lambda_{\max}$, where $\lambda_{\max}$, the **sharpness**, is the largest
# curvature of the loss. It also warned that for a network this limit is no constant: the
# curvature changes as the weights move. Notebook 04 found that a warmup helps a transformer,
# without saying what it changes inside the network. This notebook measures the sharpness of
# a real network while it trains, and finds that the network changes its own curvature in
# answer to the learning rate. That is the mechanism behind warmup.
#
# **You will**
# 1. compute Hessian-vector products by differentiating twice, without ever building the Hessian;
# 2. find the top eigenvalue by power iteration, and the largest one when some are negative,
#    checked against exact Hessians;
# 3. watch full-batch gradient descent raise a network's sharpness until it reaches $2/\eta$,
#    and keep it there;
# 4. see a warmup carry a network that starts out sharp to a learning rate at which it
#    otherwise diverges;
# 5. derive Adam's own stability threshold from 01's momentum result, and watch Adam's
#    preconditioned sharpness settle at it.
#
# Exercises: `hvp` (2 points), `power_iteration` (3), `sharpness` (2), `adam_threshold` (1).

# %% nbgrader={"grade_id": "setup", "locked": true}
import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse
from lrcourse.sharpness import (Subset, digits_subset, draw_run, flatten_run, init_params, loss_of_flat,
                                sharpness_explorer, train_tracking)

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiments are shorter and use one seed (grading or CI).")

# %% [markdown]
# ## 1. Curvature along a direction: the Hessian-vector product
#
# Put all the weights of a network in one vector $\theta$ of length $P$. The Hessian $H$ of
# the loss $L(\theta)$ is the $P \times P$ matrix of second derivatives,
# $H_{ij} = \partial^2 L / \partial\theta_i \partial\theta_j$; it is symmetric, so it has $P$
# real eigenvalues and orthonormal eigenvectors, and the sharpness is its largest eigenvalue.
# The network we train below is small, $P = 3{,}466$, and its Hessian already has 12 million
# entries; a model with a billion weights would have $10^{18}$. Nobody builds it.
#
# What we can afford is the product $Hv$ with one vector $v$. Take the gradient
# $g(\theta) = \nabla L(\theta)$ and its dot product with a fixed $v$, the slope of the loss
# along $v$:
#
# $$ s(\theta) = g(\theta)\cdot v = \sum_i \frac{\partial L}{\partial\theta_i}\, v_i . $$
#
# Differentiate it once more:
#
# $$ \frac{\partial s}{\partial \theta_j} = \sum_i \frac{\partial^2 L}{\partial\theta_j\,\partial\theta_i}\, v_i
#    = (Hv)_j . $$
#
# So $Hv = \nabla_\theta\,(g(\theta)\cdot v)$: the gradient of a dot product with the gradient,
# at a cost of a small multiple of one gradient, however large $P$ is.
#
# The tool is `torch.autograd.grad(output, inputs, create_graph=False)`. It returns a tuple
# with one gradient per input, and it differentiates only with respect to tensors that
# require gradients. By default the gradients it returns are plain numbers with no record of
# how they were computed, so they cannot be differentiated again; `create_graph=True` keeps
# that record.
#
# **Exercise (2 points).** Write `hvp(loss_fn, params, v)`. `loss_fn` maps a 1-D tensor of
# parameters to a scalar loss; `params` is such a tensor (it may or may not require
# gradients) and `v` a tensor of the same shape. Return $Hv$, the Hessian of `loss_fn` at
# `params` times `v`, as a 1-D tensor. Leave `params` as it was: do not change it, and leave
# no `.grad` on it (no `.backward()`).

# %% nbgrader={"grade_id": "hvp", "solution": true}
def hvp(loss_fn, params, v):
    """The Hessian of loss_fn at params, times v: the gradient of (gradient . v)."""
    ### BEGIN SOLUTION
    params = params.detach().requires_grad_(True)  # a fresh leaf: the caller's tensor keeps no graph or .grad
    (grad,) = torch.autograd.grad(loss_fn(params), params, create_graph=True)
    (product,) = torch.autograd.grad(grad @ v, params)
    return product
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_hvp", "grade": true, "points": 2}
import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests
from lrcourse.sharpness import tiny_network


@probe
def hvp_on_tiny_network(seed, requires_grad):
    """hvp at the tiny network's point, and what it did to the parameters it was given."""
    loss_fn, p, v = tiny_network(seed)
    p.requires_grad_(requires_grad)
    before = p.detach().clone()
    product = hvp(loss_fn, p, v)
    return {"product": product, "unchanged": bool(torch.equal(p.detach(), before)), "grad_left": p.grad is not None}


def matches_the_exact_hessian(seed, requires_grad):
    """A check: the product equals the exact Hessian (torch.autograd.functional.hessian) times v."""
    loss_fn, p, v = tiny_network(seed)
    expected = torch.autograd.functional.hessian(loss_fn, p) @ v
    what = f"hvp on a tiny tanh network (26 parameters, requires_grad={requires_grad})"

    def check(got):
        assert_true(isinstance(got["product"], torch.Tensor),
                    f"{what} returned a {type(got['product']).__name__}; return the product as one tensor "
                    "(torch.autograd.grad returns a tuple: take its element)")
        assert_close(got["product"], expected, what, rtol=1e-7, atol=1e-10,
                     hint="differentiate the dot product of the gradient (made with create_graph=True) with v")
        assert_true(got["unchanged"], f"{what} changed the values of params; leave them as they were")
        assert_true(not got["grad_left"], f"{what} left a .grad on params: use torch.autograd.grad, not .backward()")
    return check


def f64(values):
    return f"torch.tensor({values!r}, dtype=torch.float64)"


tests = [
    code(f"hvp(lambda p: 0.5 * p @ {f64([[2.0, 1.0], [1.0, 3.0]])} @ p, {f64([1.0, -1.0])}, {f64([1.0, 0.0])})",
         "hvp(0.5 * p^T A p with A = [[2, 1], [1, 3]], params = [1, -1], v = [1, 0])").expect(
        [2.0, 1.0], hint="the Hessian of 0.5 * p^T A p is A everywhere, so H v = A v"),
    code(f"hvp(lambda p: (p ** 3).sum() / 3, {f64([1.0, 2.0, -3.0])}, {f64([1.0, 1.0, 2.0])})",
         "hvp(sum(p**3) / 3, params = [1, 2, -3], v = [1, 1, 2])").expect(
        [2.0, 4.0, -12.0], hint="the Hessian of sum(p**3) / 3 is diag(2 p): it depends on params, not only on v"),
]
### BEGIN HIDDEN TESTS
tests += [
    code("hvp_on_tiny_network(0, False)", "hvp on a tiny tanh network").check(matches_the_exact_hessian(0, False)),
    code("hvp_on_tiny_network(5, True)", "hvp on a tiny tanh network whose parameters require gradients").check(
        matches_the_exact_hessian(5, True)),
    code(f"hvp(lambda p: (p ** 3).sum() / 3, {f64([0.5, -1.0, 2.0, 0.0])}, {f64([2.0, 0.0, 1.0, 5.0])})",
         "hvp(sum(p**3) / 3, params = [0.5, -1, 2, 0], v = [2, 0, 1, 5])").expect(
        [2.0, 0.0, 4.0, 0.0], hint="H = diag(2 p): take the Hessian at params, times v"),
    code("hvp(lambda p: (p ** 2).sum(), torch.ones(3), torch.tensor([1.0, -2.0, 0.5]))",
         "hvp(sum(p**2), float32 params, v = [1, -2, 0.5])").expect(
        [2.0, -4.0, 1.0], hint="H = 2 I for sum(p**2); it must work in float32 too"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 2. The top eigenvalue by power iteration
#
# One product $Hv$ does not give an eigenvalue; many do. Write the start vector in the
# eigenvectors $u_i$ of $H$, $v_0 = \sum_i c_i u_i$. Each product multiplies the component
# along $u_i$ by its eigenvalue $\lambda_i$, so after $k$ products
#
# $$ H^k v_0 = \sum_i c_i \lambda_i^k\, u_i . $$
#
# The component with the largest $|\lambda_i|$ grows fastest: relative to it, every other
# component shrinks by $|\lambda_i / \lambda_1|$ per product, so $H^k v_0$ turns towards
# $\pm u_1$ (unless $c_1 = 0$ exactly, which a random start makes vanishingly unlikely). It is
# notebook 01 again: gradient descent on the quadratic multiplies the error by $I - \eta H$ at
# every step, and its slowest direction dominates the same way.
#
# Two practical points. The lengths $|\lambda_1|^k$ overflow or underflow within a few
# hundred products, while only the direction matters: **normalise** the vector after every
# product. And read the eigenvalue off the direction with the **Rayleigh quotient**
# $v^\top H v$ of a unit vector $v$: for $v = \pm u_1$ it is exactly $\lambda_1$, sign
# included, and its error shrinks like the square of the direction's error. Each step then
# costs one product $w = Hv$, which gives both the quotient $v \cdot w$ and the next direction
# $w/|w|$.
#
# **Exercise (3 points).** Write `power_iteration(matvec, v0, iters)`. `matvec(v)` returns
# $Hv$ for a 1-D tensor `v`, for some symmetric $H$ you cannot see; `v0` is the start (not
# necessarily of length 1); `iters >= 1`. Use exactly `iters` products. Return
# `(value, vector)`: `vector` is the last product, normalised, and `value` (a float) the
# Rayleigh quotient of the unit vector that went into that product. The value estimates the
# eigenvalue of largest size, with its sign.

# %% nbgrader={"grade_id": "power_iteration", "solution": true}
def power_iteration(matvec, v0, iters):
    """The eigenvalue of largest size of the symmetric matrix behind matvec, and its unit vector."""
    ### BEGIN SOLUTION
    v = v0 / torch.linalg.norm(v0)
    for _ in range(iters):
        w = matvec(v)
        value = float(v @ w)  # the Rayleigh quotient of the unit vector v
        v = w / torch.linalg.norm(w)
    return value, v
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_power_iteration", "grade": true, "points": 3}
import math

import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests


@probe
def power_iteration_on(eigenvalues, iters, seed=0):
    """power_iteration on a symmetric matrix with these eigenvalues and random eigenvectors, from a vector of ones:
    the value, how much of the vector lies in the top eigenspace, its length, and the number of products."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    matrix = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    products = []

    def matvec(v):
        products.append(1)
        return matrix @ v

    value, vector = power_iteration(matvec, torch.ones(n, dtype=torch.float64), iters)
    vector = torch.as_tensor(vector, dtype=torch.float64)
    largest = max(abs(lam) for lam in eigenvalues)
    top = [i for i, lam in enumerate(eigenvalues) if abs(lam) == largest]
    return {"value": float(value), "length": float(torch.linalg.norm(vector)), "products": len(products),
            "in_top": float(torch.linalg.norm(q[:, top].T @ vector) / torch.linalg.norm(vector))}


def converged_to(eigenvalue, iters, what):
    """A check of power_iteration_on's record: the value, a unit vector in the top eigenspace, iters products."""
    def check(got):
        assert_true(got["products"] == iters, f"{what} called matvec {got['products']} times; expected iters = "
                                              f"{iters}: one product per iteration")
        assert_close(got["value"], eigenvalue, f"{what}: the value", rtol=1e-6,
                     hint="the Rayleigh quotient v . (H v) of a unit vector v keeps the eigenvalue's sign")
        assert_close(got["length"], 1.0, f"{what}: the length of the vector", hint="return the normalised vector")
        assert_close(got["in_top"], 1.0, f"{what}: the share of the vector in the top eigenvector(s)", rtol=1e-5,
                     hint="return the last normalised product")
    return check


def value_and_vector(value, vector, what, hint):
    """A check of a (value, vector) result against exact numbers."""
    def check(got):
        assert_true(isinstance(got, tuple) and len(got) == 2, f"{what} returned {got!r}; expected (value, vector)")
        assert_close(got[0], value, f"{what}: the value", hint=hint)
        assert_close(got[1], vector, f"{what}: the vector", hint=hint)
    return check


DIAG = "lambda v: torch.tensor({}, dtype=torch.float64) * v"  # a diagonal matrix times v
tests = [
    code(f"power_iteration({DIAG.format([3.0, 1.0])}, torch.tensor([1.0, 1.0], dtype=torch.float64), 1)",
         "power_iteration(diag(3, 1), v0 = [1, 1], iters = 1)").check(value_and_vector(
        2.0, [3 / math.sqrt(10), 1 / math.sqrt(10)], "power_iteration(diag(3, 1), v0 = [1, 1], iters = 1)",
        hint="v = v0 / |v0| = [1, 1] / sqrt(2); w = H v; the value is v . w = 2; the vector is w / |w|")),
    code("power_iteration_on([3.0, 1.0], 60)", "power_iteration on a 2x2 matrix with eigenvalues 3 and 1").check(
        converged_to(3.0, 60, "power_iteration on a 2x2 matrix with eigenvalues 3 and 1")),
]
### BEGIN HIDDEN TESTS
for eigenvalues, iters, why in (([5.0, 2.0, 1.0, -1.0, 0.5], 200, ""),
                                ([-6.0, 3.0, 1.0, 0.2], 200, " (the largest in size is negative)"),
                                ([4.0, 4.0, 1.0, -0.5], 100, " (the top eigenvalue is repeated)"),
                                ([1e3, 10.0, 1.0], 200, " (large: normalise, or it overflows)"),
                                ([1e-3, 1e-4, 5e-5], 150, " (small: normalise, or it underflows)"),
                                ([-2.5], 3, " (a 1x1 matrix)")):
    what = f"power_iteration on a matrix with eigenvalues {eigenvalues}{why}"
    tests.append(code(f"power_iteration_on({eigenvalues!r}, {iters})", what).check(
        converged_to(eigenvalues[0], iters, what)))
tests += [
    code(f"power_iteration({DIAG.format([4.0, -2.0, 1.0])}, torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64), 1)",
         "power_iteration(diag(4, -2, 1), v0 = [2, 1, 2], iters = 1)").check(value_and_vector(
        2.0, [8 / math.sqrt(72), -2 / math.sqrt(72), 2 / math.sqrt(72)],
        "power_iteration(diag(4, -2, 1), v0 = [2, 1, 2], iters = 1)", hint="normalise v0 before the first product")),
    code(f"power_iteration({DIAG.format([4.0, -2.0, 1.0])}, torch.tensor([2.0, 1.0, 2.0], dtype=torch.float64), 2)",
         "power_iteration(diag(4, -2, 1), v0 = [2, 1, 2], iters = 2)").check(value_and_vector(
        3.5, [16 / math.sqrt(261), 2 / math.sqrt(261), 1 / math.sqrt(261)],
        "power_iteration(diag(4, -2, 1), v0 = [2, 1, 2], iters = 2)",
        hint="the value is the Rayleigh quotient of the vector that went into the last product")),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# How many products are enough? After $k$ of them the direction's error has shrunk like
# $|\lambda_2/\lambda_1|^k$ and the value's like $|\lambda_2/\lambda_1|^{2k}$. The cell
# below runs your function on three matrices whose two largest eigenvalues are 10 and
# $10\rho$, for three ratios $\rho$, one product at a time: each call continues from the
# vector the previous call returned.

# %% tags=["illustration"]
fig, ax = plt.subplots(figsize=(7, 3.6))
q, _ = torch.linalg.qr(torch.randn(50, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
for ratio in (0.5, 0.9, 0.99):
    spectrum = torch.cat([torch.tensor([10.0, 10.0 * ratio], dtype=torch.float64), torch.linspace(-5, 5, 48)])
    matrix = q @ torch.diag(spectrum).to(q) @ q.T
    vector, errors = torch.randn(50, generator=torch.Generator().manual_seed(1), dtype=torch.float64), []
    for _ in range(200):
        value, vector = power_iteration(lambda v: matrix @ v, vector, 1)
        errors.append(max(abs(value - 10.0) / 10.0, 1e-16))
    ax.semilogy(np.arange(1, 201), errors, label=f"$\\lambda_2/\\lambda_1$ = {ratio}")
ax.set(xlabel="products", ylabel="relative error of the value", title="power iteration: error against products")
ax.grid(True, alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# With a gap ($\rho = 0.5$) a few dozen products reach machine precision; with
# $\rho = 0.99$, two hundred products still leave a visible error. A network's top
# eigenvalues are often close together, so a measurement from scratch takes many products.
# But if the weights barely moved since the last measurement, neither did the top
# eigenvector: starting from the previous vector (a **warm start**) leaves only a little
# to fix. The experiments below measure the sharpness every 10 updates with 3 products
# from the previous vector.
#
# ## 3. The largest eigenvalue, not the largest in size
#
# A network's Hessian has negative eigenvalues too: away from a minimum the loss curves
# down along some directions. Notebook 01's limit is about positive curvature. Along a
# direction with $\lambda < 0$ the factor $1 - \eta\lambda$ is above 1 for every
# $\eta > 0$: gradient descent slides away, downhill, whatever the learning rate (Cohen et
# al., 2021, arXiv:2103.00065, note the same in a footnote). The oscillating blow-up above
# $2/\lambda$ comes only from the **largest** eigenvalue, the most positive one, and that is
# what "sharpness" means.
#
# Power iteration finds the eigenvalue largest *in size*. When that one is positive, it is
# the largest. When it is negative, there is a trick: $H - sI$ has the same eigenvectors as
# $H$ and the eigenvalues $\lambda_i - s$. Pick the shift $s$ so that every $\lambda_i - s$
# is $\ge 0$; then the eigenvalue of $H - sI$ largest in size is also its largest, power
# iteration finds it, and adding $s$ back gives $\lambda_{\max}$. You need a shift at or below
# the smallest eigenvalue, and the first run has just handed you one.
#
# **Exercise (2 points).** Write `sharpness(matvec, v0, iters)`, which returns the largest
# (most positive) eigenvalue of the symmetric matrix behind `matvec`, as a float. Use your
# `power_iteration` with `iters` products: once on $H$, and if its value is negative, once more
# on a shifted product, from `v0` again.

# %% nbgrader={"grade_id": "sharpness", "solution": true}
def sharpness(matvec, v0, iters):
    """The largest (most positive) eigenvalue of the symmetric matrix behind matvec."""
    ### BEGIN SOLUTION
    value, _ = power_iteration(matvec, v0, iters)
    if value >= 0:  # no-mutate (`>`: the two differ only at exactly 0, where the shift is 0 and both give 0)
        return value
    shifted, _ = power_iteration(lambda v: matvec(v) - value * v, v0, iters)  # eigenvalues lambda_i - value >= 0
    return shifted + value
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_sharpness", "grade": true, "points": 2}
import torch
from lrcourse.checks import code, probe, run_tests
from lrcourse.sharpness import tiny_network


@probe
def sharpness_on(eigenvalues, iters, seed=0):
    """sharpness of a symmetric matrix with these eigenvalues and random eigenvectors, from a vector of ones."""
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    matrix = q @ torch.diag(torch.tensor(eigenvalues, dtype=torch.float64)) @ q.T
    return float(sharpness(lambda v: matrix @ v, torch.ones(n, dtype=torch.float64), iters))


tests = [
    code("sharpness_on([3.0, -1.0, 0.5], 100)", "sharpness of a matrix with eigenvalues 3, -1, 0.5").expect(
        3.0, hint="the eigenvalue largest in size is positive here: it is the largest"),
    code("sharpness_on([2.0, -5.0, 1.0], 400)", "sharpness of a matrix with eigenvalues 2, -5, 1").expect(
        2.0, hint="power iteration finds -5; shift by it so that every eigenvalue of the shifted matrix is >= 0, "
                  "then undo the shift"),
]
### BEGIN HIDDEN TESTS
@probe
def tiny_hessian(seed):
    """The exact Hessian of the tiny tanh network's loss (26 parameters), at its point."""
    loss_fn, point, _ = tiny_network(seed)
    return torch.autograd.functional.hessian(loss_fn, point)


@probe
def sharpness_of_tiny_network(seed):
    """sharpness of that exact Hessian, from a vector of ones."""
    matrix = tiny_hessian(seed)
    return float(sharpness(lambda v: matrix @ v, torch.ones(26, dtype=torch.float64), 800))


tests += [
    code("sharpness_on([-1.0, -4.0, -2.0], 200)", "sharpness of a matrix with eigenvalues -1, -4, -2").expect(
        -1.0, hint="every eigenvalue is negative: the largest is the one closest to 0"),
    code("sharpness_on([1.5, -7.0, 0.3, -2.0], 400, seed=3)", "sharpness of a 4x4 matrix").expect(
        1.5, hint="shift, find the top of the shifted matrix, undo the shift"),
    code("sharpness_on([3.0, 3.0, -6.0, 1.0], 400)", "sharpness with a repeated top eigenvalue").expect(
        3.0, hint="shift, find the top of the shifted matrix, undo the shift"),
    code("sharpness_on([6.0, -2.0, 1.0], 100, seed=2)", "sharpness of a matrix with eigenvalues 6, -2, 1").expect(
        6.0, hint="when the first value is positive, it is already the answer"),
    code("sharpness_of_tiny_network(3)", "sharpness of a tiny network's exact Hessian").expect(
        float(torch.linalg.eigvalsh(tiny_hessian(3))[-1]), rtol=1e-6, hint="compare with torch.linalg.eigvalsh(H)[-1]"),
    code("sharpness_of_tiny_network(8)",
         "sharpness of a tiny network's exact Hessian whose eigenvalue largest in size is negative").expect(
        float(torch.linalg.eigvalsh(tiny_hessian(8))[-1]), rtol=1e-6, hint="compare with torch.linalg.eigvalsh(H)[-1]"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ### Your functions on a network's exact Hessian
#
# Before trusting them on a network too large for an exact answer, try them on one small
# enough to write its whole Hessian: a 64-4-10 network (310 parameters) on the 256 training
# images we use below. `torch.autograd.functional.hessian` builds the $310 \times 310$
# matrix and `torch.linalg.eigvalsh` gives every eigenvalue. Then your `hvp` against the
# matrix, your `power_iteration` and `sharpness` against the eigenvalues, and your
# `sharpness` of $-H$, which is $-\lambda_{\min}$: the most negative eigenvalue, found with the
# shift.

# %% tags=["illustration"]
subset = digits_subset(device=device)  # 256 images, one-hot targets
subset64 = Subset(subset.x.cpu().double(), subset.y.cpu().double())  # float64 on the CPU (MPS has no float64)
small_loss = loss_of_flat(subset64, sizes=(64, 4, 10))
theta = flatten_run(init_params([0], 1.0, sizes=(64, 4, 10), device="cpu"), 0).double()
exact = torch.autograd.functional.hessian(small_loss, theta)
eigenvalues = torch.linalg.eigvalsh(exact)
v0 = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
product_error = (hvp(small_loss, theta, v0) - exact @ v0).norm() / (exact @ v0).norm()
top, _ = power_iteration(lambda v: exact @ v, v0, 300)
print(f"eigvalsh: {(eigenvalues < 0).sum().item()} of {theta.numel()} eigenvalues are negative; "
      f"largest {eigenvalues[-1].item():.6f}, two smallest {eigenvalues[0].item():.6f} and {eigenvalues[1].item():.6f}")
print(f"your hvp against H @ v: relative difference {product_error.item():.1e}")
print(f"your power_iteration:  {top:.6f}")
print(f"your sharpness:        {sharpness(lambda v: exact @ v, v0, 300):.6f}")
print(f"-sharpness of -H:      {-sharpness(lambda v: -(exact @ v), v0, 2000):.6f}")

# %% [markdown]
# Dozens of the curvatures are negative (more than a tenth of them), but the largest in size
# is the positive top, so power iteration and `sharpness` agree with `eigvalsh`. The smallest
# eigenvalue needed the shift, and many more products: for $-H$ the shift is $s \approx -19$,
# and the two largest eigenvalues of the shifted matrix, $-\lambda_i - s$ for the two
# smallest $\lambda_i$, are about 20.5 and 20.4, within a percent of each other (section 2's
# slow case).
#
# ## 4. Full-batch gradient descent at the edge of stability
#
# Now a network we train. To see the curvature itself, and not the noise of minibatches,
# we follow Cohen et al. (2021, arXiv:2103.00065) and use **full-batch** gradient descent:
# every update uses the gradient of the loss over the whole training set. To keep that cheap,
# the training set is the first 256 images of the digits. The network is a 64-32-32-10 MLP
# with ELU activations (3,466 parameters), trained on half the squared error to one-hot
# targets, with plain gradient descent (no momentum) at a constant learning rate. Its
# weights start small, drawn from $\mathcal N(0, 0.5^2/\text{fan-in})$, and biases at 0.
#
# `train_tracking` trains all runs at once (their weights stacked, one batched product for
# every run) and measures each run's sharpness before every 10th update and at the end: 3
# products of power iteration, warm-started from the previous vector, with Hessian-vector
# products computed as in your `hvp` (30 products from a random vector at the start). We
# train at three learning rates, 0.3, 0.5 and 0.8, on three seeds each (in quick mode: two
# rates, fewer updates, one seed), and seed 0 at more rates for section 5. This takes a few
# seconds.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
SEEDS = [0, 1, 2]
EOS_LRS, EOS_STEPS = [0.3, 0.5, 0.8], 500
EXPLORE_LRS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0]
WARM_PEAK, WARM_STEPS, WARM_TOTAL = 1.0, 100, 400
ADAM_LRS, ADAM_STEPS = [3e-3, 1e-2], 400
if lrcourse.quick_mode():
    SEEDS, EOS_LRS, EOS_STEPS = [0], [0.5, 0.8], 250
    EXPLORE_LRS = [0.5, 2.0]
    WARM_TOTAL = 120
    ADAM_LRS, ADAM_STEPS = [1e-2], 200

# %% tags=["illustration"]
pairs = [(lr, seed) for lr in EOS_LRS for seed in SEEDS]
pairs += [(lr, 0) for lr in EXPLORE_LRS if (lr, 0) not in pairs]  # one seed at more rates, for section 5
flat_start = dict(zip(pairs, train_tracking([lr for lr, _ in pairs], [seed for _, seed in pairs], EOS_STEPS,
                                            init_scale=0.5, subset=subset, device=device)))
eos = {(lr, seed): flat_start[lr, seed] for lr in EOS_LRS for seed in SEEDS}

fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
for (lr, seed), history in eos.items():
    color = f"C{EOS_LRS.index(lr)}"
    first = seed == SEEDS[0]
    draw_run(history, [2 / lr] * EOS_STEPS, ax_sharp, ax_loss, color=color,
             label=f"lr = {lr}" if first else None, threshold_label=f"2 / lr = {2 / lr:.2f}" if first else None)
ax_sharp.set(xlabel="update", ylabel="sharpness (top Hessian eigenvalue)",
             title=f"full-batch GD, {len(SEEDS)} seed{'s' if len(SEEDS) > 1 else ''} per learning rate")
ax_loss.set(xlabel="update", ylabel="full-batch training loss", title="training loss")
for ax in (ax_sharp, ax_loss):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# For each run: the sharpness at the start, the update at which it first reached $2/\eta$,
# its mean over the last quarter of the run (and that mean divided by $2/\eta$), how often
# the loss went **up** from one update to the next before and after that point, and the
# final loss.

# %% tags=["illustration"]
def first_reached(history, threshold):
    """The first measured update at which the sharpness was at or above threshold(step), or None."""
    return next((step for step, value in zip(history.sharpness_steps, history.sharpness)
                 if value >= threshold(step)), None)


def share_of_rises(losses):
    """The fraction of updates after which the loss was higher than before it."""
    return float(np.mean(np.diff(losses) > 0)) if len(losses) > 1 else float("nan")


print(f"{'lr':>4} {'seed':>4} | {'2/lr':>5} | {'start':>5} | {'reached at':>10} | {'end':>5} {'end/(2/lr)':>10} | "
      f"{'loss rose: before':>17} {'after':>6} | final loss")
for (lr, seed), h in eos.items():
    reached = first_reached(h, lambda step: 2 / lr)
    cut = reached if reached is not None else len(h.loss)
    print(f"{lr:>4} {seed:>4} | {2 / lr:5.2f} | {h.sharpness[0]:5.2f} | {str(reached):>10} | "
          f"{h.tail_sharpness():5.2f} {h.tail_sharpness() * lr / 2:10.3f} | "
          f"{share_of_rises(h.loss[:cut + 1]):17.0%} {share_of_rises(h.loss[cut:]):6.0%} | {h.loss[-1]:.4f}")

# %% [markdown]
# What the plot and the table show, for every run above:
#
# * **Progressive sharpening.** The sharpness starts near 1.6, far below every $2/\eta$
#   here, and rises while it is below. Cohen et al. named this *progressive sharpening*: as
#   long as the sharpness is below $2/\eta$, gradient descent tends to make it grow.
# * **Then it stops at $2/\eta$.** Each run's sharpness climbs to its own dashed line (the
#   larger $\eta$, the lower the line and the sooner it gets there), overshoots it for a few
#   dozen updates, comes back, and then **hovers** at it: over the last quarter of the run it
#   is within 10% of $2/\eta$, at it or just above. The final value depends on the learning
#   rate and hardly on the seed. Cohen et al. called this the **edge of stability**: the top
#   eigenvalue "hovers just above" $2/\eta$.
# * **The loss keeps falling, but not monotonically.** Before the sharpness reached $2/\eta$
#   the loss fell at every update, as gradient descent below its stable limit does; after,
#   it rose at a sizeable share of the updates (the table's "after" column: roughly one in
#   seven to two in five), and still ended lower.
#
# Notebook 01's rule says that above $2/\lambda$ the error along the top direction grows by a
# factor $|1 - \eta\lambda| > 1$ per update, and the run diverges. That is what starts to
# happen each time the sharpness overshoots: the weights oscillate along the top eigenvector
# with growing size, and the loss jumps. But a network is not a quadratic: moving along that
# direction changes the curvature itself, and here the oscillation carries the weights to
# where the top curvature is lower, until it is below $2/\eta$ again and the oscillation dies
# down. In the plot, every sudden drop of the sharpness comes with a spike of the loss. The
# network does not choose weights at which $\eta$ is safe; it drifts until $\eta$ is
# **just** safe, and stays there. So $2/\lambda_{\max}$ is still the law, but it bounds the
# sharpness the run can keep, not the learning rate it can use.
#
# Your functions can check the tracker. The cell below measures one run's sharpness at its
# first update and at its end with your `sharpness` and `hvp`, 40 products from a random
# vector. A Rayleigh quotient never exceeds the top eigenvalue, so of two estimates the larger
# is the better one.

# %% tags=["illustration"]
lr, seed = EOS_LRS[-1], SEEDS[0]
loss_fn = loss_of_flat(subset)
theta_start = flatten_run(init_params([seed], 0.5, device=device), 0)
start_vector = torch.randn(theta_start.numel(), generator=torch.Generator().manual_seed(1)).to(device)
for when, theta, tracked in (("first update", theta_start, eos[lr, seed].sharpness[0]),
                             ("end", eos[lr, seed].final_params.to(device), eos[lr, seed].sharpness[-1])):
    yours = sharpness(lambda v: hvp(loss_fn, theta, v), start_vector, 40)
    print(f"lr = {lr}, seed {seed}, {when}: your sharpness {yours:.3f}, the tracker's {tracked:.3f}, 2/lr = {2 / lr:.3f}")

# %% [markdown]
# At the start the two agree. At the end your 40 products find a few percent more than the
# tracker's 3 warm-started ones: at the edge of stability several eigenvalues crowd near the
# top, which slows power iteration down (section 2), and a few products per measurement
# fall a little short. Both are close to $2/\eta$, so the conclusions stand; read the
# tracker's "just above $2/\eta$" as "at least that far above".
#
# ## 5. Explore
#
# The slider below replays the runs at more learning rates (seed 0) that the training cell
# of section 4 trained alongside the others; moving it redraws one run's sharpness against
# its $2/\eta$ line, and its loss (it needs a running notebook; it is not graded). Try the
# smallest rates: their sharpness is
# still climbing when the run ends, far from $2/\eta$, which they would need many more
# updates to reach. At 1.4 the sharpness at the start (about 1.6) is already a little above
# $2/\eta = 1.43$, and the run survives, hovering somewhat higher above its line than the
# others. At 2.0 the start is far above $2/\eta = 1$, and the run diverges within a dozen
# updates: the sharpness cannot come down fast enough.

# %% tags=["illustration"]
explore = {lr: flat_start[lr, 0] for lr in EXPLORE_LRS}
for lr, h in explore.items():
    ending = f"diverged at update {h.diverged_at}" if h.diverged_at is not None else f"at the end {h.tail_sharpness():.2f}"
    print(f"lr = {lr:<4}  2/lr = {2 / lr:5.2f}  sharpness: at the start {h.sharpness[0]:.2f}, {ending}")
sharpness_explorer(explore, start=0.5)

# %% [markdown]
# ## 6. A sharp start, and what warmup does
#
# The network above started flat, with a sharpness near 1.6, and sharpened towards every
# learning rate we gave it. Now the same network with weights twice as large at the start,
# from $\mathcal N(0, 1/\text{fan-in})$. Its sharpness at initialisation is far higher, so the
# stable limit $2/\lambda_{\max}$ at the first update is far lower.
#
# We aim for a learning rate of $\eta = 1.0$ ($2/\eta = 2$), five to seven times the stable
# limit at the start, with two schedules: **constant** 1.0 from the first update, and a
# **linear warmup** over the first 100 updates (the course's convention from 04: update
# $k < W$ uses $\eta\,(k+1)/W$), then 1.0. We measure the sharpness every 5 updates, to
# follow the warmup closely.

# %% tags=["illustration"]
warmup = lambda step: WARM_PEAK * min(1.0, (step + 1) / WARM_STEPS)
schedules = {"constant": WARM_PEAK, f"warmup ({WARM_STEPS} updates)": warmup}
names = [name for name in schedules for _ in SEEDS]
trained = train_tracking([schedules[name] for name in names], SEEDS * len(schedules), WARM_TOTAL, init_scale=1.0,
                         every=5, subset=subset, device=device)
warm_runs = {name: [h for n, h in zip(names, trained) if n == name] for name in schedules}

fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
for (name, histories), color in zip(warm_runs.items(), ("tab:red", "tab:blue")):
    for i, history in enumerate(histories):
        if name == "constant":  # no sharpness trace: these runs diverge within a few updates
            ax_loss.plot(history.loss, color=color, linewidth=1.2, label=name if i == 0 else None)
        else:
            draw_run(history, [2 / lr for lr in history.lr], ax_sharp, ax_loss, color=color,
                     label=name if i == 0 else None, threshold_label="2 / lr(t)" if i == 0 else None)
ax_sharp.axhline(2 / WARM_PEAK, color="gray", linestyle=":", linewidth=1, label=f"2 / {WARM_PEAK}, the target")
ax_sharp.set(xlabel="update", ylabel="sharpness", yscale="log", ylim=(1, 300), title=f"target lr {WARM_PEAK}: sharpness")
ax_loss.set(xlabel="update", ylabel="full-batch training loss", yscale="log", ylim=(None, 1e3),
            title="training loss (a diverged run stops at inf/NaN)")
for ax in (ax_sharp, ax_loss):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()

# %% tags=["illustration"]
print(f"{'seed':>4} | {'start':>5} {'2/start':>7} | {'constant: diverged at':>21} | {'warmup: met 2/lr at':>19} "
      f"{'largest loss jump':>17} | {'end':>5} {'end/(2/lr)':>10} | final loss")
for seed, constant, warmed in zip(SEEDS, *warm_runs.values()):
    met = first_reached(warmed, lambda step: 2 / warmed.lr[step])
    jumps = np.array(warmed.loss[1:WARM_STEPS + 1]) / np.array(warmed.loss[:WARM_STEPS])
    print(f"{seed:>4} | {warmed.sharpness[0]:5.1f} {2 / warmed.sharpness[0]:7.3f} | {str(constant.diverged_at):>21} | "
          f"{str(met):>19} {f'x{jumps.max():.2f} at {jumps.argmax()}':>17} | "
          f"{warmed.tail_sharpness():5.2f} {warmed.tail_sharpness() * WARM_PEAK / 2:10.3f} | {warmed.loss[-1]:.4f}")

# %% [markdown]
# For every seed:
#
# * **Without warmup the run diverges within a handful of updates.** The sharpness at the
#   start is 10 to 14, so the stable limit $2/\lambda_{\max}$ is 0.15 to 0.19. At
#   $\eta = 1.0$ every update multiplies the error along the top direction by
#   $|1 - \eta\lambda| \approx 9$ to $13$, 01's factor, and the loss explodes long before the
#   curvature can change.
# * **With warmup the sharpness comes down to meet the learning rate.** While $\eta$ is tiny,
#   the sharpness falls on its own (this network, started with large weights, first sheds
#   curvature as it fits), to about 7. Meanwhile $2/\eta(t)$, the dashed blue line, falls
#   from 200 as the learning rate climbs. They meet about 30 updates in; the sharpness then
#   sits above the line for a while, until the loss jumps about twofold in one update (the
#   table's largest jump, around update 50): a small, survivable version of the constant
#   run's blow-up, which throws the weights to a flatter place. From then on the sharpness
#   **follows $2/\eta(t)$ down**, just above it, to 2 at the end of the warmup, and hovers
#   there for the rest of the run, at the edge of stability again.
#
# That is the mechanism. A learning rate is not too large by itself: it is too large for
# the current sharpness. The sharpness responds to the learning rate, but it takes updates
# to change; a warmup raises the learning rate slowly enough for the sharpness to come down
# in step with it, and the run arrives at a learning rate that it could not have started
# with. Gilmer et al. (2021, arXiv:2110.04369) found in many models that successful training
# avoids or escapes regions of high curvature early on, into flatter regions that tolerate a
# larger learning rate, and that warmup is one way to get there; Kalra & Barkeshli (2024,
# arXiv:2406.09405) argue that the main benefit of warmup is to let a network tolerate a
# larger target learning rate by moving it to better-conditioned regions, and that what
# happens during the warmup depends on whether training starts with its sharpness rising or
# falling, which depends on the initialisation. Our two networks are one of each: the small
# initialisation of section 4 sharpened, and needed no warmup even at 0.8; the large one
# first shed sharpness, and could not survive its first updates at 1.0 without one.
#
# ## 7. Adam has its own edge
#
# Notebook 04 showed that Adam's first updates are unusually large. Adam's curvature limit is
# different too. Adam divides each update by a per-weight scale, the **preconditioner**
# $P = \operatorname{diag}(\sqrt{\hat v} + \epsilon)$. Suppose it froze (in practice it changes
# slowly). Adam's update is then
#
# $$ m_{t+1} = \beta_1 m_t + (1 - \beta_1)\, g_t, \qquad \theta_{t+1} = \theta_t - \eta\, P^{-1} m_{t+1} , $$
#
# and on a quadratic with Hessian $H$ what matters are the eigenvalues of the
# **preconditioned Hessian** $P^{-1}H$ (measure the weights in units of $P^{-1/2}$ and
# $P^{-1/2} H P^{-1/2}$, which has the same eigenvalues, becomes the Hessian). Its largest
# eigenvalue is Adam's *preconditioned sharpness*. In notebook 01 you found that PyTorch's
# heavy-ball momentum, $v_{t+1} = \beta v_t + g_t$, $\theta_{t+1} = \theta_t - \eta v_{t+1}$,
# is stable on curvature $\lambda$ exactly when $\eta\lambda < 2(1 + \beta)$. Adam's average
# $m$ is not quite that $v$.
#
# **Exercise (1 point).** Write `adam_threshold(lr, beta1)`: the preconditioned sharpness
# above which Adam with a frozen preconditioner, learning rate `lr` and first-moment decay
# `beta1`, is unstable. Relate $m$ to 01's $v$ first.

# %% nbgrader={"grade_id": "adam_threshold", "solution": true}
def adam_threshold(lr, beta1):
    """Adam's stability threshold on the preconditioned sharpness, from 01's heavy-ball limit."""
    ### BEGIN SOLUTION
    return 2 * (1 + beta1) / ((1 - beta1) * lr)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_adam_threshold", "grade": true, "points": 1}
from lrcourse.checks import call, run_tests

tests = [
    call("adam_threshold", 0.1, 0.0).expect(20.0, hint="with beta1 = 0 there is no momentum: 2 / lr"),
    call("adam_threshold", 0.01, 0.5).expect(
        600.0, hint="m = (1 - beta1) v: Adam is heavy-ball momentum with the learning rate lr * (1 - beta1)"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("adam_threshold", 0.01, 0.9).expect(3800.0, hint="2 (1 + beta1) / (lr (1 - beta1))"),
    call("adam_threshold", 3e-4, 0.95).expect(2 * 1.95 / (3e-4 * 0.05), hint="2 (1 + beta1) / (lr (1 - beta1))"),
    call("adam_threshold", 1.0, 0.99).expect(398.0, hint="2 (1 + beta1) / (lr (1 - beta1))"),
    call("adam_threshold", 2, 0).expect(1.0, hint="integer arguments: 2 / lr"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Since $m = (1-\beta_1)\,v$, Adam's step $\eta P^{-1} m$ is heavy-ball momentum with the
# learning rate $\eta(1-\beta_1)$ on the preconditioned curvature: stable while
# $\eta(1-\beta_1)\,\lambda < 2(1+\beta_1)$, that is
#
# $$ \lambda_{\max}(P^{-1}H) < \frac{2\,(1 + \beta_1)}{(1 - \beta_1)\,\eta} , $$
#
# which is $38/\eta$ for the usual $\beta_1 = 0.9$. Cohen et al. (2022, arXiv:2207.14484)
# found that under full-batch Adam the preconditioned sharpness rises to this threshold,
# $38/\eta$ for $\beta_1 = 0.9$, and equilibrates there: an edge of stability of Adam's own.
# They also found a difference: gradient descent at its edge is kept out of sharper regions,
# while Adam keeps moving into regions of higher curvature, adapting its preconditioner to
# compensate.
#
# The cell below trains the flat-start network of section 4 with full-batch Adam
# ($\beta_1 = 0.9$, $\beta_2 = 0.999$, as `torch.optim.Adam`) at two learning rates, and
# measures $\lambda_{\max}(P^{-1}H)$ with the preconditioner of each update: power iteration
# on $P^{-1/2} H P^{-1/2}$, whose products are Hessian-vector products with rescaled vectors.

# %% tags=["illustration"]
pairs = [(lr, seed) for lr in ADAM_LRS for seed in SEEDS]
adam = dict(zip(pairs, train_tracking([lr for lr, _ in pairs], [seed for _, seed in pairs], ADAM_STEPS,
                                      optimizer="adam", init_scale=0.5, subset=subset, device=device)))

fig, (ax_sharp, ax_loss) = plt.subplots(1, 2, figsize=(13, 4.2))
for (lr, seed), history in adam.items():
    first = seed == SEEDS[0]
    draw_run(history, [adam_threshold(lr, 0.9)] * ADAM_STEPS, ax_sharp, ax_loss, color=f"C{ADAM_LRS.index(lr)}",
             label=f"lr = {lr}" if first else None, threshold_label="your adam_threshold(lr, 0.9)" if first else None)
ax_sharp.set(xlabel="update", ylabel="preconditioned sharpness", yscale="log", title="full-batch Adam")
ax_loss.set(xlabel="update", ylabel="full-batch training loss", title="training loss")
for ax in (ax_sharp, ax_loss):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()
print(f"{'lr':>6} {'seed':>4} | {'threshold':>9} | {'first update':>12} {'update 50':>9} | {'end':>7} "
      f"{'end/threshold':>13} | final loss")
for (lr, seed), h in adam.items():
    threshold = adam_threshold(lr, 0.9)
    print(f"{lr:>6} {seed:>4} | {threshold:9.0f} | {h.sharpness[0]:12.0f} {h.sharpness[5]:9.0f} | "
          f"{h.tail_sharpness():7.0f} {h.tail_sharpness() / threshold:13.3f} | {h.loss[-1]:.5f}")

# %% [markdown]
# For every run, the preconditioned sharpness drops over the first few updates, then climbs
# to the threshold and stays near it for the rest of the run: over the last quarter, within
# 10% of it and a little below (our warm-started estimates run a little low, as for gradient
# descent). The first update is an exception worth a look: its preconditioner is built from
# a single squared gradient (notebook 04's "every weight moves by the full learning rate"),
# and its preconditioned sharpness jumps from seed to seed, for one seed here far above the
# threshold at both learning rates. Kalra & Barkeshli
# (2024) propose, besides warmup, an initialisation of Adam's second-moment estimate that
# gives benefits similar to a warmup.
#
# ## Summary
#
# * A Hessian-vector product is the gradient of (gradient $\cdot\, v$): two backward passes,
#   no Hessian. Power iteration turns products into the eigenvalue largest in size, at a rate
#   set by the ratio of the top two; a shift by that value turns it into the largest
#   eigenvalue, the sharpness. Warm starts make tracking cheap.
# * Under full-batch gradient descent a network's sharpness rises (progressive sharpening)
#   until it reaches $2/\eta$, and then hovers there while the loss keeps falling, not
#   monotonically: the edge of stability (Cohen et al., 2021). Notebook 01's limit still
#   holds, but it is the sharpness that adapts to it.
# * A network that starts sharp is unstable at a learning rate it could use later; without
#   warmup it diverges in a few updates. A warmup raises the learning rate slowly enough for
#   the sharpness to fall in step with $2/\eta(t)$ (Gilmer et al., 2021; Kalra & Barkeshli,
#   2024). A network that starts flat needs no warmup.
# * Adam's preconditioned sharpness has its own threshold, $2(1+\beta_1)/((1-\beta_1)\eta)$,
#   $38/\eta$ for $\beta_1 = 0.9$, and settles at it (Cohen et al., 2022).
#
# Next: **11 · The learning rate and model size**: why the best learning rate drifts as a
# network gets wider under the standard parametrization, and how muP's parameter groups keep
# it in place.
