"""Linear classifiers on utterance functionals, with complexity chosen by inner LOSO.

:class:`FunctionalClassifier` is the classic paralinguistics back end (a linear
SVM or a multinomial logistic regression on z-normalised functionals such as
openSMILE ComParE), made honest for speaker-independent evaluation: ``C`` is
chosen by a leave-one-speaker-out *inside* the training speakers, and the
out-of-fold probabilities of that inner loop are kept (``inner_proba_``) so a
fusion of several classifiers can learn its weights without ever touching the
test speakers.

Training rows may include augmented copies (speed-perturbed audio, ...): mark
them with ``augmented``; they are used to train but never to validate, and the
copies of an inner held-out speaker are dropped from that inner fold.

Example:
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(3), 12)
    >>> x = rng.normal(size=(36, 20)) + 3 * np.eye(3, 20)[y]
    >>> spk = np.tile(np.arange(4), 9)
    >>> clf = FunctionalClassifier(LinearConfig(c_grid=(0.01, 1.0))).fit(x, y, spk)
    >>> clf.predict_proba(x[:2]).shape, float((clf.predict(x) == y).mean())
    ((2, 3), 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vocalis.errors import ConfigError, DataError


@dataclass(frozen=True)
class LinearConfig:
    """A linear classifier on functionals.

    Args:
        classifier: ``svm`` (linear-kernel SVC, one-vs-one, libsvm) or ``logreg``
            (multinomial logistic regression, L2).
        c_grid: complexities tried by the inner leave-one-speaker-out; the best
            pooled UAR wins, ties go to the smallest ``C``.
        clip: after train-only z-normalisation, values are clipped to ``[-clip, clip]``
            (robust to outlier functionals); ``0`` disables.
        temperature: softmax temperature turning SVM decision values into
            probabilities (``logreg`` gives probabilities directly).
        balanced: weight classes inversely to their frequency (targets UAR).
    """

    classifier: Literal["svm", "logreg"] = "svm"
    c_grid: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    clip: float = 5.0
    temperature: float = 1.0
    balanced: bool = False

    def __post_init__(self) -> None:
        if self.classifier not in ("svm", "logreg"):
            raise ConfigError(
                f"linear.classifier: got {self.classifier!r}, expected 'svm' or 'logreg'"
            )
        if not self.c_grid or any(c <= 0 for c in self.c_grid):
            raise ConfigError(f"linear.c_grid: got {self.c_grid!r}, expected positive values")
        if self.clip < 0 or self.temperature <= 0:
            raise ConfigError(
                f"linear.clip/temperature: got {self.clip}/{self.temperature}, "
                "expected clip >= 0 and temperature > 0"
            )


def pooled_uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall (macro recall) over the classes present in ``y_true``.

    Example:
        >>> pooled_uar(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
        0.75
    """
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def speaker_standardise(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """z-normalise each speaker's rows with that speaker's own mean and std.

    The ``speaker_norm`` protocol: it needs a speaker's unlabelled audio, the
    test speaker's included. Constant columns become 0.

    Shape:
        (N, D), (N,) -> (N, D).

    Example:
        >>> x = np.array([[1.0], [3.0], [10.0], [30.0]])
        >>> speaker_standardise(x, np.array(["a", "a", "b", "b"])).ravel().tolist()
        [-1.0, 1.0, -1.0, 1.0]
    """
    out = np.empty_like(x, dtype=np.float64)
    for s in np.unique(speakers):
        m = speakers == s
        mu, sd = x[m].mean(0), x[m].std(0)
        out[m] = (x[m] - mu) / np.where(sd > 1e-12, sd, 1.0)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class _Scaler:
    """Train-only z-normalisation followed by clipping."""

    def __init__(self, x: np.ndarray, clip: float) -> None:
        self.mu = x.mean(0)
        sd = x.std(0)
        self.sd = np.where(sd > 1e-12, sd, 1.0)
        self.clip = clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mu) / self.sd
        return np.clip(z, -self.clip, self.clip) if self.clip > 0 else z


