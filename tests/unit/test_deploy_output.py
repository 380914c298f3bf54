"""The deploy output's shapes (backend/deploy_output.py): written by the API, Pomegranate and
gitd, read back only through these functions."""

from __future__ import annotations

from backend import deploy_output as out


def test_each_kind_of_line() -> None:
    assert out.heading("Building blog (v3)") == "-----> Building blog (v3)"
    assert out.detail("npm install") == "       npm install"
    assert out.failure("the build failed") == " !     the build failed"
    assert (
        out.deployed("http://blog.localhost")
        == "=====> Application deployed: http://blog.localhost"
    )


def test_a_multi_line_failure_marks_every_line() -> None:
    assert out.failure_lines("one\ntwo") == [" !     one", " !     two"]
    assert out.failure_lines("") == [" !     "]


def test_the_deployed_url_is_read_back_only_from_the_deployed_line() -> None:
    url = "https://blog.example.com"
    assert out.deployed_url(out.deployed(url)) == url
    assert out.deployed_url(out.heading("Application deployed: x")) is None
    assert out.deployed_url("=====> Something else") is None
    # The app's own output cannot pass for the platform's line unless it is the exact shape.
    assert out.deployed_url("  =====> Application deployed: http://evil") is None


def test_a_build_cannot_print_the_deployed_line() -> None:
    spoof = out.deployed("http://evil.example")
    assert out.deployed_url(out.from_build(spoof)) is None
    assert out.from_build("-----> Installing dependencies") == "-----> Installing dependencies"
    assert out.from_build("plain output") == "plain output"
