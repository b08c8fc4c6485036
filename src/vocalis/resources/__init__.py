"""Package data: builtin label maps (``label_maps/*.yaml``) and bundled sample audio
(``samples/emodb_mini``). Read them with :mod:`importlib.resources`."""
