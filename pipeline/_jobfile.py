"""What a narration job is made of: documents and prompts, one :class:`JobItem` each.

``speakstream narrate`` takes files (``a.txt b.md``), ``-`` for stdin, and JSONL
job files (``jobs.jsonl``, one JSON object per line)::

    {"text": "Words to narrate."}
    {"path": "book.md"}
    {"prompt": "Explain tides.", "system": "Be brief.", "llm": "ollama",
     "model": "llama3", "base_url": "http://127.0.0.1:11434"}

A ``text``/``path`` line is narrated chapter by chapter; a ``prompt`` line asks
an LLM and streams its answer into speech. Keys a prompt line leaves out
(``system``, ``llm``, ``model``, ``base_url``) fall back to the command's
settings (resolved by :mod:`pipeline._settings`). A relative ``path`` is
relative to the job file's directory. Blank lines are skipped.

Items are read lazily (a job file of any length is never held whole), and
numbered ``item_0001``, ``item_0002``... in order; that is each item's
directory under the output directory. A job of one document file (or ``-``)
keeps the single-document layout: its chapters go straight into the output
directory and its item id is ``""``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import ConfigError

#: The keys a job line may hold.
ITEM_KEYS = ("text", "path", "prompt", "system", "llm", "model", "base_url")
#: The keys of a prompt line that fall back to the command's settings.
PROMPT_SETTINGS = ("llm", "model", "base_url")


@dataclass(frozen=True, kw_only=True)
class JobItem:
    """One thing to narrate: given text, a document file, or an LLM prompt.

    Attributes:
        id: ``"item_NNNN"`` (1-based, in job order), or ``""`` for a job of
            one document (its chapters go straight into the output directory).
        text: text to narrate (characters), or ``None``.
        path: a document to narrate, or ``None``; ``"-"`` is stdin.
        prompt: a message for the LLM, whose answer is narrated, or ``None``.
        system, llm, model, base_url: the prompt's system prompt and LLM
            settings; ``None`` falls back to the command's settings.
    """

    id: str
    text: str | None = None
    path: str | None = None
    prompt: str | None = None
    system: str | None = None
    llm: str | None = None
    model: str | None = None
    base_url: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("text", "path", "prompt") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(
                f"a job item needs exactly one of 'text', 'path' or 'prompt', got {given or 'none'}"
            )
        if self.prompt is None:
            extra = [k for k in ("system", *PROMPT_SETTINGS) if getattr(self, k) is not None]
            if extra:
                raise ConfigError(f"{extra} only go with 'prompt', not with 'text'/'path'")

    @property
    def kind(self) -> str:
        """``"prompt"`` or ``"narrate"``."""
        return "prompt" if self.prompt is not None else "narrate"

    def settings_flags(self) -> dict[str, Any]:
        """The item's own LLM settings, as flags over the command's (unset ones left out)."""
        return {k: getattr(self, k) for k in PROMPT_SETTINGS if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The item as a job line (``id`` included; unset keys left out)."""
        fields = {k: getattr(self, k) for k in ("id", *ITEM_KEYS)}
        return {k: v for k, v in fields.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any, *, id: str, where: str = "job item") -> JobItem:
        """Build an item from a parsed job line.

        Raises:
            ConfigError: not an object, an unknown key, a value that is not a
                string, or not exactly one of ``text``/``path``/``prompt``
                (the message names ``where``).
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(ITEM_KEYS) - {"id"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {', '.join(ITEM_KEYS)}")
        values = {k: data[k] for k in ITEM_KEYS if data.get(k) is not None}
        bad = [k for k, v in values.items() if not isinstance(v, str)]
        if bad:
            raise ConfigError(f"{where}: {bad} must be strings")
        try:
            return cls(id=id, **values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc


def is_job_file(source: str) -> bool:
    """Whether ``source`` names a JSONL job file (by its ``.jsonl`` suffix)."""
    return source.lower().endswith(".jsonl")


def iter_job_items(sources: Sequence[str]) -> Iterator[JobItem]:
    """The items of ``sources`` (files, ``-``, JSONL job files), read lazily, in order.

    Raises:
        ConfigError: no sources, or a bad job line (file and line number named).
        OSError: a job file cannot be read (raised when it is reached).
    """
    if not sources:
        raise ConfigError("narrate needs at least one file, '-' or a .jsonl job file")
    single = len(sources) == 1 and not is_job_file(sources[0])
    number = 0
    for source in sources:
        if not is_job_file(source):
            number += 1
            yield JobItem(id="" if single else f"item_{number:04d}", path=source)
            continue
        base = Path(source).parent
        with open(source, encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{source}:{line_no}"
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{where}: not valid JSON ({exc.msg})") from exc
                number += 1
                item = JobItem.from_dict(data, id=f"item_{number:04d}", where=where)
                if item.path is not None and item.path != "-" and not Path(item.path).is_absolute():
                    item = JobItem(id=item.id, path=str(base / item.path))
                yield item
