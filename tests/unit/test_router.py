"""The router: active versions, a candidate's canary share, pins."""

from __future__ import annotations

import pytest

from gateway.errors import ModelNotFound
from gateway.versions.router import Lane, Router

BASE = "m"


def test_without_a_table_everything_goes_to_the_base() -> None:
    router = Router(BASE)
    choice = router.choose("continue")
    assert (choice.version, choice.propensity) == ("m@v0", 1.0)
    assert router.versions() == {"m@v0"}


def test_a_workload_falls_back_to_the_lane_of_all_workloads() -> None:
    router = Router(BASE, seed=0)
    router.update({"*": Lane("m@v2"), "byllm": Lane("m@v3")})
    assert router.choose("continue").version == "m@v2"
    assert router.choose("byllm").version == "m@v3"
    assert router.active_version() == "m@v2"


def test_a_candidate_gets_its_canary_share_and_each_choice_its_probability() -> None:
    router = Router(BASE, canary_share=0.2, seed=1)
    router.update({"*": Lane("m@v1", candidate="m@v2")})
    choices = [router.choose("chat") for _ in range(5000)]
    share = sum(c.version == "m@v2" for c in choices) / len(choices)
    assert 0.18 < share < 0.22
    assert {(c.version, c.propensity) for c in choices} == {("m@v2", 0.2), ("m@v1", 0.8)}


def test_pins_reach_any_served_version_and_nothing_else() -> None:
    router = Router(BASE)
    router.update({"*": Lane("m@v1", candidate="m@v2")})
    assert router.choose("chat", pinned="m@v2").propensity == 1.0
    assert router.choose("chat", pinned="m@v0").version == "m@v0"
    with pytest.raises(ModelNotFound, match="'m@v7' is not served; served: m@v0, m@v1, m@v2"):
        router.choose("chat", pinned="m@v7")
