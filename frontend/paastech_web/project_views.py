"""The project page's views: a header, then tabs (Overview, Releases, Logs, Metrics, Activity,
Settings, Add-ons). Each action's outcome shows in its own section (ui.feedback), and the actions
that change what production serves ask first, saying what will change (ui.confirm)."""

from __future__ import annotations

import reflex as rx

from . import ui
from .project_model import Release, ScaleRow
from .project_state import ProjectPage as P


def status_line(r: Release) -> rx.Component:
    """The release's status, and "live" on the one serving now; scaled to 0, it reads "idle"
    and is not called live (it serves nothing)."""
    idle = r.live & P.scaled_to_zero
    return rx.fragment(
        ui.status_badge(
            rx.cond(idle, "IDLE", r.status), id="release-status-" + r.number.to_string()
        ),
        rx.cond(
            r.live & ~P.scaled_to_zero,
            rx.badge("live", color_scheme="green", variant="solid", class_name="live-badge"),
        ),
    )


def release_row(r: Release) -> rx.Component:
    key = "rollback-" + r.number.to_string()
    return rx.box(
        rx.flex(
            rx.text("v", r.number, weight="bold"),
            status_line(r),
            rx.text(r.cause, size="2", color_scheme="gray"),
            rx.cond(r.commit != "", rx.code(r.commit, size="1")),
            rx.text(r.created, size="1", color_scheme="gray"),
            rx.spacer(),
            rx.button(
                "Build log",
                size="1",
                variant=rx.cond(P.log_number == r.number, "solid", "soft"),
                on_click=P.show_log(r.number),
                class_name="show-log",
            ),
            rx.cond(
                ~r.live & r.has_image & (r.number < P.live_number),
                rx.button(
                    "Roll back",
                    size="1",
                    variant="outline",
                    color_scheme="orange",
                    on_click=P.ask(key),
                    loading=P.busy == key,
                    id=key,
                ),
            ),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        # A failure reads red; a superseded release's "replaced by vN" is only information.
        rx.cond(
            r.failure != "",
            rx.text(
                r.failure,
                size="1",
                color=rx.cond(r.failed, "var(--red-11)", "var(--gray-11)"),
                class_name="release-reason",
            ),
        ),
        ui.confirm(
            P.confirming == key,
            "Roll back to v" + r.number.to_string() + "? " + r.reverts,
            P.rollback(r.number),
            P.cancel,
            "confirm-" + key,
            "Roll back",
        ),
        id="release-" + r.number.to_string(),
        class_name="release",
        padding_y="0.5rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def header() -> rx.Component:
    return rx.flex(
        ui.heading(P.name, 1, id="project-name"),
        ui.status_badge(P.live_status, id="live-status", size="2"),
        rx.cond(P.live_number > 0, rx.text("v", P.live_number, color_scheme="gray", id="live-v")),
        spacing="3",
        align="center",
        wrap="wrap",
    )


def overview_tab() -> rx.Component:
    return ui.card(
        ui.heading("Overview"),
        rx.flex(
            rx.text("URL: ", rx.link(P.url, href=P.url, is_external=True, id="app-url")),
            ui.copy_button(P.url, "copy-url"),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.flex(
            rx.text("Git remote: ", rx.code(P.git_url, id="git-url")),
            ui.copy_button(P.git_url, "copy-git-url"),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            P.scaled_to_zero & (P.live_number > 0),
            rx.text(
                "Scaled to 0: nothing serves requests (the URL answers 404). Scale up in "
                "Settings to serve again.",
                size="2",
                color_scheme="gray",
                id="idle-note",
            ),
        ),
        rx.flex(
            rx.button(
                "Restart",
                on_click=P.ask("restart"),
                variant="soft",
                loading=P.busy == "restart",
                disabled=P.live_number == 0,
                id="restart",
            ),
            rx.cond(
                P.live_status == "STOPPED",
                rx.button(
                    "Start",
                    on_click=P.start,
                    variant="soft",
                    loading=P.busy == "overview",
                    id="start",
                ),
                rx.button(
                    "Stop",
                    on_click=P.ask("stop"),
                    variant="soft",
                    color_scheme="orange",
                    loading=P.busy == "stop",
                    disabled=P.live_number == 0,
                    id="stop",
                ),
            ),
            rx.button(
                "Redeploy",
                on_click=P.redeploy,
                variant="soft",
                disabled=P.releases.length() == 0,
                id="redeploy",
            ),
            spacing="2",
            wrap="wrap",
        ),
        ui.confirm(
            P.confirming == "restart",
            "Restart? v" + P.live_number.to_string() + "'s containers are replaced by new ones "
            "(a new release with the same image and env vars).",
            P.restart,
            P.cancel,
            "confirm-restart",
            "Restart",
        ),
        ui.confirm(
            P.confirming == "stop",
            "Stop? Every container of v" + P.live_number.to_string() + " stops and the app "
            "serves nothing until you start it.",
            P.stop,
            P.cancel,
            "confirm-stop",
            "Stop",
        ),
        ui.feedback(P, "overview"),
        rx.cond(
            P.processes.length() > 0,
            rx.flex(
                rx.foreach(
                    P.processes,
                    lambda p: rx.badge(
                        p.label, " ", p.state, color_scheme=rx.cond(p.running, "green", "red")
                    ),
                ),
                spacing="2",
                wrap="wrap",
            ),
        ),
    )


def releases_tab() -> rx.Component:
    return ui.card(
        ui.heading("Releases"),
        ui.feedback(P, "releases"),
        rx.cond(
            P.releases.length() > 0,
            rx.box(rx.foreach(P.releases, release_row), id="releases"),
            ui.empty(
                "Nothing deployed yet. Push to the git remote to create the first release.",
                rx.code_block(
                    "git remote add paastech " + P.git_url + "\ngit push paastech main",
                    language="bash",
                    wrap_long_lines=True,
                ),
            ),
        ),
    )


def log_tools(which: str) -> rx.Component:
    return rx.button(
        "Download",
        size="1",
        variant="ghost",
        on_click=P.download_log(which),
        id=f"download-{which}-log",
        type="button",
    )


def logs_tab() -> rx.Component:
    return rx.flex(
        rx.input(
            placeholder="Filter the lines",
            # Uncontrolled: the state follows the typing (debounced), never the other way.
            on_change=P.set_log_filter.debounce(300),
            id="log-filter",
            width="100%",
        ),
        ui.card(
            rx.flex(
                ui.heading("Build log"),
                rx.cond(P.log_number > 0, rx.text("v", P.log_number, color_scheme="gray")),
                rx.cond(
                    (P.log_number > 0) & ~P.log_done,
                    rx.badge("streaming", color_scheme="blue", id="log-streaming"),
                ),
                rx.spacer(),
                log_tools("build"),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.cond(
                P.timeline.length() > 0,
                rx.text(
                    P.timeline.join(" → ").lower(),  # type: ignore[attr-defined]
                    size="2",
                    id="timeline",
                ),
            ),
            ui.log_box(P.shown_build, "build-log", "No build output yet."),
        ),
        ui.card(
            rx.flex(
                ui.heading("Runtime logs"),
                rx.spacer(),
                log_tools("runtime"),
                rx.button(
                    rx.cond(P.tail, "Stop tail", "Tail logs"),
                    on_click=P.toggle_tail,
                    size="1",
                    variant="soft",
                    id="toggle-tail",
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            rx.cond(
                P.tail,
                ui.log_box(P.shown_runtime, "runtime-log", "Waiting for output..."),
                rx.text(
                    "The last 100 lines of every container, then live output, each line with "
                    "the time it arrived (UTC).",
                    size="2",
                ),
            ),
        ),
        direction="column",
        spacing="4",
        width="100%",
    )


def env_section() -> rx.Component:
    return ui.card(
        ui.heading("Environment variables"),
        rx.text(
            "Values are hidden; a change makes a new release when the app runs.",
            size="2",
            color_scheme="gray",
        ),
        rx.cond(
            P.env.length() > 0,
            rx.box(
                rx.foreach(
                    P.env,
                    lambda e: rx.flex(
                        rx.code(e.key, class_name="env-key"),
                        rx.text(e.shown, size="2", class_name="env-value"),
                        rx.spacer(),
                        rx.button(
                            rx.cond(e.revealed, "Hide", "Show"),
                            size="1",
                            variant="ghost",
                            on_click=P.reveal(e.key),
                        ),
                        rx.button(
                            "Remove",
                            size="1",
                            variant="soft",
                            color_scheme="red",
                            on_click=P.unset_env(e.key),
                        ),
                        spacing="2",
                        align="center",
                        wrap="wrap",
                        padding_y="0.25rem",
                        id="env-" + e.key,
                    ),
                ),
                id="env-list",
            ),
            ui.empty("No environment variables."),
        ),
        rx.form(
            rx.flex(
                ui.field("Name", "key", P.env_errors, placeholder="GREETING"),
                ui.field("Value", "value", P.env_errors, placeholder="hello"),
                ui.form_error(P.env_errors),
                rx.button("Set", type="submit", loading=P.busy == "env", id="set-env"),
                direction="column",
                spacing="2",
            ),
            on_submit=P.set_env,
            reset_on_submit=False,
        ),
        ui.feedback(P, "env"),
        id="env-section",
    )


def domains_section() -> rx.Component:
    return ui.card(
        ui.heading("Domains"),
        rx.foreach(
            P.domains,
            lambda d: rx.flex(
                rx.link(d.hostname, href=d.url, is_external=True),
                rx.cond(d.default, rx.badge("default")),
                rx.cond(
                    d.verified & ~d.default,
                    rx.badge("verified", color_scheme="green", class_name="verified"),
                ),
                rx.text(
                    rx.cond(d.certificate != "", d.certificate, "HTTPS: none yet (HTTP only)"),
                    size="1",
                    color_scheme="gray",
                    class_name="https",
                ),
                rx.cond(
                    ~d.verified,
                    rx.flex(
                        rx.badge("unverified", color_scheme="orange"),
                        rx.text(
                            "Create the TXT record ",
                            rx.code(d.record),
                            " with the value ",
                            rx.code(d.value),
                            ", then verify.",
                            size="1",
                        ),
                        rx.button(
                            "Verify", size="1", variant="soft", on_click=P.verify_domain(d.hostname)
                        ),
                        spacing="2",
                        align="center",
                        wrap="wrap",
                    ),
                ),
                rx.cond(
                    ~d.default,
                    rx.text(
                        "DNS: a CNAME record for ",
                        rx.code(d.hostname),
                        " pointing at ",
                        rx.code(P.default_host),
                        ".",
                        size="1",
                        class_name="dns-target",
                    ),
                ),
                rx.spacer(),
                rx.cond(
                    ~d.default,
                    rx.button(
                        "Remove",
                        size="1",
                        variant="soft",
                        color_scheme="red",
                        on_click=P.remove_domain(d.hostname),
                    ),
                ),
                spacing="2",
                align="center",
                wrap="wrap",
                class_name="domain",
            ),
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Add a custom domain",
                    "hostname",
                    P.domain_errors,
                    placeholder="app.example.com",
                ),
                rx.button("Add domain", type="submit", loading=P.busy == "domains"),
                direction="column",
                spacing="2",
            ),
            on_submit=P.add_domain,
            reset_on_submit=False,
        ),
        ui.feedback(P, "domains"),
    )


def scale_form(s: ScaleRow) -> rx.Component:
    key = "scale-" + s.process_type
    return rx.form(
        rx.flex(
            rx.text(s.process_type, weight="medium", min_width="5rem"),
            rx.el.input(type="hidden", name="processType", value=s.process_type),
            rx.input(
                name="replicas",
                type="number",
                min="0",
                max="20",
                default_value=s.replicas.to_string(),
                key=s.process_type + "-" + s.replicas.to_string(),
                id="replicas-" + s.process_type,
                width="6rem",
            ),
            rx.text("replica(s)", size="2", color_scheme="gray"),
            rx.button("Scale", type="submit", size="1", id="scale-" + s.process_type),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        ui.confirm(
            P.confirming == key,
            "Scale " + s.process_type + " to 0? Every " + s.process_type + " container stops"
            " and the app serves nothing on its URL (404) until you scale it up again.",
            P.set_scale({"processType": s.process_type, "replicas": "0"}),
            P.cancel,
            "confirm-" + key,
            "Scale to 0",
        ),
        on_submit=P.set_scale,
        reset_on_submit=False,
        class_name="scale-form",
    )


def scale_section() -> rx.Component:
    return ui.card(
        ui.heading("Scale and resources"),
        rx.cond(
            P.scale.length() > 0,
            rx.box(rx.foreach(P.scale, scale_form), id="scale-forms"),
            rx.text("Process types appear after the first release.", size="2"),
        ),
        rx.cond(
            P.scale_errors.contains("replicas"),  # type: ignore[attr-defined]
            rx.text(P.scale_errors["replicas"], color="red", size="2", id="error-replicas"),
        ),
        ui.form_error(P.scale_errors),
        ui.feedback(P, "scale"),
        rx.form(
            rx.flex(
                ui.field(
                    "Memory (MB)",
                    "memoryMb",
                    P.resource_errors,
                    type="number",
                    default_value=P.memory_mb.to_string(),
                    key="memory-" + P.memory_mb.to_string(),
                ),
                ui.field(
                    "CPU",
                    "cpu",
                    P.resource_errors,
                    default_value=P.cpu.to_string(),
                    key="cpu-" + P.cpu.to_string(),
                ),
                ui.form_error(P.resource_errors),
                rx.button(
                    "Set limits", type="submit", loading=P.busy == "resources", id="set-resources"
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=P.set_resources,
            reset_on_submit=False,
        ),
        ui.feedback(P, "resources"),
    )


def settings_section() -> rx.Component:
    return ui.card(
        ui.heading("Deploy settings"),
        rx.form(
            rx.flex(
                ui.field(
                    "Port (empty: the buildpack's)",
                    "port",
                    P.settings_errors,
                    type="number",
                    default_value=P.port,
                    key="port-" + P.port,
                ),
                ui.field(
                    "Health check path",
                    "healthCheckPath",
                    P.settings_errors,
                    default_value=P.health_path,
                    key="health-" + P.health_path,
                ),
                ui.field(
                    "Deploy branch",
                    "deployBranch",
                    P.settings_errors,
                    default_value=P.deploy_branch,
                    key="branch-" + P.deploy_branch,
                ),
                ui.form_error(P.settings_errors),
                rx.button(
                    "Save settings", type="submit", loading=P.busy == "settings", id="save-settings"
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=P.update_settings,
            reset_on_submit=False,
        ),
        ui.feedback(P, "settings"),
    )


def danger_section() -> rx.Component:
    return ui.card(
        ui.heading("Delete project", color="red"),
        rx.text(
            "Stops every container and deletes the project, its releases, its images and its "
            "repository. Type the project's name to confirm.",
            size="2",
        ),
        rx.form(
            rx.flex(
                ui.field("Project name", "confirm", P.delete_errors),
                rx.button("Delete project", type="submit", color_scheme="red", id="delete"),
                direction="column",
                spacing="2",
            ),
            on_submit=P.delete,
        ),
    )


def settings_tab() -> rx.Component:
    return rx.flex(
        env_section(),
        domains_section(),
        scale_section(),
        settings_section(),
        danger_section(),
        direction="column",
        spacing="4",
        width="100%",
    )


def metrics_tab() -> rx.Component:
    from .metrics import metrics_tab as view  # a substate of ProjectPage: it imports the state

    return view()


def activity_tab() -> rx.Component:
    from .activity import activity_tab as view

    return view()


def addons_tab() -> rx.Component:
    # Their own modules (substates of ProjectPage), imported here: they import the state.
    from .addons import addons_section
    from .volumes import volumes_section

    return rx.flex(
        addons_section(), volumes_section(), direction="column", spacing="4", width="100%"
    )


TAB_LABELS = (
    ("overview", "Overview"),
    ("releases", "Releases"),
    ("logs", "Logs"),
    ("metrics", "Metrics"),
    ("activity", "Activity"),
    ("settings", "Settings"),
    ("addons", "Add-ons"),
)


def tabs() -> rx.Component:
    views = {
        "overview": overview_tab,
        "releases": releases_tab,
        "logs": logs_tab,
        "metrics": metrics_tab,
        "activity": activity_tab,
        "settings": settings_tab,
        "addons": addons_tab,
    }
    return rx.tabs.root(
        rx.tabs.list(
            *[rx.tabs.trigger(label, value=v, id=f"tab-{v}") for v, label in TAB_LABELS],
            style={"flex_wrap": "wrap"},
        ),
        *[
            rx.tabs.content(views[v](), value=v, padding_top="1rem", id=f"panel-{v}")
            for v, _ in TAB_LABELS
        ],
        value=P.tab,
        on_change=P.set_tab,
        width="100%",
    )


def not_found() -> rx.Component:
    return ui.card(
        ui.heading("Project not found", 1, id="not-found"),
        rx.text("There is no project of yours with this name."),
        rx.link("Back to your projects", href="/projects"),
    )


def project_page() -> rx.Component:
    return ui.page(
        rx.match(
            P.state,
            # Every state has its one h1 (the name), loading and error too.
            (
                "loading",
                rx.flex(ui.heading(P.name, 1), ui.loading("Loading..."), direction="column"),
            ),
            ("missing", not_found()),
            (
                "error",
                rx.flex(
                    ui.heading(P.name, 1),
                    rx.callout(P.load_error, color_scheme="red", id="error-form"),
                    direction="column",
                    spacing="3",
                ),
            ),
            rx.flex(
                header(),
                rx.cond(
                    P.live_error != "",
                    rx.callout(P.live_error, color_scheme="amber", id="live-error"),
                ),
                tabs(),
                direction="column",
                spacing="4",
            ),
        ),
    )
