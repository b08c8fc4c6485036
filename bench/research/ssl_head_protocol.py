"""Round 8: the end-to-end recipe's *training protocol* simulated on frozen GE2E statistics.

In the round-7 outer run every fold kept an epoch of the frozen phase (3-11 of 16, the
encoder is unfrozen from 13), so the model scored was a linear head on fixed GE2E
statistics trained the way the trainer trains it. This script replays that protocol on
the frozen arrays of ``ssl_head_frozen.py`` and scores each variant by **nested** LOSO
(the mean over the 10 outer folds of the inner pooled UAR over the 9 training speakers
is the selection score; the outer number is printed beside it and never chooses):

* each epoch sees every training utterance once, as its speed copy 0.9 or 1.1 with
  probability ``--p-speed`` (the recipe's on-the-fly speed perturbation) or as it is;
* linear warm-up over the first epoch, then cosine annealing to 0 (``scheduler:
  cosine``, ``warmup_epochs: 1``), AdamW, class-weighted cross-entropy, smoothing 0.05;
* ``--val F``: F of the training rows held out, stratified by label (the trainer's
  split under ``vocalis loso``; original audio only), and the epoch with the best
  validation UAR kept (the first of ties), or with ``--keep last`` the last epoch
  (``train.monitor=epoch``); ``--val 0``: all rows, the last epoch;
* ``--ema D``: an exponential moving average of the weights (decay D per step) is what
  is validated and kept; ``--seeds N``: the inner (and outer) predictions are the majority vote of
  N heads (seeds ``--seed`` ...), each with its own validation split and draws, or with
  ``--combine mean`` (round 11) the argmax of their averaged probabilities;
* ``--members K`` (round 9): K heads trained side by side on the *same* batches and speed
  draws (own initialisation; with ``--bag`` each also weights every training row by its
  own Poisson(1) draw: online bagging), their softmax probabilities averaged;
  ``--wd``, ``--smooth``: AdamW weight decay and label smoothing;
* round 10: ``--speeds`` (the speed copies drawn with ``--p-speed``, default 0.9 / 1.1),
  ``--pitches`` / ``--p-pitch`` (pitch-shifted copies, in semitones, drawn independently:
  ``extract_ge2e_copies.py``), and three speaker-invariance transforms fitted on the
  training rows only: ``--norm gender`` (z-scores per gender, from the speaker's
  gender in the corpus README), ``--nap K`` (nuisance attribute projection: the top K
  directions of the speaker-by-emotion cell means projected out) and ``--swap P``
  (with probability P a training row moves by ``--swap-scale`` times the difference of
  another training speaker's mean and its own: the same emotion, another voice);
* round 14: ``--tta R ...``: the probabilities of every scored row are averaged over the
  row as recorded and its speed copies ``R`` (test-time augmentation, inner and outer).

    python bench/research/ssl_head_protocol.py --name ge2eMix0.5 --epochs 16 --lr 3e-3 --val 0.1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sklearn.metrics import balanced_accuracy_score
from ssl_head_folds import PARTS
from ssl_head_frozen import corpus_arrays, head, report

from vocalis.data.splits import stratified_val_split

#: EmoDB's female speakers (``../shared/data/emodb/README.md``); the others are male.
FEMALE = {"08", "09", "13", "14", "16"}
ORIGINAL = (1.0, 0.0)


def copy_arrays(name: str, speeds, pitches) -> dict[tuple[float, float], np.ndarray]:
    """The ``(speed, semitones)`` copies of ``work/research/emodb_<name>*.npy`` a run draws.

    The original and the 0.9 / 1.1 speed copies are the round-6 arrays; every other copy
    is ``emodb_<name>_s<speed>_p<semitones>.npy`` of ``extract_ge2e_copies.py``.
    """
    _, _, _, xs = corpus_arrays(name)
    out = {ORIGINAL: xs[0], (0.9, 0.0): xs[1], (1.1, 0.0): xs[2]}
    for sp in (1.0, *speeds):
        for pt in (0.0, *pitches):
            if (sp, pt) not in out:
                out[(sp, pt)] = np.load(Path("work/research") / f"emodb_{name}_s{sp:g}_p{pt:g}.npy")
    return out


def invariance(xs: dict, y, spk, tr, d: dict) -> dict:
    """``xs`` with the speaker-invariance transforms of ``d`` fitted on the rows ``tr``.

    ``norm: gender`` z-scores each gender with its own training rows (every copy);
    ``nap: K`` z-scores, then projects out the top K right singular vectors of the
    (speaker, emotion) cell means minus each emotion's mean (original rows).
    """
    out = dict(xs)
    if d["norm"] == "gender":
        female = np.array([s in FEMALE for s in spk])
        out = {k: v.copy() for k, v in xs.items()}
        for g in (False, True):
            rows = tr[female[tr] == g]
            both = np.concatenate([v[rows] for v in xs.values()])
            mu, sd = both.mean(0), both.std(0) + 1e-6
            for k, v in xs.items():
                out[k][female == g] = (v[female == g] - mu) / sd
    if d["nap"] > 0:
        both = np.concatenate([v[tr] for v in out.values()])
        mu, sd = both.mean(0), both.std(0) + 1e-6
        z = {k: (v - mu) / sd for k, v in out.items()}
        cells = []
        for c in np.unique(y[tr]):
            rc = tr[y[tr] == c]
            mean_c = z[ORIGINAL][rc].mean(0)
            cells += [z[ORIGINAL][rc[spk[rc] == s]].mean(0) - mean_c for s in np.unique(spk[rc])]
        v = np.linalg.svd(np.array(cells), full_matrices=False)[2][: d["nap"]].T
        out = {k: x - (x @ v) @ v.T for k, x in z.items()}
    return out


def fit_proba(xs, y, tr, te, d: dict, classes: int, seed: int, spk=None) -> np.ndarray:
    """Train linear heads on rows ``tr`` of the copies ``xs`` as ``d`` says.

    Returns the (len(te), classes) softmax probabilities of the rows ``te``.

    Args:
        xs: ``{(speed, semitones): (N, D)}``, the original statistics under ``(1.0, 0.0)``.
        y: labels (N,).
        tr, te: training and test row indices.
        d: ``epochs``, ``lr``, ``val`` (held-out share, 0: none), ``keep`` (``best`` or
            ``last`` epoch), ``p_speed``, ``speeds``, ``pitches``, ``p_pitch``, ``ema``
            (decay, 0: none), ``members`` (heads on the same batches, probabilities
            averaged; each its last epoch, no EMA), ``bag`` (Poisson row weights per
            member), ``wd``, ``smooth``, ``norm``, ``nap``, ``swap``, ``swap_scale``.
        spk: speakers (N,), needed by ``norm``, ``nap`` and ``swap``.
    """
    xs = invariance(xs, y, spk, tr, d)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if d["val"] > 0:
        tr, va = stratified_val_split(tr, y[tr], d["val"], seed)
    else:
        va = tr[:0]
    k_members = d["members"]
    x0 = xs[ORIGINAL]
    nets = [head(x0.shape[1], classes, [], 0.0, True) for _ in range(k_members)]
    params = [p for net in nets for p in net.parameters()]
    opt = torch.optim.AdamW(params, lr=d["lr"], weight_decay=d["wd"])
    counts = np.bincount(y[tr], minlength=classes).astype(np.float32)
    cw = torch.tensor(counts.sum() / (classes * np.maximum(counts, 1)))
    lossf = nn.CrossEntropyLoss(weight=cw, label_smoothing=d["smooth"], reduction="none")
    bag = (
        torch.tensor(rng.poisson(1.0, (k_members, len(tr))), dtype=torch.float32)
        if d["bag"]
        else torch.ones(k_members, len(tr))
    )
    per_epoch = math.ceil(len(tr) / 16)
    total, warm = d["epochs"] * per_epoch, per_epoch

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    net0 = nets[0]
    ema = (
        torch.optim.swa_utils.AveragedModel(
            net0,
            multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(d["ema"]),
            use_buffers=True,
        )
        if d["ema"]
        else None
    )
    xt = {k: torch.tensor(x, dtype=torch.float32) for k, x in xs.items()}
    yt = torch.tensor(y)
    speakers = np.unique(spk[tr]) if d["swap"] > 0 else []
    spk_mean = {s: torch.cat([x[tr[spk[tr] == s]] for x in xt.values()]).mean(0) for s in speakers}
    best, best_state = -1.0, None
    for _ in range(d["epochs"]):
        for net in nets:
            net.train()
        speed = np.where(rng.random(len(tr)) < d["p_speed"], rng.choice(d["speeds"], len(tr)), 1.0)
        pitch = np.zeros(len(tr))
        if d["pitches"]:
            pitched = rng.random(len(tr)) < d["p_pitch"]
            pitch = np.where(pitched, rng.choice(d["pitches"], len(tr)), 0.0)
        copy = [(float(a), float(b)) for a, b in zip(speed, pitch, strict=True)]
        perm = rng.permutation(len(tr))
        for i in range(0, len(tr), 16):
            b = perm[i : i + 16]
            if len(b) < 2:
                continue
            xb = torch.stack([xt[copy[k]][tr[k]] for k in b])
            for j in np.flatnonzero(rng.random(len(b)) < d["swap"]) if d["swap"] else ():
                own = spk[tr[b[j]]]
                other = rng.choice(speakers[speakers != own])
                xb[j] += d["swap_scale"] * (spk_mean[other] - spk_mean[own])
            yb = yt[tr[b]]
            cwb = cw[yb]
            opt.zero_grad()
            loss = sum(
                (lossf(net(xb), yb) * bag[m, b]).sum() / (cwb * bag[m, b]).sum().clamp(min=1e-6)
                for m, net in enumerate(nets)
            )
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(net0)
        scored = net0 if ema is None else ema.module
        if len(va) and d["keep"] == "best" and k_members == 1:
            scored.eval()
            with torch.no_grad():
                pred = scored(xt[ORIGINAL][va]).argmax(1).numpy()
            score = balanced_accuracy_score(y[va], pred)
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in scored.state_dict().items()}
    views = [ORIGINAL, *d.get("tta", [])]
    if k_members == 1:
        scored = net0 if ema is None else ema.module
        if best_state is not None:
            scored.load_state_dict(best_state)
        nets = [scored]
    with torch.no_grad():
        probs = torch.stack([net.eval()(xt[v][te]).softmax(1) for net in nets for v in views])
    return probs.mean(0).numpy()


def combined(xs, y, tr, te, d, classes, seeds: range, spk) -> np.ndarray:
    """Predicted classes of ``te`` by the heads of ``seeds``: their majority vote, or with
    ``d["combine"] == "mean"`` the argmax of their averaged probabilities."""
    probs = np.stack([fit_proba(xs, y, tr, te, d, classes, k, spk) for k in seeds])
    if d.get("combine") == "mean":
        return probs.mean(0).argmax(1)
    votes = probs.argmax(2)
    return np.array([np.bincount(v, minlength=classes).argmax() for v in votes.T])


def pooled(xs, y, spk, rows, d, classes, seeds: range) -> float:
    """Pooled UAR of LOSO over the speakers of ``rows`` (the ``seeds``' heads combined)."""
    pred = np.empty(len(rows), dtype=int)
    sp = spk[rows]
    for s in np.unique(sp):
        te, tr = rows[sp == s], rows[sp != s]
        pred[sp == s] = combined(xs, y, tr, te, d, classes, seeds, spk)
    return float(balanced_accuracy_score(y[rows], pred))


def protocol_parser(**kwargs) -> argparse.ArgumentParser:
    """The options of one simulated protocol (see the module); ``kwargs`` go to argparse."""
    ap = argparse.ArgumentParser(**kwargs)
    ap.add_argument("--name", default="ge2eMix0.5")
    ap.add_argument("--part", choices=sorted(PARTS), default="all")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--val", type=float, default=0.1)
    ap.add_argument("--keep", choices=["best", "last"], default="best")
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights per step")
    ap.add_argument("--p-speed", type=float, default=0.67)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument(
        "--combine", choices=["vote", "mean"], default="vote", help="how --seeds heads combine"
    )
    ap.add_argument("--members", type=int, default=1, help="heads on the same batches")
    ap.add_argument("--bag", action="store_true", help="Poisson(1) row weights per member")
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--smooth", type=float, default=0.05)
    ap.add_argument("--speeds", type=float, nargs="+", default=[0.9, 1.1])
    ap.add_argument("--pitches", type=float, nargs="*", default=[], help="semitones")
    ap.add_argument("--p-pitch", type=float, default=0.5)
    ap.add_argument("--norm", choices=["none", "gender"], default="none")
    ap.add_argument("--nap", type=int, default=0, help="speaker directions projected out")
    ap.add_argument("--swap", type=float, default=0.0, help="P of a speaker-mean swap per row")
    ap.add_argument("--swap-scale", type=float, default=1.0)
    ap.add_argument(
        "--tta", type=float, nargs="*", default=[], help="test-time speed copies averaged in"
    )
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--out", default="work/research/ssl_head_protocol.jsonl")
    return ap


def protocol_options(a: argparse.Namespace) -> dict:
    """The dict ``d`` that :func:`fit_proba` and :func:`combined` read, from parsed options."""
    d = {"epochs": a.epochs, "lr": a.lr, "val": a.val, "keep": a.keep, "p_speed": a.p_speed}
    d.update(ema=a.ema, members=a.members, bag=a.bag, wd=a.wd, smooth=a.smooth)
    d.update(speeds=a.speeds, pitches=a.pitches, p_pitch=a.p_pitch, norm=a.norm, nap=a.nap)
    d.update(swap=a.swap, swap_scale=a.swap_scale, combine=a.combine)
    d.update(tta=[(float(r), 0.0) for r in a.tta])
    return d


def protocol_inputs(a: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list, dict]:
    """Labels, speakers, class names and the (speed, pitch) copies of ``--name`` / ``--part``."""
    y, spk, names, _ = corpus_arrays(a.name)
    copies = copy_arrays(a.name, a.speeds, a.pitches)
    return y, spk, names, {k: x[:, PARTS[a.part]] for k, x in copies.items()}


def main() -> None:
    """Score one protocol by nested LOSO and append it to ``--out``."""
    a = protocol_parser().parse_args()
    torch.set_num_threads(1)
    y, spk, names, xs = protocol_inputs(a)
    d = protocol_options(a)
    t0 = time.time()
    inner, outer = [], np.empty(len(y), dtype=int)
    for s in np.unique(spk):
        tr, te = np.flatnonzero(spk != s), np.flatnonzero(spk == s)
        inner.append(pooled(xs, y, spk, tr, d, len(names), range(a.seed, a.seed + a.seeds)))
        outer[te] = combined(xs, y, tr, te, d, len(names), range(a.seed, a.seed + a.seeds), spk)
    fields = {"name": a.name, "part": a.part, **d, "seeds": a.seeds, "seed": a.seed}
    report(a.out, fields, inner, y, outer, t0)


if __name__ == "__main__":
    main()
