"""The top of avpretext: the main job (every stage in turn, ``avpretext-main``) and its report.

This folder may import every layer (docs/architecture.md); nothing imports it but the ``python -m
avpretext.main_job`` entry point.
"""
