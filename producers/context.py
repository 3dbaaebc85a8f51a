"""Lazily built process context for CLI commands: settings first, clients only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:
    from shared.services import Services


@dataclass
class AppContext:
    settings: Settings
    verbose: bool = False
    _services: Services | None = field(default=None, repr=False)

    @property
    def has_services(self) -> bool:
        """Whether a command built the clients (``services``) in this process."""
        return self._services is not None

    @property
    def services(self) -> Services:
        """The clients and stores, built the first time a command needs them."""
        if self._services is None:
            from shared.services import Services

            self._services = Services.build(self.settings)
        return self._services
