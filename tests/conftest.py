"""Shared pytest configuration."""

import pytest


def pytest_configure(config):
    """Register the markers: `slurm`, tests that submit jobs to a real SLURM cluster, and
    `presets`, the preset slices (minutes each), run only when `-m` names them."""
    config.addinivalue_line(
        "markers", "slurm: runs the workflow on a real SLURM cluster (.ci/slurm-cluster.sh start)"
    )
    config.addinivalue_line(
        "markers", "presets: runs a preset's slice to its report (make test-presets; only "
        "with -m presets)"
    )


def pytest_collection_modifyitems(config, items):
    """Leave the preset slices out unless the marker expression names them."""
    if "presets" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a preset slice: make test-presets (pytest -m presets)")
    for item in items:
        if "presets" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """One line per preset slice that ran: its wall time and job count."""
    lines = [f"{report.nodeid.split('[')[-1].rstrip(']')}: {value}"
             for outcome in ("passed", "failed")
             for report in terminalreporter.stats.get(outcome, [])
             if report.when == "call"
             for name, value in report.user_properties if name == "slice"]
    if lines:
        terminalreporter.section("preset slices")
        for line in lines:
            terminalreporter.write_line(line)
