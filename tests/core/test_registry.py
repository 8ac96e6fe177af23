"""Registries (lapace_plugin.registry): names, building with the options a builder names, adding and removing."""

from __future__ import annotations

import pytest

from lapace_plugin import InvalidParameterError
from lapace_plugin.registry import Registry


class Plain:
    def __init__(self, size: int = 1) -> None:
        self.size = size


class Flexible:
    def __init__(self, **settings) -> None:
        self.settings = settings


def test_build_passes_only_the_settings_the_builder_names():
    registry = Registry("block", ("plain", Plain), ("flexible", Flexible))
    assert registry.build("plain", size=3, colour="red").size == 3
    assert registry.build("flexible", size=3, colour="red").settings == {"size": 3, "colour": "red"}


def test_unknown_names_raise_the_parameter_error_listing_the_choices():
    registry = Registry("block", ("plain", Plain))
    with pytest.raises(InvalidParameterError, match="block must be one of 'plain', got 'other'"):
        registry.build("other")
    with pytest.raises(InvalidParameterError):
        registry.check(3)


def test_register_adds_a_new_name_once_and_unregister_removes_it():
    registry = Registry("block", ("plain", Plain))
    assert registry.register("flexible", Flexible) is Flexible
    assert list(registry) == ["plain", "flexible"] and len(registry) == 2 and "flexible" in registry
    with pytest.raises(InvalidParameterError, match="already registered"):
        registry.register("plain", Flexible)
    registry.unregister("flexible")
    assert "flexible" not in registry
