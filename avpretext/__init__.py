"""avpretext: audiovisual pretext pretraining for speech emotion recognition.

This package is both ends of the layering: :mod:`avpretext.common` is the bottom layer every stage may use
(atomic I/O, audio reading and batching, samplers and schedules, CLI parsing);
:mod:`avpretext.main_job`, :mod:`avpretext.report` and :mod:`avpretext.synthetic` (demo and test media) sit on
top of every stage. Importing this package imports neither.
"""