@dataclass(frozen=True)
class LinearPrimal:
    """A fitted linear member in primal form: every parameter an array.

    ``z = clip((x - mean) / std, -clip, clip)``, then ``scores = z @ weight.T + bias``:

    * ``svm``: ``P = K'(K'-1)/2`` one-vs-one decision values (pair order (0,1),
      (0,2), ..., (1,2), ...); for ``K' = 2`` the single margin gives ``[-s, s]``,
      otherwise scikit-learn's one-vs-rest transform (votes + confidences); then
      ``softmax(scores / temperature)``;
    * ``logreg``: ``P = K'`` logits (``[0, s]`` for two classes), ``softmax(scores)``.

    The ``K'`` columns go to ``columns`` of the ``K`` outputs (classes absent in
    training stay 0).

    Attributes:
        classifier: ``svm`` or ``logreg``.
        mean, std: ``(D,)`` train-only z-normalisation.
        clip: clip value after scaling (``0``: none).
        weight: ``(P, D)``; bias: ``(P,)``.
        columns: ``(K',)`` output column of each of the model's classes.
        n_classes: ``K``.
        temperature: softmax temperature of ``svm`` scores.
    """

    classifier: str
    mean: np.ndarray
    std: np.ndarray
    clip: float
    weight: np.ndarray
    bias: np.ndarray
    columns: np.ndarray
    n_classes: int
    temperature: float = 1.0


def _ovo_weights(model, support_vectors: np.ndarray) -> np.ndarray:
    """``(P, D)`` primal weights of a libsvm one-vs-one SVC with a linear kernel."""
    coef, n = model.dual_coef_, model.n_support_
    locs = np.cumsum(np.r_[0, n])
    rows = []
    for i in range(len(n)):
        for j in range(i + 1, len(n)):
            si, sj = slice(locs[i], locs[i + 1]), slice(locs[j], locs[j + 1])
            rows.append(coef[j - 1, si] @ support_vectors[si] + coef[i, sj] @ support_vectors[sj])
    return np.stack(rows)


class _Fitted:
    """One linear model at one ``C``: z-normalisation, then SVM or logistic regression."""

    def __init__(self, scaler: _Scaler, basis: np.ndarray, model, config: LinearConfig, k: int):
        self.scaler, self.basis, self.model, self.config, self.k = scaler, basis, model, config, k

    def primal(self) -> LinearPrimal:
        """The same model as arrays (see :class:`LinearPrimal`)."""
        if self.config.classifier == "svm":  # basis = the scaled training rows
            weight = _ovo_weights(self.model, self.basis[self.model.support_])
            bias = np.asarray(self.model.intercept_, dtype=np.float64)
        else:  # logits = (z @ basis) @ coef.T + intercept
            weight = self.model.coef_ @ self.basis.T
            bias = np.asarray(self.model.intercept_, dtype=np.float64)
            if len(self.model.classes_) == 2:  # sigmoid = softmax of [0, s]
                weight = np.vstack([np.zeros_like(weight), weight])
                bias = np.r_[0.0, bias]
        return LinearPrimal(
            classifier=self.config.classifier,
            mean=self.scaler.mu.astype(np.float64),
            std=self.scaler.sd.astype(np.float64),
            clip=float(self.scaler.clip),
            weight=np.asarray(weight, dtype=np.float64),
            bias=bias,
            columns=np.asarray(self.model.classes_, dtype=np.int64),
            n_classes=int(self.k),
            temperature=float(self.config.temperature),
        )

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.scaler(x)
        if self.config.classifier == "svm":
            scores = self.model.decision_function(z @ self.basis.T)  # kernel vs training rows
            if scores.ndim == 1:  # two classes: one signed margin
                scores = np.stack([-scores, scores], 1)
            proba = _softmax(scores / self.config.temperature)
        else:
            proba = self.model.predict_proba(z @ self.basis)
        full = np.zeros((len(x), self.k))
        full[:, self.model.classes_] = proba
        return full


