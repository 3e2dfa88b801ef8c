"""avpretext: audiovisual pretext pretraining for speech emotion recognition.

Its folders are layers (docs/architecture.md): :mod:`avpretext.common` is the bottom layer every stage may use
(atomic I/O, audio reading and batching, samplers and schedules, CLI parsing, clustering); :mod:`avpretext.synthetic`
(demo and test media) and :mod:`avpretext.pipeline` (the main job and its report) sit on top of every stage.
This file imports nothing, so importing the bottom layer does not load the top; ``main_job.py`` beside it is
only the ``python -m avpretext.main_job`` entry point.
"""
