"""Datasets: prompt cases and recorded streams (JSONL), see ``data/README.md``.

- :class:`Dataset` / :class:`Sample`: prompt cases, each with the scripted answer the
  local provider gives for its prompt.
- :class:`Recording` / :func:`load_recordings`: litellm streams recorded chunk by chunk
  with their time offsets, replayable as litellm ``ModelResponseStream`` objects.
- :func:`record` / :func:`arecord`: record live provider streams into recordings
  (``luthien-lab record``, :mod:`.cli`).
- ``DEFAULT_PROMPTS`` / ``DEFAULT_RECORDINGS``: the bundled files (inside the package,
  found with :mod:`importlib.resources`); :func:`bundled` finds any other.

Nothing here imports litellm: chunks are materialised as litellm objects only when
litellm is imported already (see :func:`Recording.chunks`).
"""

from luthien_lab.datasets._jsonl import DEFAULT_PROMPTS, DEFAULT_RECORDINGS, bundled
from luthien_lab.datasets._record import arecord, make_fixtures, record
from luthien_lab.datasets._recordings import Recording, dump_recordings, load_recordings
from luthien_lab.datasets._samples import Dataset, Sample

__all__ = [
    "DEFAULT_PROMPTS",
    "DEFAULT_RECORDINGS",
    "Dataset",
    "Recording",
    "Sample",
    "arecord",
    "bundled",
    "dump_recordings",
    "load_recordings",
    "make_fixtures",
    "record",
]
