"""How the roles render templates/, shared with the unit tests so both render identically."""

# Block tags ({% if %}, {% for %}) leave no blank lines or indentation behind.
JINJA_OPTIONS = {"trim_blocks": True, "lstrip_blocks": True}
