"""The project page's Add-ons and Volumes sections (issue 15) in a real browser against a real API
and Pomegranate: a Redis add-on created, its config var hidden then revealed, a backup captured,
restored and downloaded, the add-on destroyed only with its name typed; a volume added and removed
only with the project's name typed. Every refusal of the API shows next to its form and changes
nothing."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.support.ui import Select

from tests.e2e.browser import Browser
from tests.e2e.test_web import api_signup, run, ui_login

pytestmark = [pytest.mark.browser, pytest.mark.docker]

ADDONS = "query($p: String!) { project(name: $p) { addons { name } envVars { key } } }"
VOLUMES = "query($p: String!) { project(name: $p) { volumes { name mountPath } } }"


def new_project(web) -> tuple[str, object, str]:
    name, api, _ = api_signup(web.platform.api_url)
    project = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(project)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=project))
    return name, api, project


def test_redis_addon_reveal_backup_restore_destroy(browser: Browser, web, tmp_path: Path) -> None:
    b = browser
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    b.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    name, api, project = new_project(web)
    ui_login(b, name)
    b.go(f"/projects/{project}")
    b.click("#tab-addons")
    b.wait_text("No add-ons", "#addons-section")

    # An unknown plan: the API's VALIDATION error (field plan) next to the field, nothing made.
    Select(b.wait_el("#field-kind")).select_by_value("redis")
    b.fill("plan", "no-such-plan")
    b.click("#create-addon")
    assert "unknown plan" in b.field_error("plan")
    assert run(api(ADDONS, p=project))["project"]["addons"] == []

    # The smallest plan: the add-on is listed, running, its REDIS_URL hidden until revealed.
    b.fill("plan", "")
    b.click("#create-addon")
    b.wait_text("is running", "#addons-notice", within=120)
    addon = run(api(ADDONS, p=project))["project"]["addons"][0]["name"]
    card = f"#addon-{addon}"
    text = b.wait_text("REDIS_URL", card)
    assert "redis" in text and "available" in text and "health:" in text
    assert "redis://" not in text and "••••" in text
    assert "REDIS_URL" in {e["key"] for e in run(api(ADDONS, p=project))["project"]["envVars"]}
    b.click("#tab-settings")
    b.wait_el("#env-REDIS_URL")  # the env vars section shows it too
    b.click("#tab-addons")
    b.click(f"#reveal-{addon}")
    assert "redis://" in b.wait_text("redis://", card)
    b.check_widths("project-addons")

    # A backup captured appears in the list; a restore runs only once confirmed.
    b.click(f"#capture-{addon}")
    b.wait_text("captured", f"#addon-{addon}-notice", within=60)
    backup = b.wait_el(f"#backups-{addon} .backup").get_attribute("id").removeprefix("backup-")
    assert "manual" in b.text(f"#backup-{backup}")
    b.click(f"#restore-{backup}")
    b.click(f"#confirm-restore-{backup}")
    b.wait_text(f"restored from backup {backup}", f"#addon-{addon}-notice", within=60)
    # The download: the same bytes as the API's endpoint serves to the Client's token.
    b.click(f"#download-{backup}")
    b.wait_text(f"Backup {backup} downloaded", f"#addon-{addon}-notice")
    served = httpx.get(
        web.platform.api_url.rsplit("/graphql", 1)[0] + f"/addon-backups/{backup}",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert served.status_code == 200 and served.content
    files = b.wait(lambda: [f for f in downloads.iterdir() if f.suffix != ".crdownload"])
    assert files[0].read_bytes() == served.content

    # Destroy: refused with another name typed (nothing removed), done with the add-on's name.
    b.wait_el(f"#destroy-confirm-{addon}").send_keys(project)
    b.click(f"#destroy-{addon}")
    assert addon in b.wait_text("to confirm", f"#addon-{addon}-error")
    assert [a["name"] for a in run(api(ADDONS, p=project))["project"]["addons"]] == [addon]
    field = b.el(f"#destroy-confirm-{addon}")
    field.clear()
    field.send_keys(addon)
    b.click(f"#destroy-{addon}")
    b.wait_text("is destroyed", "#addons-notice", within=120)
    b.wait_text("No add-ons", "#addons-section", within=60)
    b.click("#tab-settings")
    b.wait_el("#env-section")
    b.wait(lambda: not b.els("#env-REDIS_URL"), 60, "REDIS_URL gone from the env vars")
    gone = run(api(ADDONS, p=project))["project"]
    assert gone["addons"] == [] and "REDIS_URL" not in {e["key"] for e in gone["envVars"]}


def test_volume_add_and_remove(browser: Browser, web) -> None:
    b = browser
    name, api, project = new_project(web)
    ui_login(b, name)
    b.go(f"/projects/{project}")
    b.click("#tab-addons")
    b.wait_text("No volumes", "#volumes-section")

    # A system directory: the API refuses it (VALIDATION, field mountPath), nothing is added.
    b.fill("mountPath", "/etc/app")
    b.click("#add-volume")
    assert "/etc" in b.field_error("mountPath")
    assert run(api(VOLUMES, p=project))["project"]["volumes"] == []

    b.fill("mountPath", "/data")
    b.fill("volumeName", "files")
    b.click("#add-volume")
    row = b.wait_text("/data", "#volume-files")
    assert "web" in row
    b.check_widths("project-volumes")

    b.wait_el("#remove-volume-confirm-files").send_keys("files")
    b.click("#remove-volume-files")
    assert project in b.wait_text("to confirm", "#volume-files-error")
    assert run(api(VOLUMES, p=project))["project"]["volumes"] == [
        {"name": "files", "mountPath": "/data"}
    ]
    field = b.el("#remove-volume-confirm-files")
    field.clear()
    field.send_keys(project)
    b.click("#remove-volume-files")
    b.wait_text("is removed", "#volumes-notice")
    b.wait_text("No volumes", "#volumes-section")
    assert run(api(VOLUMES, p=project))["project"]["volumes"] == []


ATTACHED = """query($p: String!) { project(name: $p) {
  addons { name attachments { project configVar } } envVars { key value } } }"""


def test_addon_attach_detach_and_rotate(browser: Browser, web) -> None:
    b = browser
    name, api, project = new_project(web)
    other = f"web-{secrets.token_hex(3)}"
    web.platform.projects.append(other)
    run(api("mutation($n: String!) { createProject(name: $n) { name } }", n=other))
    made = run(
        api('mutation($p: String!) { createAddon(project: $p, kind: "redis") { name } }', p=project)
    )
    addon = made["createAddon"]["name"]
    ui_login(b, name)
    b.go(f"/projects/{project}")
    b.click("#tab-addons")
    card = f"#addon-{addon}"
    b.wait_text(project, f"#attached-{addon}")

    # A project that is not the Client's (the select altered in the page): the API refuses it
    # next to the add-on, and nothing is attached.
    b.driver.execute_script(
        "const s = document.getElementById(arguments[0]); const o = document.createElement"
        "('option'); o.value = o.text = 'no-such-project'; s.appendChild(o); s.value = o.value;",
        f"attach-project-{addon}",
    )
    b.click(f"#attach-{addon}")
    b.wait_el(f"#addon-{addon}-error")
    assert run(api(ATTACHED, p=other))["project"]["addons"] == []

    # Attach to the Client's other project: its REDIS_URL is set there too.
    Select(b.wait_el(f"#attach-project-{addon}")).select_by_value(other)
    b.click(f"#attach-{addon}")
    assert f"REDIS_URL is set on {other}" in b.wait_text("attached", f"#addon-{addon}-notice")
    b.wait_text(other, f"#attached-{addon}")
    there = run(api(ATTACHED, p=other))["project"]
    assert [a["name"] for a in there["addons"]] == [addon]
    assert "REDIS_URL" in {e["key"] for e in there["envVars"]}

    # Rotate asks first; cancelled, the password stays; confirmed, both projects get a new URL.
    before = {e["key"]: e["value"] for e in run(api(ATTACHED, p=other))["project"]["envVars"]}
    b.click(f"#rotate-{addon}")
    assert "new password" in b.wait_text("new password", f"{card} .confirm")
    b.click(f"{card} .confirm .cancel")
    b.wait(lambda: not b.els(f"{card} .confirm"), 10, "the confirmation gone")
    now = {e["key"]: e["value"] for e in run(api(ATTACHED, p=other))["project"]["envVars"]}
    assert now["REDIS_URL"] == before["REDIS_URL"]
    b.click(f"#rotate-{addon}")
    b.click(f"#confirm-rotate-{addon}")
    b.wait_text("new password", f"#addon-{addon}-notice", within=60)
    now = {e["key"]: e["value"] for e in run(api(ATTACHED, p=other))["project"]["envVars"]}
    assert now["REDIS_URL"] != before["REDIS_URL"]

    # Detach from the other project asks first; confirmed, its REDIS_URL is unset there only.
    b.click(f"#detach-{addon}-{other}")
    assert other in b.wait_text("Detach", f"{card} .confirm")
    b.click(f"{card} .confirm .cancel")
    assert [a["name"] for a in run(api(ATTACHED, p=other))["project"]["addons"]] == [addon]
    b.click(f"#detach-{addon}-{other}")
    b.click(f"#confirm-detach-{addon}-{other}")
    b.wait_text("detached", f"#addon-{addon}-notice", within=60)
    there = run(api(ATTACHED, p=other))["project"]
    assert there["addons"] == [] and "REDIS_URL" not in {e["key"] for e in there["envVars"]}
    here = run(api(ATTACHED, p=project))["project"]
    assert "REDIS_URL" in {e["key"] for e in here["envVars"]}
