"""The length-aware BiLSTM and its per-item reversal."""

from __future__ import annotations

import torch
from _models_helpers import few_threads  # noqa: F401

from vocalis.models.rnn import LengthAwareBiLSTM, reverse_within_lengths


def test_reverse_within_lengths_is_an_involution_that_keeps_padding():
    x = torch.randn(3, 7, 2)
    lengths = torch.tensor([7, 3, 1])
    r = reverse_within_lengths(x, lengths)
    torch.testing.assert_close(r[1, :3], x[1, :3].flip(0))
    torch.testing.assert_close(r[1, 3:], x[1, 3:])
    torch.testing.assert_close(r[2], x[2])
    torch.testing.assert_close(reverse_within_lengths(r, lengths), x)
    torch.testing.assert_close(reverse_within_lengths(x, None), x.flip(1))


def test_bilstm_matches_torch_bidirectional_lstm_without_padding():
    torch.manual_seed(0)
    ours = LengthAwareBiLSTM(5, 4, num_layers=2).eval()
    ref = torch.nn.LSTM(5, 4, num_layers=2, batch_first=True, bidirectional=True).eval()
    with torch.no_grad():
        for layer in range(2):
            for suffix, lstm in (
                ("", ours.forward_lstms[layer]),
                ("_reverse", ours.backward_lstms[layer]),
            ):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(ref, f"{kind}_l{layer}{suffix}").copy_(getattr(lstm, f"{kind}_l0"))
        x = torch.randn(2, 9, 5)
        torch.testing.assert_close(ours(x), ref(x)[0], atol=1e-6, rtol=1e-5)


def test_bilstm_padding_invariance_and_packed_agreement():
    torch.manual_seed(0)
    lstm = LengthAwareBiLSTM(3, 4, num_layers=2).eval()
    x = torch.randn(3, 8, 3)
    lengths = torch.tensor([8, 5, 2])
    x[1, 5:] = 50.0
    x[2, 2:] = -50.0
    with torch.no_grad():
        out = lstm(x, lengths)
        lstm.packed = True
        ref = lstm(x, lengths)
        lstm.packed = False
        for i, n in enumerate(lengths.tolist()):
            alone = lstm(x[i : i + 1, :n], torch.tensor([n]))
            torch.testing.assert_close(out[i : i + 1, :n], alone, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(out[i, :n], ref[i, :n], atol=1e-6, rtol=1e-5)