def _fit_grid(
    x: np.ndarray, y: np.ndarray, config: LinearConfig, grid, k: int
) -> dict[float, _Fitted]:
    """One fitted model per C of ``grid``, sharing the scaling.

    Both models work in the span of the training rows, which is exact for
    L2-regularised linear models (their weights lie in it) and much cheaper when
    features outnumber rows (ComParE: 6373 vs a few hundred): the SVM on the
    precomputed linear kernel ``(N, N)``, the logistic regression on the
    coordinates of the rows in an orthonormal basis of that span.
    """
    scaler = _Scaler(x, config.clip)
    a = scaler(x)
    weight = "balanced" if config.balanced else None
    out = {}
    if config.classifier == "svm":
        from sklearn.svm import SVC

        gram = a @ a.T
        for c in grid:
            model = SVC(
                kernel="precomputed", C=c, decision_function_shape="ovr", class_weight=weight
            ).fit(gram, y)
            out[c] = _Fitted(scaler, a, model, config, k)
        return out
    from sklearn.linear_model import LogisticRegression

    _, _, vt = np.linalg.svd(a, full_matrices=False)
    basis = vt.T
    coords = a @ basis
    for c in grid:
        model = LogisticRegression(C=c, max_iter=3000, class_weight=weight).fit(coords, y)
        out[c] = _Fitted(scaler, basis, model, config, k)
    return out


class FunctionalClassifier:
    """A linear classifier whose ``C`` is picked by inner leave-one-speaker-out.

    Args:
        config: the :class:`LinearConfig`.

    Attributes (after :meth:`fit`):
        c_: the chosen complexity.
        inner_uar_: ``{C: pooled UAR}`` of the inner leave-one-speaker-out.
        inner_proba_: ``(N, K)`` out-of-fold probabilities at ``c_`` for the
            non-augmented training rows (NaN for augmented rows).
        classes_: ``K``, labels are integers ``0..K-1``.
    """

    def __init__(self, config: LinearConfig | None = None) -> None:
        self.config = config or LinearConfig()

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        speakers: np.ndarray,
        augmented: np.ndarray | None = None,
        n_classes: int | None = None,
    ) -> FunctionalClassifier:
        """Choose ``C`` by inner LOSO over ``speakers``, then refit on all rows.

        Args:
            x: ``(N, D)`` functionals.
            y: ``(N,)`` integer labels ``0..K-1``.
            speakers: ``(N,)`` speaker of each row (of its source for augmented rows).
            augmented: ``(N,)`` bool, True for augmented copies (never validated on).
            n_classes: ``K`` (default ``max(y) + 1``); classes absent from ``y`` get 0.

        Raises:
            DataError: shapes disagree, or fewer than 2 speakers to validate on.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        speakers = np.asarray(speakers)
        aug = np.zeros(len(y), bool) if augmented is None else np.asarray(augmented, bool)
        if not (len(x) == len(y) == len(speakers) == len(aug)):
            raise DataError(
                f"FunctionalClassifier.fit: got {len(x)} rows, {len(y)} labels, "
                f"{len(speakers)} speakers, {len(aug)} flags; expected equal lengths"
            )
        self.classes_ = int(y.max()) + 1 if n_classes is None else int(n_classes)
        grid = tuple(self.config.c_grid)
        held = np.unique(speakers[~aug])
        self.inner_uar_: dict[float, float] = {}
        self.inner_proba_ = np.full((len(y), self.classes_), np.nan)
        if len(held) < 2:
            raise DataError(
                f"FunctionalClassifier.fit: got {len(held)} speaker(s), expected >= 2 "
                "for the inner leave-one-speaker-out; add speakers"
            )
        inner = {c: np.full((len(y), self.classes_), np.nan) for c in grid}
        for s in held:
            te = (speakers == s) & ~aug
            tr = speakers != s
            for c, fitted in _fit_grid(x[tr], y[tr], self.config, grid, self.classes_).items():
                inner[c][te] = fitted.proba(x[te])
        val = ~aug
        for c in grid:
            self.inner_uar_[c] = pooled_uar(y[val], inner[c][val].argmax(1))
        self.c_ = max(grid, key=lambda c: (self.inner_uar_[c], -c))
        self.inner_proba_ = inner[self.c_]
        self._model = _fit_grid(x, y, self.config, (self.c_,), self.classes_)[self.c_]
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(M, K)`` class probabilities of new rows at the chosen ``C``."""
        return self._model.proba(np.asarray(x, np.float64))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(M,)`` predicted labels."""
        return self.predict_proba(x).argmax(1)

    def primal(self) -> LinearPrimal:
        """The fitted model at ``c_`` in primal form (what :mod:`vocalis.ensemble.model` runs)."""
        return self._model.primal()
