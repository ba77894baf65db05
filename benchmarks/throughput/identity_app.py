"""The comparison point: Microsoft's `identity` package used the way its Flask samples do.

    gunicorn --pythonpath benchmarks/throughput 'identity_app:create_app()'

As in Microsoft's sample web app: `identity.flask.Auth` with Flask-Session's "filesystem"
sessions (where `identity` keeps each user's MSAL token cache), a page decorated with
`@auth.login_required(scopes=...)` that calls the API with `requests.get(...)` and the token from
the `context`, and renders a template. Configured from the environment:

    AUTHORITY, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SCOPE, ENDPOINT, SESSION_FILE_DIR
    REQUESTS_CA_BUNDLE   the stand-in's CA (identity's MSAL clients use requests' default trust)

With BENCH_FLOOR=1 it is this variant's no-auth floor: the same page, template and `requests`
call, with the fixed token BENCH_FIXED_TOKEN and no `Auth`, so no session and no MSAL.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from flask import Flask, render_template


def _call_api(token: str) -> Any:
    return requests.get(os.environ["ENDPOINT"],
                        headers={"Authorization": "Bearer " + token}, timeout=30).json()


def create_app() -> Flask:
    app = Flask(__name__)

    if os.environ.get("BENCH_FLOOR") == "1":
        token = os.environ["BENCH_FIXED_TOKEN"]
        user = {"name": os.environ["BENCH_USER_NAME"]}

        @app.route("/call_downstream_api")
        def floor_page() -> str:
            return render_template("display.html", user=user, result=_call_api(token))

        return app

    import identity.flask

    app.config.update(SESSION_TYPE="filesystem", SESSION_FILE_DIR=os.environ["SESSION_FILE_DIR"])
    auth = identity.flask.Auth(
        app,
        authority=os.environ["AUTHORITY"],
        client_id=os.environ["CLIENT_ID"],
        client_credential=os.environ["CLIENT_SECRET"],
        redirect_uri=os.environ["REDIRECT_URI"],
    )

    @app.route("/call_downstream_api")
    @auth.login_required(scopes=os.environ["SCOPE"].split())  # type: ignore[untyped-decorator]
    def call_downstream_api(*, context: dict[str, Any]) -> str:
        return render_template("display.html", user=context["user"],
                               result=_call_api(context["access_token"]))

    return app
