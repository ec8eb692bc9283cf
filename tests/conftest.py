"""Shared test set-up: Hypothesis profiles and the import path for exercises/solutions."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI runs with a fixed derandomised profile so that a green run is reproducible; locally the
# examples vary from run to run, which finds more. Neither has a deadline: Numba compiles.
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--impl",
        default=os.environ.get("MONOLITH_REF_IMPL", "solutions"),
        help="which implementation the exercise graders import: exercises, solutions, or any importable "
        "package with the same module names (default: solutions, or $MONOLITH_REF_IMPL)",
    )
