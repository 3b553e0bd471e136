"""The cluster launcher files validate against the schema that ships inside the installed Ray, and
pass the same preparation and checks that `ray up` applies before it starts any node."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
FILES = ["cluster.yaml", "cluster-onprem.yaml"]


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", FILES)
def test_validates_against_the_installed_ray_schema(name):
    config = load(name)
    jsonschema.validate(config, json.loads(SCHEMA.read_text()))
    # What `ray up` does with the file before launching: fill in the provider's defaults, then check.
    validate_config(prepare_config(copy.deepcopy(config)))


@pytest.mark.parametrize("name", FILES)
def test_every_key_is_commented(name):
    """Each key of the file has a comment on the line above it (or above its list item)."""
    lines = (REPO / name).read_text().splitlines()
    key = re.compile(r"^\s*(- )?[\"A-Za-z_~][^:#]*:(\s|$)")
    for i, line in enumerate(lines):
        if key.match(line) and not line.strip().startswith("#") and not line.strip().startswith('"~'):
            above = lines[i - 1].strip()
            assert above.startswith("#"), f"{name}:{i + 1}: key without a comment above it: {line.strip()}"


@pytest.mark.parametrize("name", FILES)
def test_installs_isosweep_with_the_constraints_file(name):
    config = load(name)
    setup = " ".join(config["setup_commands"])
    assert "-c ~/isosweep/constraints.txt" in setup and "$HOME/isosweep[s3]" in setup
    assert config["file_mounts"] == {"~/isosweep": "."}
    pins = (REPO / "constraints.txt").read_text()
    assert f"ray=={ray.__version__}" in pins and "torch==" in pins


def test_aws_head_drives_and_gpu_workers_scale():
    config = load("cluster.yaml")
    assert config["provider"]["type"] == "aws"
    nodes = config["available_node_types"]
    head, gpu = nodes[config["head_node_type"]], nodes["gpu"]
    assert head["resources"] == {"CPU": 0}
    assert gpu["resources"]["GPU"] >= 1 and gpu["min_workers"] == 0 and gpu["max_workers"] >= 1


def test_onprem_lists_its_machines():
    config = load("cluster-onprem.yaml")
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
