"""The Django app: routes, views, the session engine, the authentication backend, the user model."""
