"""Shared pytest configuration."""


def pytest_configure(config):
    """Register the `slurm` marker: tests that submit jobs to a real SLURM cluster."""
    config.addinivalue_line(
        "markers", "slurm: runs the workflow on a real SLURM cluster (.ci/slurm-cluster.sh start)"
    )
