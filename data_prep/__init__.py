"""Stage 1 of avpretext: media corpus -> per-item audio and face signals, stored and read back.

This folder is the signal layer (docs/architecture.md): sources, decoding, face signals and AUs, the item store
(``store``, ``signals``) and the label folder's file names and table reader (``segments``); it sits below the
pretext tasks, which read its signals. The label stage that calls the tasks (stage 2: speech segments ->
pseudo-labels, the audit and the ``data_prep`` command) is the folder above them, :mod:`data_prep.label`.

Library entry points: :func:`data_prep.extract.extract_corpus`, :func:`data_prep.label.stage.label_corpus`,
:func:`data_prep.segments.load_segments`.
"""
