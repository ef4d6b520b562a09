"""Directory users."""

from __future__ import annotations

from domain.configuration import ConfigurationItem


class User(ConfigurationItem):
    """A person in the directory: ``display_name, email, organization, manager, external, roles``."""

    KIND = "user"

    @property
    def user_id(self) -> str:
        return self.key

    @property
    def display_name(self) -> str:
        return self.settings.get("display_name") or self.key

    @property
    def organization(self) -> str | None:
        return self.settings.get("organization")

    @property
    def manager_id(self) -> str | None:
        return self.settings.get("manager")

    @property
    def is_external(self) -> bool:
        return bool(self.settings.get("external", False))

    @property
    def roles(self) -> list[str]:
        return list(self.settings.get("roles", []))

    def has_role(self, role: str) -> bool:
        return role in self.roles
