"""Narration jobs on a Ray cluster (needs the ``ray`` extra: importing this imports Ray).

See :mod:`pipeline._ray`::

    import ray
    from pipeline.cluster import run_job_on_ray
    ray.init(address="auto")
    run_job_on_ray(items, settings=settings, output_dir="/shared/out")
"""

from __future__ import annotations

from ._ray import NarrationWorker, connect, run_job_on_ray, start_workers

__all__ = ["NarrationWorker", "connect", "run_job_on_ray", "start_workers"]
