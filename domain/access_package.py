"""Access packages: the bundle of resources a user requests."""

from __future__ import annotations

from domain.configuration import ConfigurationItem


class AccessPackage(ConfigurationItem):
    """``catalog, name, description, hidden, notifications_enabled, resources,
    incompatible_packages, incompatible_groups``."""

    KIND = "access_package"

    @property
    def name(self) -> str:
        return self.settings.get("name") or self.key

    @property
    def description(self) -> str | None:
        return self.settings.get("description")

    @property
    def catalog_id(self) -> str:
        return self.settings["catalog"]

    @property
    def hidden(self) -> bool:
        return bool(self.settings.get("hidden", False))

    @property
    def notifications_enabled(self) -> bool:
        return bool(self.settings.get("notifications_enabled", True))

    @property
    def resources(self) -> list[dict]:
        """``[{id, kind}]``"""
        return [dict(resource) for resource in self.settings.get("resources", [])]

    @property
    def incompatible_packages(self) -> list[str]:
        return list(self.settings.get("incompatible_packages", []))

    @property
    def incompatible_groups(self) -> list[str]:
        return list(self.settings.get("incompatible_groups", []))
