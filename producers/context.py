"""Lazily built process context for CLI commands: settings first, clients only when needed."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.services import Services
from shared.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    _services: Services | None = field(default=None, repr=False)

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = Services.build(self.settings)
        return self._services
