"""Thin bindings of LAPACE to DiCE (``lapace_plugin.adapters.dice``), CARLA (``lapace_plugin.adapters.carla``, with
offline fixtures in ``lapace_plugin.adapters.carla_data``) and their benchmarks.

This folder sits at the repository's top level and is installed as ``lapace_plugin.adapters``: a top-level
``adapters`` package would collide with the PyPI package of that name. Import an adapter by that name::

    from lapace_plugin.adapters.dice import register
"""
