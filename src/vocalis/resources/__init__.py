"""Package data: label maps, sample audio and the bundled models.

Builtin label maps (``label_maps/*.yaml``), bundled sample audio
(``samples/emodb_mini``) and models (``models/``). Read them with
:mod:`importlib.resources`.
"""
