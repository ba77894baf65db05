"""Measure 2's floor in Flask: the signed-in API page as a careful engineer writes it by hand,
without authentication (hand_common.py says what it keeps and why).

    gunicorn -c <project>/gunicorn.conf.py 'hand_flask:create_app()'   # PYTHONPATH: this folder
"""

from __future__ import annotations

import json

import requests
from flask import Flask, Response, render_template
from hand_common import TEMPLATES, hand_settings, store_read


def create_app() -> Flask:
    settings = hand_settings()
    read = store_read()
    http = requests.Session()  # one pool for every thread
    http.trust_env = False  # the environment was read once, at start-up: no proxies here
    app = Flask(__name__, template_folder=str(TEMPLATES))

    @app.get("/api/<name>")
    def page(name: str) -> Response:
        if read is not None:
            read()
        answer = http.get(settings.api_url, headers=settings.headers, timeout=(5, 10))
        answer.raise_for_status()
        pretty = json.dumps(answer.json(), indent=2)
        response = Response(render_template("hand.html", name=name, user=settings.user_name,
                                            pretty=pretty))
        response.headers["X-Bench-Floor"] = "frozen"  # the benchmark's check: a floor answered
        return response

    return app
