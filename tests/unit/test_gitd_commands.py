"""gitd's exec-request parser: only git's two commands on a valid project path; all else refused."""

from __future__ import annotations

import pytest

from gitd.commands import (
    BAD_PATH,
    NOT_ALLOWED,
    RUN_USAGE,
    GitCommand,
    Refused,
    RunCommand,
    is_run,
    parse,
    parse_run,
)


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


# -- the pre-receive hook's ref rules (no deploy reached in these cases) ----------------------

ZERO = "0" * 40
OLD, NEW = "a" * 40, "b" * 40
HOOK_ENV = {
    "PAASTECH_PUSH_PROJECT": "myapp",
    "PAASTECH_PUSH_CLIENT_ID": "7",
    "PAASTECH_DEPLOY_BRANCH": "main",
}


async def run_hook(capsysbinary, stdin: str, env: dict[str, str] = HOOK_ENV) -> tuple[int, str]:
    from gitd import hook

    code = await hook.run(stdin, env)
    return code, capsysbinary.readouterr().out.decode()


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/master"])
async def test_hook_refuses_deleting_the_deploy_branch(capsysbinary, ref: str) -> None:
    code, out = await run_hook(capsysbinary, f"{OLD} {ZERO} {ref}\n")
    assert code == 1
    assert out == " !     Deleting the deploy branch is refused\n"


async def test_hook_stores_other_branches_and_tags(capsysbinary) -> None:
    stdin = (
        f"{ZERO} {NEW} refs/heads/feature\n{OLD} {ZERO} refs/heads/old\n{ZERO} {NEW} refs/tags/v1\n"
    )
    code, out = await run_hook(capsysbinary, stdin)
    assert code == 0
    assert out.splitlines() == [
        "-----> Stored branch feature; only main deploys",
        "-----> Deleted branch old",
        "-----> Stored refs/tags/v1",
    ]


async def test_hook_master_is_not_a_deploy_branch_when_another_is_set(capsysbinary) -> None:
    env = {**HOOK_ENV, "PAASTECH_DEPLOY_BRANCH": "production"}
    code, out = await run_hook(capsysbinary, f"{OLD} {ZERO} refs/heads/master\n", env)
    assert code == 0
    assert out == "-----> Deleted branch master\n"
    code, out = await run_hook(capsysbinary, f"{OLD} {ZERO} refs/heads/production\n", env)
    assert code == 1


async def test_hook_refuses_two_deploy_branches_at_once(capsysbinary) -> None:
    stdin = f"{OLD} {NEW} refs/heads/main\n{OLD} {NEW} refs/heads/master\n"
    code, out = await run_hook(capsysbinary, stdin)
    assert code == 1
    assert "one deploy branch at a time" in out


async def test_hook_needs_gitd_environment(capsysbinary) -> None:
    code, out = await run_hook(capsysbinary, f"{OLD} {NEW} refs/heads/main\n", {})
    assert code == 1
    assert "only accepts pushes through PaaSTech's gitd" in out


def test_hook_log_format() -> None:
    from backend.deploy_output import for_pusher

    assert for_pusher("-----> Building x") == "-----> Building x"
    assert (
        for_pusher("=====> Application deployed: http://x")
        == "=====> Application deployed: http://x"
    )
    assert for_pusher(" !     boom") == " !     boom"
    assert for_pusher("Step 1/7 : FROM x") == "       Step 1/7 : FROM x"
    assert for_pusher(" ---> abc") == "        ---> abc"
    assert for_pusher("       already indented") == "       already indented"


def test_hook_prints_the_typed_deployed_event_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The deployed line comes as a typed event (not recognised by its text): printed once,
    counted as a log line for a reconnect, and not printed again with the outcome."""
    from backend.rpc import platform_pb2 as pb
    from gitd.hook import _Follower

    follower = _Follower("blog")
    events = [
        pb.DeployEvent(status=pb.StatusChange(application=3, status="queued")),
        pb.DeployEvent(log="-----> Deploying v3"),
        pb.DeployEvent(deployed=pb.Deployed(url="http://blog.localhost")),
        pb.DeployEvent(finished=pb.Finished(ok=True, application=3, url="http://blog.localhost")),
    ]
    codes = [follower.handle(event) for event in events]
    assert codes == [None, None, None, 0]
    assert follower.lines == 2 and follower.application == 3
    out = capsys.readouterr().out.splitlines()
    assert out.count("=====> Application deployed: http://blog.localhost") == 1


def test_hook_prints_the_deployed_line_when_the_stream_had_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from backend.rpc import platform_pb2 as pb
    from gitd.hook import _Follower

    follower = _Follower("blog")
    event = pb.DeployEvent(finished=pb.Finished(ok=True, application=3, url="http://b.localhost"))
    assert follower.handle(event) == 0
    assert capsys.readouterr().out.splitlines() == [
        "=====> Application deployed: http://b.localhost"
    ]


def test_hook_failure_is_rejected_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from backend.rpc import platform_pb2 as pb
    from gitd.hook import _Follower

    follower = _Follower("blog")
    refused = pb.DeployEvent(finished=pb.Finished(ok=False, reason="quota reached\nsecond"))
    assert follower.handle(refused) == 1
    assert capsys.readouterr().out.splitlines() == [
        " !     Push rejected: quota reached",
        " !     second",
    ]


# --- one-off commands (issue 14): `ssh git@HOST run NAME -- CMD...`


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("run myapp -- echo hi", ["echo", "hi"]),
        # ssh joins its arguments with spaces; quotes group words as a shell would, no shell runs.
        ("run myapp -- sh -c 'exit 3'", ["sh", "-c", "exit 3"]),
        ('run myapp -- printf "%s\\n" $HOME;ls', ["printf", "%s\\n", "$HOME;ls"]),
        (
            "run myapp -- python manage.py migrate --noinput",
            ["python", "manage.py", "migrate", "--noinput"],
        ),
        ("run myapp -- -- x", ["--", "x"]),
    ],
)
def test_run_commands_parse_into_an_argv(command: str, argv: list[str]) -> None:
    assert is_run(command)
    assert parse_run(command) == RunCommand("myapp", argv)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("run", RUN_USAGE),
        ("run myapp", RUN_USAGE),
        ("run myapp echo hi", RUN_USAGE),
        ("run myapp --", "refused: no command after --"),
        ("run myapp -- ''", "refused: no command after --"),
        ("run myapp -- 'unbalanced", "refused: unbalanced quotes in the command"),
        ("run myapp -- echo \x1b[2J", "refused: the command contains control characters"),
        ("run ../etc -- ls", "refused: project name must be"),
        ("run " + "a" * 20000 + " -- ls", "refused: the command is longer than"),
    ],
)
def test_bad_run_commands_are_refused(command: str, message: str) -> None:
    with pytest.raises(Refused) as info:
        parse_run(command)
    assert info.value.message.startswith(message)
    assert "\n" not in info.value.message


def test_only_run_is_a_run_command() -> None:
    assert not is_run("runner -- x")
    assert not is_run("git-receive-pack 'run.git'")
    assert is_run(b"run x -- y")
