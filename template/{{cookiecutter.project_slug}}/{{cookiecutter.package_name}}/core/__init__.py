# Managed by the msal-webapp template: regenerate rather than edit (your code goes outside core/).
"""The framework-neutral core: settings, credentials, token caches, sign-in, downstream APIs.

The web adapter (app.py, views.py) only translates requests, sessions, redirects and responses.
"""
