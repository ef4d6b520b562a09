"""Catalogs group access packages and switch requests on or off for them."""

from __future__ import annotations

from domain import errors
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

    def check_open_to(self, *, external: bool) -> None:
        """Requests may be made in this catalog (by or for an external user, when ``external``);
        raises ``CatalogDisabled`` or ``ExternalUsersNotAllowed`` otherwise."""
        if not self.enabled:
            raise errors.CatalogDisabled(f"catalog {self.key!r} is not enabled for requests", catalog_id=self.key)
        if external and not self.enabled_for_external_users:
            raise errors.ExternalUsersNotAllowed(f"catalog {self.key!r} is not enabled for external users", catalog_id=self.key)

    def is_open_to(self, *, external: bool) -> bool:
        """Whether :meth:`check_open_to` lets the request through."""
        try:
            self.check_open_to(external=external)
        except (errors.CatalogDisabled, errors.ExternalUsersNotAllowed):
            return False
        return True
