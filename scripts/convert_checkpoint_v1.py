"""Convert a format-1 Vocalis checkpoint to format 2 (same weights, same predictions).

Format 1 had no ``model.kind``: every model was a neural classifier. Format 2
records ``model.kind = "neural"``; nothing else changes.

Usage::

    python scripts/convert_checkpoint_v1.py OLD.pt NEW.pt   # NEW may equal OLD
"""

from __future__ import annotations

import argparse
import io

import torch

from vocalis.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from vocalis.io import read_bytes


def convert(src: str, dst: str) -> None:
    """Read the format-1 checkpoint ``src`` and write it as format 2 to ``dst``."""
    data = torch.load(io.BytesIO(read_bytes(src)), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SystemExit(f"{src}: not a Vocalis checkpoint")
    if int(data.get("format_version", 0)) != 1:
        raise SystemExit(f"{src}: format {data.get('format_version')}, expected 1")
    for key in ("format", "format_version", "vocalis_version"):
        data.pop(key, None)
    data["model"] = {"kind": "neural", **data["model"]}
    save_checkpoint(dst, data)
    load_checkpoint(dst)  # reads back as format 2


def main() -> None:
    """Command line: ``OLD.pt NEW.pt``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args()
    convert(args.src, args.dst)
    print(f"wrote {args.dst} (format 2)")


if __name__ == "__main__":
    main()
