"""Sign-up, login, logout and tokens against a real API server, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, Account, Server, SignUp, unique
from tests.support.gqlclient import SIGNUP, Api
from tests.support.servers import api_server

ME = "{ me { username email } }"
LOGIN = """mutation($login: String!, $password: String!) {
  login(login: $login, password: $password) { token expiresAt client { username } } }"""
TOKENS = "{ apiTokens { id name kind expiresAt } }"
CREATE_TOKEN = """mutation($name: String!, $days: Int) {
  createApiToken(name: $name, expiresInDays: $days) { token apiToken { id name kind expiresAt } } }"""
REVOKE_TOKEN = "mutation($id: ID!) { revokeApiToken(id: $id) { id name } }"


async def count_clients(server: Server, username: str) -> int:
    rows = await server.db.fetch("SELECT count(*) FROM client WHERE username = $1", username)
    return rows[0][0]


async def test_signup_logs_in_and_me_answers(alice: Account) -> None:
    data = await alice.api(ME)
    assert data["me"] == {"username": alice.username, "email": alice.email}


async def test_password_is_stored_as_argon2id(server: Server, alice: Account) -> None:
    rows = await server.db.fetch(
        "SELECT password_hash FROM client WHERE username = $1", alice.username
    )
    assert rows[0][0].startswith("$argon2id$")
    assert PASSWORD not in rows[0][0]


async def test_only_token_digest_is_stored(server: Server, alice: Account) -> None:
    rows = await server.db.fetch("SELECT token_sha256 FROM api_token")
    stored = {r[0] for r in rows}
    assert alice.token not in stored
    import hashlib

    assert hashlib.sha256(alice.token.encode()).hexdigest() in stored


async def test_login_with_username_or_email(anon: Api, alice: Account) -> None:
    for ident in (alice.username, alice.email.upper()):
        data = await anon(LOGIN, login=ident, password=PASSWORD)
        assert data["login"]["client"]["username"] == alice.username
        assert data["login"]["expiresAt"]
        me = await anon.with_token(data["login"]["token"])(ME)
        assert me["me"]["username"] == alice.username


async def test_wrong_password_and_unknown_account_look_the_same(anon: Api, alice: Account) -> None:
    wrong = await anon.error(LOGIN, login=alice.username, password="not-the-password-1")
    unknown = await anon.error(LOGIN, login=unique("ghost"), password=PASSWORD)
    assert wrong.code == unknown.code == "UNAUTHENTICATED"
    assert str(wrong) == str(unknown)


@pytest.mark.parametrize(
    ("email", "username", "password", "field"),
    [
        ("not-an-email", "validname", PASSWORD, "email"),
        ("x@example.com", "A", PASSWORD, "username"),
        ("x@example.com", "bad name!", PASSWORD, "username"),
        ("x@example.com", "validname", "short1", "password"),
        ("x@example.com", "validname", "onlyletterslong", "password"),
        ("x@example.com", "validname", "1234567890123", "password"),
        ("x@example.com", "validname", "validname-123", "password"),
    ],
)
async def test_signup_rules_reported_per_field(
    server: Server, anon: Api, email: str, username: str, password: str, field: str
) -> None:
    username = username if username != "validname" else unique("valid")
    err = await anon.error(
        SIGNUP, email=email, username=username, password=password.replace("validname", username)
    )
    assert err.code == "VALIDATION"
    assert err.field == field
    assert await count_clients(server, username) == 0


async def test_duplicate_email_and_username(server: Server, anon: Api, alice: Account) -> None:
    err = await anon.error(SIGNUP, email=alice.email, username=unique(), password=PASSWORD)
    assert (err.code, err.field) == ("CONFLICT", "email")
    err = await anon.error(
        SIGNUP, email=f"{unique()}@example.com", username=alice.username, password=PASSWORD
    )
    assert (err.code, err.field) == ("CONFLICT", "username")
    assert await count_clients(server, alice.username) == 1


async def test_logout_revokes_the_token(alice: Account) -> None:
    assert await alice.api("mutation { logout }") == {"logout": True}
    err = await alice.api.error(ME)
    assert err.code == "UNAUTHENTICATED"
    assert "invalid, expired or revoked" in str(err)


async def test_unauthenticated_and_garbage_tokens(anon: Api) -> None:
    assert (await anon.error(ME)).code == "UNAUTHENTICATED"
    for token in ("garbage", "pt_" + "x" * 43, "pt_" + "y" * 500):
        assert (await anon.with_token(token).error(ME)).code == "UNAUTHENTICATED"


async def test_api_tokens_create_list_use_revoke(alice: Account) -> None:
    created = (await alice.api(CREATE_TOKEN, name="ci laptop", days=30))["createApiToken"]
    assert created["token"].startswith("pt_")
    assert created["apiToken"]["kind"] == "API"
    tokens = (await alice.api(TOKENS))["apiTokens"]
    assert {"ci laptop", "login"} <= {t["name"] for t in tokens}
    cli = alice.api.with_token(created["token"])
    assert (await cli(ME))["me"]["username"] == alice.username
    revoked = await alice.api(REVOKE_TOKEN, id=created["apiToken"]["id"])
    assert revoked["revokeApiToken"]["name"] == "ci laptop"
    assert (await cli.error(ME)).code == "UNAUTHENTICATED"
    again = await alice.api.error(REVOKE_TOKEN, id=created["apiToken"]["id"])
    assert again.code == "NOT_FOUND"


async def test_api_token_bad_inputs_change_nothing(alice: Account) -> None:
    before = (await alice.api(TOKENS))["apiTokens"]
    for name, days, field in (
        ("", None, "name"),
        ("x" * 65, None, "name"),
        ("ok", 0, "expiresInDays"),
        ("ok", 99999, "expiresInDays"),
    ):
        err = await alice.api.error(CREATE_TOKEN, name=name, days=days)
        assert (err.code, err.field) == ("VALIDATION", field)
    await alice.api(CREATE_TOKEN, name="dup", days=None)
    err = await alice.api.error(CREATE_TOKEN, name="dup", days=None)
    assert (err.code, err.field) == ("CONFLICT", "name")
    after = (await alice.api(TOKENS))["apiTokens"]
    assert len(after) == len(before) + 1
    assert (await alice.api.error(REVOKE_TOKEN, id="not-a-number")).code == "NOT_FOUND"


async def test_expired_token_is_refused(server: Server, alice: Account) -> None:
    created = (await alice.api(CREATE_TOKEN, name="short", days=1))["createApiToken"]
    token_api = alice.api.with_token(created["token"])
    assert (await token_api(ME))["me"]["username"] == alice.username
    await server.db.fetch(
        "UPDATE api_token SET expires_at = $1 WHERE id = $2",
        _past(server),
        int(created["apiToken"]["id"]),
    )
    err = await token_api.error(ME)
    assert err.code == "UNAUTHENTICATED"


def _past(server: Server) -> object:
    from datetime import UTC, datetime, timedelta

    past = datetime.now(UTC) - timedelta(minutes=5)
    return past if server.db.url else past.isoformat()


async def test_failed_logins_are_rate_limited_per_account(anon: Api, alice: Account) -> None:
    for _ in range(5):
        assert (
            await anon.error(LOGIN, login=alice.username, password="wrong-pass-99")
        ).code == "UNAUTHENTICATED"
    err = await anon.error(LOGIN, login=alice.username, password=PASSWORD)
    assert err.code == "RATE_LIMITED"
    assert err.errors[0]["extensions"]["retryAfter"] > 0
    # Another account from the same address is not affected.


async def test_rate_limit_does_not_spill_to_other_accounts(anon: Api, signup: SignUp) -> None:
    victim, other = await signup(), await signup()
    for _ in range(5):
        await anon.error(LOGIN, login=victim.username, password="wrong-pass-99")
    assert (await anon(LOGIN, login=other.username, password=PASSWORD))["login"]["token"]


async def test_failed_logins_are_rate_limited_per_address(tmp_path) -> None:
    with api_server(tmp_path, login_max_failures_per_address=3) as url:
        anon = Api(url)
        for i in range(3):
            err = await anon.error(LOGIN, login=f"nobody{i}", password="whatever-123")
            assert err.code == "UNAUTHENTICATED"
        err = await anon.error(LOGIN, login="someone-else", password="whatever-123")
        assert err.code == "RATE_LIMITED"
        assert "try again in" in str(err)
