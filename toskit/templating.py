"""How the roles render templates/, shared with the unit tests so both render identically."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# Block and comment tags ({% if %}, {# why #}) leave no blank lines or indentation behind.
JINJA_OPTIONS = {"trim_blocks": True, "lstrip_blocks": True}
