"""Loaded by rules' autodiscovery: registers the permission rules of apps.core.rbac."""

from .rbac import register_rules

register_rules()
