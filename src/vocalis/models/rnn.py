"""A stacked bidirectional LSTM that never reads padding, without packing.

``pack_padded_sequence`` makes padding invisible to an LSTM, but on CPU a packed
sequence leaves oneDNN's fused kernel for a per-step loop that trains 5-8x
slower. :class:`LengthAwareBiLSTM` gets the same guarantee another way:

* the forward direction is causal, so padded frames at the end of an item never
  reach its valid outputs;
* the backward direction runs on each item *reversed within its own length*
  (valid frames first, padding last) and its output is reversed back.

Both directions therefore see exactly the frames they would see for the item
alone, and use the fast unpacked kernel. ``packed=True`` runs the same weights on
packed sequences instead (the reference; outputs agree to float precision).

Shape legend: B batch, T frames, C input size, H hidden size per direction.

Example:
    >>> import torch
    >>> lstm = LengthAwareBiLSTM(4, 3, num_layers=2).eval()
    >>> x, lengths = torch.randn(2, 6, 4), torch.tensor([6, 4])
    >>> out = lstm(x, lengths)
    >>> out.shape
    torch.Size([2, 6, 6])
    >>> torch.allclose(out[1, :4], lstm(x[1:, :4], torch.tensor([4]))[0], atol=1e-6)
    True
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def reverse_within_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse the first ``lengths[b]`` frames of every item; padding stays in place.

    Applying it twice gives ``x`` back.

    Shape:
        x: (B, T, C), lengths: (B,) or None -> (B, T, C)

    Example:
        >>> x = torch.arange(4.0).view(1, 4, 1)
        >>> reverse_within_lengths(x, torch.tensor([3])).flatten()
        tensor([2., 1., 0., 3.])
    """
    if lengths is None:
        return x.flip(1)
    t = x.shape[1]
    steps = torch.arange(t, device=x.device).unsqueeze(0)
    lens = lengths.to(x.device).unsqueeze(1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(2).expand(-1, -1, x.shape[2]))


class LengthAwareBiLSTM(nn.Module):
    """Stacked BiLSTM whose outputs on valid frames ignore the padding.

    Args:
        input_size: C.
        hidden_size: H per direction (output size 2H).
        num_layers: stacked layers.
        dropout: dropout on the input of every layer after the first.
        packed: use packed sequences (reference semantics, slower on CPU).

    Shape:
        x: (B, T, C), lengths: (B,) or None -> (B, T, 2H); padded frames hold
        unspecified values (mask them or pool with lengths).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 2,
        dropout: float = 0.0,
        packed: bool = False,
    ) -> None:
        super().__init__()
        self.packed = packed
        self.forward_lstms = nn.ModuleList()
        self.backward_lstms = nn.ModuleList()
        for layer in range(num_layers):
            size = input_size if layer == 0 else 2 * hidden_size
            self.forward_lstms.append(nn.LSTM(size, hidden_size, batch_first=True))
            self.backward_lstms.append(nn.LSTM(size, hidden_size, batch_first=True))
        self.dropout = nn.Dropout(dropout)

    def _run(self, lstm: nn.LSTM, x: Tensor, lengths: Tensor | None) -> Tensor:
        if not self.packed or lengths is None:
            return lstm(x)[0]
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = nn.utils.rnn.pad_packed_sequence(
            lstm(packed)[0], batch_first=True, total_length=x.shape[1]
        )
        return out

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Run the BiLSTM over ``x`` (B, T, C) without letting padding reach valid frames."""
        for layer, (fwd, bwd) in enumerate(
            zip(self.forward_lstms, self.backward_lstms, strict=True)
        ):
            if layer > 0:
                x = self.dropout(x)
            ahead = self._run(fwd, x, lengths)
            behind = reverse_within_lengths(
                self._run(bwd, reverse_within_lengths(x, lengths), lengths), lengths
            )
            x = torch.cat([ahead, behind], dim=2)
        return x
