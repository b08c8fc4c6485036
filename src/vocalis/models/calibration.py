"""Post-hoc temperature scaling (Guo et al., 2017).

Fit one temperature on held-out (validation) logits so that
``softmax(logits / T)`` minimises the negative log-likelihood, then store it in
a model built with ``temperature: true`` via ``model.set_temperature(T)``.
Accuracy is unchanged (the argmax does not move); confidence becomes honest.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> labels = torch.randint(0, 4, (200,), generator=g)
    >>> logits = torch.randn(200, 4, generator=g) + 2.0 * torch.nn.functional.one_hot(labels, 4)
    >>> # the Bayes posterior here is softmax(2 * logits): 10x logits need T near 5
    >>> t = calibrate_temperature(10.0 * logits, labels)
    >>> 4.0 < t < 6.0
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vocalis.errors import ModelError


def calibrate_temperature(
    logits: Tensor, labels: Tensor, max_iter: int = 200, bounds: tuple[float, float] = (0.05, 50.0)
) -> float:
    """Temperature minimising the NLL of ``softmax(logits / T)`` on held-out data.

    Args:
        logits: uncalibrated logits of a single-label head (use
            ``extras["uncalibrated_logits"]`` when the model already scales them).
        labels: integer class indices.
        max_iter: L-BFGS iterations.
        bounds: the returned temperature is clipped into this range.

    Returns:
        The temperature T > 0 (T > 1 softens over-confident logits).

    Shape:
        logits: (N, C), labels: (N,) -> float

    Raises:
        ModelError: mismatched shapes, no samples or labels out of range.
    """
    if logits.dim() != 2 or labels.dim() != 1 or logits.shape[0] != labels.shape[0]:
        raise ModelError(
            f"calibrate_temperature needs logits (N, C) and labels (N,), got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if logits.shape[0] == 0:
        raise ModelError("calibrate_temperature got no samples: pass validation logits")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise ModelError(
            f"labels must lie in [0, {logits.shape[1] - 1}], got "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    logits = logits.detach().double()
    labels = labels.detach().long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    return min(max(t, bounds[0]), bounds[1])
