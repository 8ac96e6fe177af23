"""Thin bindings of LAPACE to DiCE (``adapters.dice``) and CARLA (``adapters.carla``)."""
