"""Accuracy benchmark (issue 4): real people cut out of real footage, composited on real
backgrounds along scripted paths with exact ground truth, run through ``argus run`` and
scored per rule (precision/recall/F1), plus false alerts per camera-hour on quiet scenes
and the operator's watch load.  Entry point: ``python -m benchmarks.accuracy``.
"""
