"""The project page's Volumes section (issue 15): persistent volumes with their mount path,
process types and space in use; add one; remove one with the project's name typed to confirm.

A substate of ProjectPage (the project's name and the session's token come from it); it loads
when the section is mounted."""

from __future__ import annotations

import dataclasses

import reflex as rx

from . import api, forms, ui
from .addons import human_size
from .project_state import ProjectPage


@dataclasses.dataclass
class VolumeRow:
    name: str = ""
    mount_path: str = ""
    process_types: str = ""
    size: str = ""


def process_types(text: str) -> list[str] | None:
    """ "web, worker" -> ["web", "worker"]; empty -> None (the API's default: web)."""
    types = [t.strip() for t in text.replace(",", " ").split() if t.strip()]
    return types or None


class VolumesSection(ProjectPage):
    volumes: list[VolumeRow] = []
    volumes_loaded: bool = False
    volume_errors: dict[str, str] = {}

    @rx.event
    async def load_volumes(self):
        try:
            data = await self.request("Volumes", p=self.name)
        except api.ApiError as exc:
            self.volume_errors = {"form": exc.message}
            return
        self.volumes = [
            VolumeRow(
                name=v["name"],
                mount_path=v["mountPath"],
                process_types=", ".join(v["processTypes"]),
                size=human_size(v["sizeBytes"]),
            )
            for v in data["project"]["volumes"]
        ]
        self.volumes_loaded = True

    @rx.event
    async def add_volume(self, form: dict):
        mount_path = str(form.get("mountPath", "")).strip()
        if not mount_path.startswith("/"):
            problem = {"mountPath": "Enter an absolute path like /data."}
            forms.refuse(self, "volumes", "volume_errors", problem)
            return
        async for step in forms.run(
            self,
            "volumes",
            "AddVolume",
            done=f"{mount_path} is a persistent volume of {self.name}.",
            errors="volume_errors",
            fields={"mountPath", "processTypes", "name"},
            default="mountPath",
            clear_fields=("mountPath", "volumeName"),
            reload=self.load_volumes,
            p=self.name,
            m=mount_path,
            t=process_types(str(form.get("processTypes", ""))),
            n=str(form.get("volumeName", "")).strip() or None,
        ):
            yield step
        # The API's field "name" is this form's volumeName (the page has other names).
        if "name" in self.volume_errors:
            self.volume_errors = {"volumeName": self.volume_errors["name"]}

    @rx.event
    async def remove_volume(self, form: dict):
        volume = str(form.get("volume", ""))
        typed = str(form.get("confirm", "")).strip()
        if typed != self.name:
            forms.clear(self, f"volume-{volume}")
            self.action_error = f"Type {self.name} to confirm."
            return
        async for step in forms.run(
            self,
            f"volume-{volume}",
            "RemoveVolume",
            done=f"Volume {volume} is removed with its data.",
            reload=self.load_volumes,
            p=self.name,
            n=volume,
            c=typed,
        ):
            yield step
        if not self.action_error:
            self.notice_at = "volumes"  # its row is gone: the outcome shows on the section


# -- the view ----------------------------------------------------------------------------------


def volume_row(v: VolumeRow) -> rx.Component:
    return rx.box(
        rx.flex(
            rx.code(v.mount_path, class_name="volume-path"),
            rx.text(v.name, weight="medium", size="2"),
            rx.badge(v.process_types),
            rx.text(v.size, size="2", color_scheme="gray", class_name="volume-size"),
            spacing="2",
            align="center",
            wrap="wrap",
        ),
        rx.form(
            rx.flex(
                rx.input(
                    name="confirm",
                    placeholder="type the project's name to remove it",
                    id="remove-volume-confirm-" + v.name,
                    size="1",
                ),
                rx.el.input(type="hidden", name="volume", value=v.name),
                rx.button(
                    "Remove",
                    type="submit",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    id="remove-volume-" + v.name,
                ),
                spacing="2",
                align="center",
                wrap="wrap",
            ),
            on_submit=VolumesSection.remove_volume,
            reset_on_submit=False,
        ),
        ui.feedback(VolumesSection, "volume-" + v.name),
        id="volume-" + v.name,
        class_name="volume",
        padding_y="0.5rem",
        border_bottom="1px solid var(--gray-a4)",
    )


def volumes_section() -> rx.Component:
    return ui.card(
        ui.heading("Volumes"),
        rx.text(
            "Kept across releases and shared by the replicas of its process types; a change "
            "makes a new release when the app runs.",
            size="2",
            color_scheme="gray",
        ),
        ui.feedback(VolumesSection, "volumes"),
        rx.cond(
            VolumesSection.volumes.length() > 0,
            rx.box(rx.foreach(VolumesSection.volumes, volume_row), id="volumes"),
            rx.cond(
                VolumesSection.volumes_loaded,
                ui.empty("No volumes."),
                ui.loading("Loading the volumes..."),
            ),
        ),
        rx.form(
            rx.flex(
                ui.field(
                    "Mount path", "mountPath", VolumesSection.volume_errors, placeholder="/data"
                ),
                ui.field(
                    "Process types (default: web)",
                    "processTypes",
                    VolumesSection.volume_errors,
                    placeholder="web, worker",
                ),
                ui.field(
                    "Name (optional)",
                    "volumeName",
                    VolumesSection.volume_errors,
                    placeholder="data",
                ),
                rx.cond(
                    VolumesSection.volume_errors.contains("form"),  # type: ignore[attr-defined]
                    rx.text(
                        VolumesSection.volume_errors["form"],
                        color="red",
                        size="2",
                        id="error-volume-form",
                    ),
                ),
                rx.button(
                    "Add volume",
                    type="submit",
                    loading=VolumesSection.busy == "volumes",
                    id="add-volume",
                ),
                direction="column",
                spacing="2",
            ),
            on_submit=VolumesSection.add_volume,
            reset_on_submit=False,
        ),
        on_mount=VolumesSection.load_volumes,
        id="volumes-section",
    )
