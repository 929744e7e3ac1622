"""The tiny character-level transformer of notebooks 03-04: corpus, model, training loop."""
from __future__ import annotations

import hashlib
import math

import pytest
import torch

from lrcourse import data as lrdata
from lrcourse.transformer import (
    CORPUS_FILE, TinyTransformer, evaluate_lm, load_corpus, n_params, sample_batch, train_lm,
)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("cpu")


def test_corpus_file_matches_its_checksum():
    blob = (lrdata.data_dir() / CORPUS_FILE).read_bytes()
    sums = (lrdata.data_dir() / "SHA256SUMS").read_text().splitlines()
    listed = dict(line.split()[::-1] for line in sums if line.strip())
    assert hashlib.sha256(blob).hexdigest() == listed[CORPUS_FILE]
    blob.decode("ascii")  # the shipped copy is plain ASCII: one byte, one token


def test_corrupted_corpus_is_refused(tmp_path, monkeypatch):
    for name in ("SHA256SUMS", CORPUS_FILE):
        (tmp_path / name).write_bytes((lrdata.data_dir() / name).read_bytes())
    with open(tmp_path / CORPUS_FILE, "ab") as f:
        f.write(b"x")
    monkeypatch.setenv("LRCOURSE_DATA", str(tmp_path))
    with pytest.raises(lrdata.DataError, match="corrupted"):
        load_corpus()


def test_vocabulary_and_split(corpus):
    assert corpus.vocab_size == 94
    assert corpus.chars == "".join(sorted(corpus.chars)) and corpus.chars[0] == "\n"
    n = len(corpus.train) + len(corpus.val)
    assert n == len(lrdata.read_verified(CORPUS_FILE))
    assert (len(corpus.train), len(corpus.val)) == (418_602, 46_512)  # 90% / 10%, contiguous
    assert corpus.decode(corpus.train[:22]) == 'The "assert" statement'
    text = lrdata.read_verified(CORPUS_FILE).decode("ascii")
    assert corpus.decode(corpus.val[-40:]) == text[-40:]
    assert corpus.train.dtype == torch.long and int(corpus.train.max()) < corpus.vocab_size
    assert torch.equal(corpus.encode("for x in y:"), torch.tensor([corpus.chars.index(c) for c in "for x in y:"]))


def test_parameter_count_and_init(corpus):
    torch.manual_seed(0)
    model = TinyTransformer(corpus.vocab_size)
    assert 60_000 <= n_params(model) <= 75_000, n_params(model)
    assert n_params(model) == 67_200
    std = model.blocks[0].mlp[0].weight.std().item()
    assert 0.018 < std < 0.022, std
    logits = model(corpus.train[:32].view(1, -1))
    assert logits.shape == (1, 32, corpus.vocab_size)
    # at initialisation the prediction is close to uniform: loss ~ ln(94)
    assert abs(evaluate_lm(model, corpus.val, max_windows=64) - math.log(corpus.vocab_size)) < 0.05


def test_attention_is_causal(corpus):
    torch.manual_seed(1)
    model = TinyTransformer(corpus.vocab_size).eval()
    x = corpus.train[1000:1032].view(1, -1).clone()
    y = x.clone()
    y[0, 20] = (y[0, 20] + 1) % corpus.vocab_size  # change the token at position 20
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.equal(a[0, :20], b[0, :20]), "logits before position 20 must not see token 20"
    assert not torch.allclose(a[0, 20:], b[0, 20:]), "logits from position 20 on should change"


def test_longer_than_context_is_refused(corpus):
    model = TinyTransformer(corpus.vocab_size)
    with pytest.raises(ValueError, match="context"):
        model(corpus.train[:33].view(1, -1))


def test_batches_depend_on_the_seed_only(corpus):
    a = sample_batch(corpus.train, 4, 32, torch.Generator().manual_seed(3))
    b = sample_batch(corpus.train, 4, 32, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[0][:, 1:], a[1][:, :-1]), "targets are the inputs shifted by one"


def test_train_lm_records_every_update(corpus):
    schedule = lambda step: 1e-3 * (step + 1) / 20  # noqa: E731
    h = train_lm(schedule, 20, corpus=corpus, device="cpu", seed=0, eval_every=10, progress=False)
    assert len(h.loss) == len(h.lr) == 20 and not h.diverged
    assert h.lr == [schedule(k) for k in range(20)]
    assert h.val_steps == [10, 20] and len(h.val_loss) == 2
    assert all(math.isfinite(v) for v in h.loss + h.val_loss)
    assert abs(h.loss[0] - math.log(corpus.vocab_size)) < 0.1
    assert h.loss[-1] < h.loss[0]

    const = train_lm(3e-3, 5, corpus=corpus, device="cpu", progress=False)
    assert const.lr == [3e-3] * 5


def test_train_lm_same_seed_same_run(corpus):
    kwargs = dict(corpus=corpus, device="cpu", progress=False)
    a = train_lm(0.01, 20, seed=0, **kwargs)
    b = train_lm(0.01, 20, seed=0, **kwargs)
    c = train_lm(0.01, 20, seed=1, **kwargs)
    assert a.loss == b.loss
    assert a.loss != c.loss


def test_train_lm_stops_on_a_non_finite_loss(corpus):
    h = train_lm(lambda step: 1e-3 if step < 3 else math.nan, 10, corpus=corpus, device="cpu", progress=False)
    assert h.diverged and math.isnan(h.loss[-1]) and len(h.loss) == 5
    assert h.final_loss() == math.inf
