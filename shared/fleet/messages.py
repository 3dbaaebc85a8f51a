"""The messages the fleet exchanges: actor and queue names and their small, JSON-safe arguments.

Producers build messages from these definitions without importing the actors, so publishing
never loads worker code.  A message carries ids and options only, never credentials.
"""

from __future__ import annotations

from typing import Any

import dramatiq

SCAN_ACTOR = "scan"
EXPORT_ACTOR = "export"
IMPORT_QUEUE = "imports"
EXPORT_QUEUE = "exports"
QUEUES = (IMPORT_QUEUE, EXPORT_QUEUE)


def scan_message(site: str, *, even_if_paused: bool = False) -> dramatiq.Message[Any]:
    """A scan of ``site``; ``even_if_paused``: an operator's, run although the site is paused."""
    kwargs: dict[str, Any] = {"even_if_paused": True} if even_if_paused else {}
    return dramatiq.Message(queue_name=IMPORT_QUEUE, actor_name=SCAN_ACTOR, args=(site,),
                            kwargs=kwargs, options={})


def export_message(site: str, *, cutoff: str | None = None, first: int | None = None,
                   last: int | None = None, status_only: bool = False,
                   even_if_paused: bool = False) -> dramatiq.Message[Any]:
    """A regular export cycle (``first`` unset), a deliberate re-export of ``first..last``, or
    (``status_only``) just a refresh of the customer's ``status.csv`` after new revisions."""
    kwargs: dict[str, Any] = {"even_if_paused": True} if even_if_paused else {}
    if status_only:
        kwargs["status_only"] = True
    if cutoff is not None:
        kwargs["cutoff"] = cutoff
    if first is not None:
        kwargs["first"] = first
        kwargs["last"] = last
    return dramatiq.Message(queue_name=EXPORT_QUEUE, actor_name=EXPORT_ACTOR, args=(site,),
                            kwargs=kwargs, options={})
