"""Local stand-in for Microsoft Entra ID v2.0 and for the web APIs the app calls.

Used by the test suite (over real HTTPS on loopback) and by local development mode.
See ``devprovider.standin`` for the behaviour and the Entra error codes it reproduces.
"""

from .model import (
    DEFAULT_TENANT_ID,
    DEFAULT_USERS,
    GRAPH_RESOURCE,
    TOKEN_EXCHANGE_AUDIENCE,
    ClientAuth,
    ManagedIdentity,
    OAuthError,
    TestUser,
)
from .standin import Fault, StandIn
from .tokens import ExternalIssuer

__all__ = [
    "DEFAULT_TENANT_ID",
    "DEFAULT_USERS",
    "GRAPH_RESOURCE",
    "TOKEN_EXCHANGE_AUDIENCE",
    "ClientAuth",
    "ExternalIssuer",
    "Fault",
    "ManagedIdentity",
    "OAuthError",
    "StandIn",
    "TestUser",
]
