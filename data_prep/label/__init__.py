"""Stage 2 of avpretext: extracted signals -> speech segments with each pretext task's pseudo-labels.

This folder is the layer above ``pretext.tasks`` (docs/architecture.md): it calls the tasks, so nothing below
them imports it. ``config`` is the label configuration, ``stage`` cuts segments and writes the table,
``audit`` scores the pseudo-labels against reference labels (``audit_report`` renders the scores), and ``cli``
is the ``data_prep`` command (``extract``, ``label``, ``audit``, ``fit-face-emotion``).
"""
