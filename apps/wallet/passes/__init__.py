"""Pure pass builders: no database access (see STYLE.md)."""
