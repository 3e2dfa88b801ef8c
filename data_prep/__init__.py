"""Stage 1 and 2 of avpretext: media corpus -> per-item signals -> labelled speech segments.

Library entry points (each CLI command is a thin wrapper over one of them):

* :func:`extract_corpus`: decode videos/audio once, keep audio and per-frame face signals;
* :func:`label_corpus`: cut speech segments and derive pretext labels from the stored signals;
* :func:`load_segments`: the segment table as a pandas DataFrame.
"""
from .extract import ExtractOptions, extract_corpus
from .label import label_corpus, load_segments
from .label_config import build_label_config, load_label_config

__all__ = ["ExtractOptions", "extract_corpus", "label_corpus", "load_segments", "build_label_config",
           "load_label_config"]
