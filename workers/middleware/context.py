"""Puts the site, message id and job kind of the message being processed on every log record
its thread writes (``shared.logconfig``: fields of their own in JSON logs)."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import Middleware

from shared.logconfig import clear_log_context, set_log_context


class MessageLogContext(Middleware):
    def before_process_message(self, broker: Any, message: Any) -> None:
        site = message.args[0] if message.args else None
        set_log_context(site=None if site is None else str(site),
                        message_id=message.message_id, job_kind=message.actor_name)

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        clear_log_context()

    after_skip_message = after_process_message
