"""msal-webapp-generator: validate a YAML spec and render the cookiecutter template atomically."""

__version__ = "0.1.0"
