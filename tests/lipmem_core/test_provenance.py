"""Provenance without machine paths (lipmem_core.provenance): new and shipped files alike."""

from __future__ import annotations

import json
import re

import torch

from lipmem_core.checkpoint import load_checkpoint, save_checkpoint
from lipmem_core.model.generator import LipMemGenerator
from lipmem_core.provenance import PROJECT_ROOT, corpus_provenance, portable, project_path
from lipmem_core.provenance.rewrite import rewrite_json
from tests.tiny_model import TINY

MACHINE_PATH = re.compile(
    r"(?<![\w.…])/(?:work|tmp|home|root|Users|mnt)/"
)  # (/data/lrs2 in docs: an example)


def test_project_paths_are_relative_and_outside_paths_keep_their_name():
    assert project_path(PROJECT_ROOT / "checkpoints" / "mouth-oracle") == "checkpoints/mouth-oracle"
    assert project_path("/work/data/synthtalk-v2") == "…/data/synthtalk-v2"
    assert project_path("/x") == "…/x"
    assert project_path("runs/gen") == "runs/gen"  # relative paths are left as given


def test_portable_rewrites_paths_inside_commands_and_leaves_other_text():
    value = {
        "command": "python -m lipmem_core.evaluate --data /work/data/synthtalk-v2 --out=/tmp/r/x.json",
        "argv": ["--syncnet", "/work/runs/syncnet/checkpoint"],
        "note": "P/B/M close the lips; see https://example.org/a/b",
        "n": 3,
    }
    assert portable(value) == {
        "command": "python -m lipmem_core.evaluate --data …/data/synthtalk-v2 --out=…/r/x.json",
        "argv": ["--syncnet", "…/syncnet/checkpoint"],
        "note": "P/B/M close the lips; see https://example.org/a/b",
        "n": 3,
    }


def test_corpus_provenance_names_the_corpus_its_kind_and_seed(tmp_path):
    corpus = tmp_path / "synthtalk"
    corpus.mkdir()
    (corpus / "speakers.json").write_text(json.dumps({"seed": 7, "speakers": {}}))
    assert corpus_provenance(corpus) == {
        "name": "synthtalk",
        "path": f"…/{tmp_path.name}/synthtalk",
        "kind": "synthtalk",
        "seed": 7,
    }
    real = tmp_path / "lrs2"
    real.mkdir()
    (real / "speakers.json").write_text(json.dumps({"seed": None, "source": "preprocess", "speakers": {}}))
    assert corpus_provenance(real)["kind"] == "real" and corpus_provenance(real)["seed"] is None
    assert corpus_provenance(tmp_path)["kind"] is None  # no speakers.json: unknown


def test_checkpoints_are_saved_portable_and_old_ones_rewritten_stay_loadable(tmp_path):
    torch.manual_seed(0)
    model = LipMemGenerator(TINY)
    meta = {
        "command": ["python", "-m", "lipmem_core.train", "--data", "/work/data/c"],
        "syncnet": "/work/r/s",
    }
    directory = save_checkpoint(tmp_path / "ckpt", model, "generator", meta)
    config = json.loads((directory / "config.json").read_text())
    assert config["metadata"] == {
        "command": ["python", "-m", "lipmem_core.train", "--data", "…/data/c"],
        "syncnet": "…/r/s",
    }
    # a checkpoint written before the rule: its metadata is rewritten, its weights untouched
    config["metadata"]["syncnet"] = "/work/runs/syncnet/checkpoint"
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    weights = (directory / "model.safetensors").read_bytes()
    assert rewrite_json(directory / "config.json") is True
    assert rewrite_json(directory / "config.json") is False  # already portable
    assert (directory / "model.safetensors").read_bytes() == weights
    assert load_checkpoint(directory).metadata["syncnet"] == "…/syncnet/checkpoint"


def test_shipped_metadata_results_and_docs_hold_no_machine_paths():
    files = [
        *PROJECT_ROOT.glob("checkpoints/*/*.json"),
        *PROJECT_ROOT.glob("results/*.json"),
        *PROJECT_ROOT.glob("docs/*.md"),
        PROJECT_ROOT / "README.md",
        PROJECT_ROOT / "analysis" / "README.md",
    ]
    assert len(files) > 10
    found = {str(f.relative_to(PROJECT_ROOT)): MACHINE_PATH.findall(f.read_text()) for f in files}
    assert {f: hits for f, hits in found.items() if hits} == {}
    shipped = json.loads((PROJECT_ROOT / "checkpoints/lipmem-synthtalk/config.json").read_text())
    data = shipped["metadata"]["training_data"]
    # the README's corpus command (seed 1, 48 speakers: 38 train), whatever its directory was called
    assert (data["kind"], data["seed"], data["train"]["speakers"]) == ("synthtalk", 1, 38)
    assert json.loads((PROJECT_ROOT / "results/memory.json").read_text())["data"]["corpus"]["seed"] == 1
