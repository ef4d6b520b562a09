"""Catalogs group access packages and switch requests on or off for them."""

from __future__ import annotations

from domain.configuration import ConfigurationItem


class Catalog(ConfigurationItem):
    """``name, description, enabled, enabled_for_external_users``."""

    KIND = "catalog"

    @property
    def name(self) -> str:
        return self.settings.get("name") or self.key

    @property
    def enabled(self) -> bool:
        return bool(self.settings.get("enabled", True))

    @property
    def enabled_for_external_users(self) -> bool:
        return bool(self.settings.get("enabled_for_external_users", False))
