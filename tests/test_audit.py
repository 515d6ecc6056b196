"""`lth audit` on a hand-built lineage: summary.csv <- a run's final weights and metrics <-
theta_0 and the dataset tensors <- the dataset manifest <- a raw file. Each record is written
as the verbs write theirs (lth.core.provenance.make_record); the audit must mark an edited file
CHANGED, a deleted one MISSING, expand a node reached twice once, and exit non-zero."""

from pathlib import Path

import pytest
import torch

from lth.core.io import save_tensors, sha256_file, write_json
from lth.core.provenance import file_entry, make_record, sidecar_path
from lth.verbs.cli import main

RAW = "data/fm/raw/train-images.gz"


def write_record(verb: str, inputs: list[str], outputs: list[str], at: Path) -> None:
    """A record of `verb` at `at` (run.json or a sidecar) naming its inputs and outputs."""
    record = make_record(verb, {"experiment": "t"}, inputs, argv=[])
    record["outputs"] = [file_entry(p) for p in outputs]
    write_json(at, record)


def build_chain() -> None:
    """The lineage, in the working directory, relative paths as the workflow writes them."""
    Path(RAW).parent.mkdir(parents=True)
    Path(RAW).write_bytes(b"raw images")
    write_json("data/fm/manifest.json", {"dataset": "fashion_mnist", "source": "hand",
                                         "files": {"raw/train-images.gz": sha256_file(RAW)}})
    save_tensors("data/fm/tensors.safetensors", {"train_x": torch.zeros(2, 3)})
    save_tensors("init.safetensors", {"w": torch.ones(3)},
                 make_record("init", {"seed": 0}, ["data/fm/manifest.json"], argv=[]))
    Path("run").mkdir()
    save_tensors("run/final.safetensors", {"w": torch.full((3,), 2.0)})
    Path("run/metrics.csv").write_text("iteration,split,loss,accuracy\n0,val,1.0,0.5\n")
    write_record("train", ["init.safetensors", "data/fm/tensors.safetensors"],
                 ["run/final.safetensors", "run/metrics.csv"], Path("run/run.json"))
    Path("summary.csv").write_text("method,accuracy\nimp,0.5\n")
    write_record("summarize", ["run/final.safetensors", "run/metrics.csv"], ["summary.csv"],
                 sidecar_path(Path("summary.csv")))


@pytest.fixture
def chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_chain()


def audit(capsys) -> tuple[int, list[str], str]:
    """Exit status, output lines and error output of `lth audit summary.csv`."""
    status = main(["audit", "summary.csv"])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def status_of(lines: list[str], path: str) -> list[str]:
    """The bracketed status of every line that shows `path`."""
    return [line.split("[")[-1].split("]")[0] for line in lines if f"{path}  sha256=" in line]


def test_an_untouched_lineage_is_ok_and_exits_0(chain, capsys):
    status, lines, err = audit(capsys)
    assert status == 0 and err == ""
    assert status_of(lines, "summary.csv") == ["audited file"]
    for path in ("run/final.safetensors", "run/metrics.csv", "data/fm/manifest.json", RAW):
        assert set(status_of(lines, path)) == {"ok"}
    made_by = [line.split("made by: lth ")[1].split()[0] for line in lines if "made by" in line]
    assert made_by == ["summarize", "train", "init", "train"]  # final, then metrics.csv


def test_a_node_reached_twice_is_expanded_once(chain, capsys):
    """final.safetensors and metrics.csv both come from theta_0: its lineage is shown under
    the first and referred to under the second."""
    _, lines, _ = audit(capsys)
    init = [line for line in lines if "init.safetensors  sha256=" in line]
    assert len(init) == 2
    assert not init[0].endswith("(lineage above)") and init[1].endswith("(lineage above)")
    assert sum("made by: lth init" in line for line in lines) == 1


def test_an_edited_file_is_changed_and_exits_1(chain, capsys):
    with open("run/metrics.csv", "a") as fh:
        fh.write("10,val,0.9,0.6\n")
    status, lines, err = audit(capsys)
    assert status == 1
    assert status_of(lines, "run/metrics.csv") == ["CHANGED"]
    assert set(status_of(lines, "run/final.safetensors")) == {"ok"}
    assert err == "lth audit: 1 file(s) of the lineage CHANGED or MISSING\n"


def test_a_deleted_file_is_missing_and_exits_1(chain, capsys):
    Path("init.safetensors").unlink()
    status, lines, _ = audit(capsys)
    assert status == 1
    assert status_of(lines, "init.safetensors") == ["MISSING", "MISSING"]
    assert not any("made by: lth init" in line for line in lines)


def test_a_changed_raw_dataset_file_is_changed_and_exits_1(chain, capsys):
    Path(RAW).write_bytes(b"other images")
    status, lines, _ = audit(capsys)
    assert status == 1
    assert status_of(lines, RAW) == ["CHANGED", "CHANGED"]  # via the manifest and tensors
    assert set(status_of(lines, "data/fm/manifest.json")) == {"ok"}
