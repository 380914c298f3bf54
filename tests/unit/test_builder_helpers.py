"""The isolated builder's pure helpers: which buildah failures run once more, an image's size
(backend/pomegranate/builder.py)."""

import json

from backend.pomegranate.builder import image_size, overlay_mount_race

RACE = (
    "Error: preparing container for next step: mounting new container: mounting "
    '/var/lib/paastech/build/projects/p/root/overlay/abc/merged: "lowerdir=/x,upperdir=/y,'
    'workdir=/var/lib/paastech/build/projects/p/root/overlay/abc/work,,volatile": invalid argument'
)


def test_the_kernel_refusing_a_step_mount_is_retried() -> None:
    assert overlay_mount_race(["STEP 4/6: ENV PORT=5000", RACE])


def test_user_errors_are_not_retried() -> None:
    assert not overlay_mount_race(
        [
            "STEP 3/6: RUN false",
            'Error: building at STEP "RUN false": while running runtime: exit status 1',
        ]
    )
    assert not overlay_mount_race(["invalid argument"])  # app output, not buildah's error
    assert not overlay_mount_race(["Error: mounting new container: no space left on device"])
    assert not overlay_mount_race([])


def test_the_image_size_is_its_config_and_layers_as_stored() -> None:
    manifest = {
        "config": {"size": 1121},
        "layers": [{"size": 123975680}, {"size": 4096}],
    }
    assert image_size({"Manifest": json.dumps(manifest)}) == 1121 + 123975680 + 4096
    assert image_size({"Manifest": ""}) == 0
    assert image_size({}) == 0
