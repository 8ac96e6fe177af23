"""Evaluation layer: metrics (split by theme, one argument order, a registry), baselines, the comparative study and
its report. The core package never imports it."""
