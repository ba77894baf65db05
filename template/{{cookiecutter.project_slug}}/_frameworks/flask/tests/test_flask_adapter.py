"""Flask-specific behaviour: what the shared behavioural suite cannot see from outside."""

from __future__ import annotations

from tests.app_server import build_app
from tests.conftest import environment_for_settings_tests as valid_env


def test_forwarded_headers_are_honoured_only_when_configured() -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "portal.example.com"}
    for hops, expected in (("0", "http://localhost/"), ("1", "https://portal.example.com/")):
        app, _ = build_app(valid_env({"TRUSTED_PROXY_HOPS": hops}))

        @app.get("/_probe")
        def probe() -> str:
            from flask import request

            return request.host_url

        assert app.test_client().get("/_probe", headers=headers).text == expected
        # A scheme other than http or https is not taken, whatever the hops.
        odd = {**headers, "X-Forwarded-Proto": "javascript"}
        assert app.test_client().get("/_probe", headers=odd).text == expected.replace(
            "https://", "http://")
