"""gitd's exec-request parser: only git's two commands on a valid project path; all else refused."""

from __future__ import annotations

import pytest

from gitd.commands import BAD_PATH, NOT_ALLOWED, GitCommand, Refused, parse


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("git-receive-pack 'myapp.git'", GitCommand("git-receive-pack", "myapp")),
        ("git-upload-pack 'myapp.git'", GitCommand("git-upload-pack", "myapp")),
        ("git-receive-pack '/myapp.git'", GitCommand("git-receive-pack", "myapp")),
        ("git-receive-pack '~/myapp.git'", GitCommand("git-receive-pack", "myapp")),
        ("git-receive-pack 'myapp'", GitCommand("git-receive-pack", "myapp")),
        ("git-upload-pack '/myapp'", GitCommand("git-upload-pack", "myapp")),
        ("git-receive-pack myapp.git", GitCommand("git-receive-pack", "myapp")),
        ("git-upload-pack /my-app-2.git", GitCommand("git-upload-pack", "my-app-2")),
        (b"git-receive-pack 'ab.git'", GitCommand("git-receive-pack", "ab")),
        ("git-receive-pack '" + "a" * 40 + ".git'", GitCommand("git-receive-pack", "a" * 40)),
    ],
)
def test_allowed(command: str | bytes, expected: GitCommand) -> None:
    assert parse(command) == expected


def test_write_flag() -> None:
    assert parse("git-receive-pack 'ab.git'").write
    assert not parse("git-upload-pack 'ab.git'").write


NOT_GIT = [
    None,
    "",
    " ",
    "sh",
    "bash",
    "ls",
    "ls -la /",
    "id",
    "cat /etc/passwd",
    "scp -t /tmp",
    "rsync --server . /",
    "git receive-pack 'myapp.git'",  # git sends the dash form only
    "git upload-pack 'myapp.git'",
    "git-upload-archive 'myapp.git'",
    "git-receive-packs 'myapp.git'",
    "GIT-RECEIVE-PACK 'myapp.git'",
    "/usr/bin/git-receive-pack 'myapp.git'",
    " git-receive-pack 'myapp.git'",
    "env git-receive-pack 'myapp.git'",
    "git-receive-pack",
    "git-receive-pack ",
    "git-receive-pack\t'myapp.git'",
    "git-receive-pack\n'myapp.git'",
    "git-receive-pack 'myapp.git'\n",
    "git-receive-pack 'myapp.git'\nrm -rf /",
    "git-receive-pack 'myapp.git'\r",
    "git-receive-pack 'myapp.git'\x00",
    "git-receive-pack 'myäpp.git'",
    b"git-receive-pack '\xff.git'",
    "git-receive-pack '" + "a" * 500 + ".git'",
    "x" * 100_000,
    "\x1b]0;pwned\x07",
]

BAD_PATHS = [
    "git-receive-pack '../x.git'",
    "git-receive-pack '../../etc/passwd'",
    "git-receive-pack '/../x.git'",
    "git-receive-pack '~/../x.git'",
    "git-receive-pack 'x/../y.git'",
    "git-receive-pack '..'",
    "git-receive-pack '.'",
    "git-receive-pack '.git'",
    "git-receive-pack ''",
    "git-receive-pack '/'",
    "git-receive-pack '~'",
    "git-receive-pack '~/'",
    "git-receive-pack '~root/x.git'",
    "git-receive-pack '//myapp.git'",
    "git-receive-pack '/~/myapp.git'",
    "git-receive-pack '~//myapp.git'",
    "git-receive-pack '/srv/git/myapp.git'",
    "git-receive-pack '/etc/passwd'",
    "git-receive-pack '/tmp/x.git'",
    "git-receive-pack 'repos/myapp.git'",
    "git-receive-pack 'myapp.git/'",
    "git-receive-pack 'myapp.git.git'",
    "git-receive-pack 'MyApp.git'",
    "git-receive-pack 'my_app.git'",
    "git-receive-pack 'my app.git'",
    "git-receive-pack 'my--app.git'",
    "git-receive-pack '-myapp.git'",
    "git-receive-pack 'myapp-.git'",
    "git-receive-pack '1app.git'",
    "git-receive-pack 'a.git'",
    "git-receive-pack '" + "a" * 41 + ".git'",
    "git-receive-pack 'x.git; touch /tmp/pwned'",
    "git-receive-pack 'x.git'; touch /tmp/pwned",
    "git-receive-pack 'x.git' && touch /tmp/pwned",
    "git-receive-pack 'x.git' | sh",
    "git-receive-pack 'x.git' > /tmp/pwned",
    "git-receive-pack '$(touch /tmp/pwned).git'",
    "git-receive-pack '`touch /tmp/pwned`.git'",
    "git-receive-pack $(id)",
    "git-receive-pack `id`",
    "git-receive-pack x;id",
    "git-receive-pack 'x.git' 'y.git'",
    "git-receive-pack 'x.git' extra",
    "git-receive-pack  'myapp.git'",
    "git-receive-pack 'myapp.git' ",
    'git-receive-pack "myapp.git"',
    "git-receive-pack 'myapp.git",
    "git-receive-pack myapp.git'",
    "git-receive-pack ''myapp.git''",
    "git-receive-pack 'my'app'.git'",
    "git-receive-pack 'my'\\''app.git'",
    "git-receive-pack \\'myapp.git\\'",
    "git-receive-pack --help",
    "git-upload-pack '--upload-pack=touch /tmp/pwned'",
    "git-upload-pack --strict 'myapp.git'",
    "git-upload-pack '-c core.sshCommand=x'",
    "git-receive-pack '*.git'",
    "git-receive-pack '?.git'",
    "git-receive-pack '%2e%2e/x.git'",
    "git-receive-pack 'x.git#'",
    "git-receive-pack '${HOME}.git'",
]


@pytest.mark.parametrize("command", NOT_GIT + BAD_PATHS)
def test_refused(command: str | bytes | None) -> None:
    with pytest.raises(Refused) as info:
        parse(command)
    message = info.value.message
    assert message.startswith("refused:")
    assert "\n" not in message and "\r" not in message and len(message) < 200
    # The refusal never echoes what was sent (no terminal escapes, no reflected input).
    assert "pwned" not in message and "passwd" not in message


@pytest.mark.parametrize("command", BAD_PATHS[:10])
def test_bad_paths_say_what_a_path_looks_like(command: str) -> None:
    with pytest.raises(Refused) as info:
        parse(command)
    assert info.value.message == BAD_PATH


@pytest.mark.parametrize("command", ["sh", "ls", None, "git receive-pack 'x.git'"])
def test_other_commands_say_there_is_no_shell(command: str | None) -> None:
    with pytest.raises(Refused) as info:
        parse(command)
    assert info.value.message == NOT_ALLOWED


@pytest.mark.parametrize("name", ["git", "api", "www", "admin", "traefik", "paastech"])
def test_reserved_names_refused(name: str) -> None:
    with pytest.raises(Refused) as info:
        parse(f"git-receive-pack '{name}.git'")
    assert "reserved" in info.value.message
