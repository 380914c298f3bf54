"""A thin test client over the gql library: HTTP for queries/mutations, websockets for subscriptions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.support.tls import ssl_context


class GraphQLErrors(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0].get("message") if errors else "error")
        self.errors = errors

    @property
    def code(self) -> str | None:
        return (self.errors[0].get("extensions") or {}).get("code")

    @property
    def field(self) -> str | None:
        return (self.errors[0].get("extensions") or {}).get("field")


REQUEST_SECONDS = 300.0


class Api:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def with_token(self, token: str | None) -> Api:
        return Api(self.url, token)

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # As long as the CLI's longest wait (an add-on's first start on a busy host); gql's own
        # execute_timeout (10 s) would otherwise cut a slow mutation short.
        transport = HTTPXAsyncTransport(
            url=self.url, headers=headers, timeout=REQUEST_SECONDS, verify=ssl_context()
        )
        client = Client(
            transport=transport, fetch_schema_from_transport=False, execute_timeout=REQUEST_SECONDS
        )
        try:
            async with client as session:
                return await session.execute(
                    GraphQLRequest(query, variable_values=variables or None)
                )
        except TransportQueryError as exc:
            raise GraphQLErrors(exc.errors or [{"message": str(exc)}]) from None

    async def error(self, query: str, **variables: Any) -> GraphQLErrors:
        """Run an operation that must fail; returns its errors."""
        try:
            data = await self(query, **variables)
        except GraphQLErrors as exc:
            return exc
        raise AssertionError(f"expected an error, got {data}")

    @asynccontextmanager
    async def subscribe(self, query: str, **variables: Any) -> AsyncIterator[AsyncIterator[dict]]:
        ws_url = self.url.replace("http://", "ws://", 1)
        transport = WebsocketsTransport(
            url=ws_url,
            init_payload={"token": self.token} if self.token else {},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        client = Client(transport=transport, fetch_schema_from_transport=False)
        async with client as session:
            events = session.subscribe(GraphQLRequest(query, variable_values=variables or None))
            try:
                yield events
            finally:
                # Close the operation before the connection, so gql sends `complete` and
                # does not wait out its close timeout.
                await events.aclose()


SIGNUP = """
mutation($email: String!, $username: String!, $password: String!) {
  signup(email: $email, username: $username, password: $password) { token client { id username } }
}"""
