"""Deploy output: the lines a push transcript and a release's build log are made of.

The one home of their shapes, used by every process that writes them (the API's pipeline and
queue, Pomegranate's build, gitd's hook), as Heroku and Dokku print them:

    -----> Building blog (v3)            heading: a step starts
           npm install                   detail: output under the step
     !     the build failed              failure: what went wrong
    =====> Application deployed: URL     deployed: the release is live

The "deployed" line is also a typed event of the internal Deploy stream (DeployEvent.deployed):
gitd never recognises it by its text.
"""

from __future__ import annotations

HEADING = "-----> "
DETAIL = "       "
FAILURE = " !     "
LAST = "=====> "  # a release's last line: only the platform writes it
DEPLOYED = LAST + "Application deployed: "
# A line starting with one of these is shown as it is; any other line is indented as detail.
_MARKED = (HEADING.rstrip(), DEPLOYED[:6], FAILURE.rstrip(), DETAIL)


def heading(text: str) -> str:
    return HEADING + text


def detail(text: str) -> str:
    return DETAIL + text


def failure(text: str) -> str:
    return FAILURE + text


def failure_lines(message: str) -> list[str]:
    """A message of one or more lines, each as a failure line."""
    return [failure(line) for line in message.splitlines() or [""]]


def deployed(url: str) -> str:
    return DEPLOYED + url


def released_idle(number: int, url: str) -> str:
    """The last line instead of "deployed" when the release has 0 web replicas: live, but
    nothing serves its URL (issue 18: it must not read as deployed at that URL)."""
    return (
        f"{LAST}Released v{number} with 0 web replicas: nothing serves {url} "
        "(scale web to 1 or more to serve it)"
    )


def is_last(line: str) -> bool:
    """Whether ``line`` is a release's last line (deployed, or released idle)."""
    return line.startswith(LAST)


def deployed_url(line: str) -> str | None:
    """The URL when ``line`` is the deployed line, else None."""
    return line.removeprefix(DEPLOYED) if line.startswith(DEPLOYED) else None


def from_build(line: str) -> str:
    """A line of a build's own output as the build log keeps it: a build may print headings,
    but not pass for the platform's last line (that one is indented as detail)."""
    return detail(line) if is_last(line) else line


def for_pusher(line: str) -> str:
    """A build log line as a push transcript shows it: headings, failures and details as they
    are, anything else (a build's own output) indented as detail, once."""
    return line if line.startswith(_MARKED) else detail(line)
