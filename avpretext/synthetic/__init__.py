"""Deterministic synthetic media for the demo and the tests; nothing is downloaded.

One module per job: ``speech`` (speech-like audio), ``face`` (the warped talking face), ``video`` (writing a
media file), ``corpora`` (the sample talking-face corpus and a labelled speech-emotion set) and
``segment_table`` (a labelled segment table as ``data_prep label`` writes, without video). The names below are
the package's API, so ``from avpretext import synthetic; synthetic.write_media(...)`` reads as one toolbox.
"""
from .corpora import (EMOTION_PROSODY, MANIFEST_FILE, SAMPLE_EXPRESSIONS, sample_stretch_expressions,
                      write_labeled_speech, write_sample_corpus, write_talking_face)
from .face import (EXPRESSIONS, FACE_CROP, FACE_IMAGE_FILE, FACE_IMAGE_SHA256, expression_displacement,
                   expression_frame, face_image, talking_face_frame)
from .segment_table import write_segment_table
from .speech import SAMPLE_RATE, voiced_speech
from .video import AudioTrack, VideoTrack, write_media

__all__ = ["EMOTION_PROSODY", "EXPRESSIONS", "FACE_CROP", "FACE_IMAGE_FILE", "FACE_IMAGE_SHA256", "MANIFEST_FILE",
           "SAMPLE_EXPRESSIONS", "SAMPLE_RATE", "AudioTrack", "VideoTrack", "expression_displacement",
           "expression_frame", "face_image", "sample_stretch_expressions", "talking_face_frame", "voiced_speech",
           "write_labeled_speech", "write_media", "write_sample_corpus", "write_segment_table", "write_talking_face"]
