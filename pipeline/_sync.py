"""The sync bridge of the sync twins: ``llm``'s one copy, used here too.

:class:`llm.PortalHolder` (an event loop in a daemon thread, owned by the
object that needs it, e.g. a :class:`~pipeline.StreamingPipeline`, so clients
and engines created in that loop stay usable across calls) and
:func:`llm.iterate_in_portal` live in ``llm`` because ``llm`` imports nothing
of ours and needs them; sync twins call their async original through them
and never duplicate logic.
"""

from __future__ import annotations

from llm import PortalHolder, iterate_in_portal

__all__ = ["PortalHolder", "iterate_in_portal"]
