"""msal-webapp-generator: validate a YAML spec and render the cookiecutter template atomically.

The spec's rules are the template's own package, `msal_webapp_rules` (the copy its hooks run):
importing `generator` makes it importable (generator/paths.py).
"""

from generator.paths import expose_rules

__version__ = "0.1.0"

expose_rules()
