"""Narration jobs: several documents, texts and LLM prompts into one output directory.

See :mod:`pipeline._jobfile` (what a job is made of, the JSONL format) and
:mod:`pipeline._job` (running one, ``results.jsonl``, resume)::

    from pipeline.jobs import JobPipelines, anarrate_job, iter_job_items

Running a job on a Ray cluster: :mod:`pipeline.cluster` (needs the ``ray`` extra).
"""

from __future__ import annotations

from ._job import (
    RESULTS_NAME,
    ItemDone,
    ItemResult,
    JobProgress,
    anarrate_job,
    arun_item,
    item_digest,
    job_fingerprint,
    read_results,
)
from ._job_pipelines import JobPipelines, engine_options, prompt_settings, usable_cpus
from ._jobfile import JobItem, iter_job_items
from ._settings import Settings, resolve_settings

__all__ = [
    "ItemDone",
    "ItemResult",
    "JobItem",
    "JobPipelines",
    "JobProgress",
    "RESULTS_NAME",
    "Settings",
    "anarrate_job",
    "arun_item",
    "engine_options",
    "item_digest",
    "iter_job_items",
    "job_fingerprint",
    "prompt_settings",
    "read_results",
    "resolve_settings",
    "usable_cpus",
]
