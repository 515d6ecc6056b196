"""lth.core.data and lth.core.prepare on tiny files written in each dataset's real on-disk format.

Every dataset is read back through prepare -> torchvision/torchaudio's own dataset class ->
tensors.safetensors -> load_splits, and the values are compared with what was written.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import http.server
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from generated import (
    cifar_md5_attributes,
    md5,
    numbered_images,
    write_cifar_batches,
    write_idx_gz,
    write_speech_lists,
    write_wav,
)
from lth.core import data
from lth.core.io import LthError, load_tensors, sha256_file
from lth.plan import catalog

WORDS = [f"w{i:02d}" for i in range(35)]
SPEAKERS = {"train": "aaaa0001", "val": "bbbb0002", "test": "cccc0003"}
MFCC = data.SpeechFeatures("mfcc", n_fft=400, win_length=400, hop_length=160, n_mels=40,
                           n_mfcc=13)
LOGMEL = data.SpeechFeatures("logmel", n_fft=512, win_length=400, hop_length=200, n_mels=32,
                             n_mfcc=None)


# ---------------------------------------------------------------- writers of real formats


def make_idx_folder(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A folder with the 4 gz IDX files: 12 training and 5 test images of 28x28."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "train_x": numbered_images(12, (28, 28), seed),
        "train_y": np.arange(12) % 10,
        "test_x": numbered_images(5, (28, 28), seed + 1),
        "test_y": np.array([9, 0, 3, 3, 7]),
    }
    write_idx_gz(folder, "train", written["train_x"], written["train_y"])
    write_idx_gz(folder, "t10k", written["test_x"], written["test_y"])
    return written


def make_cifar_folder(folder: Path) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches of 20 training and 6 test images (4 rows a training batch)."""
    rows = numbered_images(20, (3 * 32 * 32,), seed=5)
    labels = (np.arange(20) * 7) % 10
    test_rows = numbered_images(6, (3 * 32 * 32,), seed=6)
    test_labels = np.array([1, 2, 3, 4, 5, 0])
    write_cifar_batches(folder, (rows, labels), (test_rows, test_labels),
                        [f"class{i}" for i in range(10)])
    return {"train_x": rows.reshape(-1, 3, 32, 32), "train_y": labels,
            "test_x": test_rows.reshape(-1, 3, 32, 32), "test_y": test_labels}


def accept_generated_cifar_files(monkeypatch, folder: Path) -> None:
    """Point the real CIFAR10 class's md5 list at the generated files (cifar_md5_attributes)."""
    import torchvision.datasets as tvd

    for name, value in cifar_md5_attributes(folder).items():
        monkeypatch.setattr(tvd.CIFAR10, name, value)


def make_speech_folder(folder: Path, words: list[str]) -> dict[str, np.ndarray]:
    """One clip per word and split; split lists name the val and test clips.

    Clips are 0.5 s (padded to 1 s when read) except w01's training clip, 1.25 s (cut).
    Returns the training clips' samples by word.
    """
    rng = np.random.default_rng(7)
    clips = {}
    lists = {"val": [], "test": []}
    for word in words:
        for split, speaker in SPEAKERS.items():
            length = 20000 if (word, split) == ("w01", "train") else 8000
            samples = rng.integers(-2000, 2000, length).astype(np.int16)
            rel = f"{word}/{speaker}_nohash_0.wav"
            write_wav(folder / rel, samples)
            if split == "train":
                clips[word] = samples
            else:
                lists[split].append(rel)
    write_wav(folder / "_background_noise_" / "white_noise.wav", rng.integers(-9, 9, 4000))
    write_speech_lists(folder, lists["val"], lists["test"])
    return clips


# ---------------------------------------------------------------- checks shared by datasets


def assert_manifest_hashes(root: Path, manifest: dict, expected_files: set[str]) -> None:
    assert set(manifest["files"]) == expected_files
    for rel, digest in manifest["files"].items():
        assert digest == sha256_file(root / rel)
    assert manifest["tensors"] == sha256_file(root / data.TENSORS_FILE)


def assert_stored_exactly(root: Path, written: dict[str, np.ndarray]) -> None:
    stored = load_tensors(root / data.TENSORS_FILE)
    for key, value in written.items():
        expected = torch.as_tensor(value)
        if key.endswith("_x") and expected.dim() == 3:
            expected = expected.unsqueeze(1)
        assert stored[key].dtype == (torch.uint8 if key.endswith("_x") else torch.int64)
        assert torch.equal(stored[key], expected.to(stored[key].dtype))


def assert_held_out_and_normalised(splits: data.Splits, written: dict, val_size: int) -> None:
    """Validation is val_size training images, disjoint from train, inputs normalised exactly.

    The first value of each image is its index, and normalisation is increasing, so ranking the
    first values of train and val together recovers which written image each row is.
    """
    rows = torch.cat([splits.train_x, splits.val_x])
    ids = rows.flatten(1)[:, 0].argsort().argsort()
    train_ids, val_ids = ids[: len(splits.train_x)], ids[len(splits.train_x) :]
    assert len(val_ids) == val_size
    assert sorted(torch.cat([train_ids, val_ids]).tolist()) == list(range(len(rows)))
    images = torch.as_tensor(written["train_x"]).reshape(rows.shape).float() / 255
    dims = [0, *range(2, images.dim())]
    std, mean = torch.std_mean(images[train_ids], dim=dims, correction=0, keepdim=True)
    labels = torch.as_tensor(written["train_y"])
    for x, y, idx in ((splits.train_x, splits.train_y, train_ids),
                      (splits.val_x, splits.val_y, val_ids)):
        torch.testing.assert_close(x, (images[idx] - mean) / std)
        assert torch.equal(y, labels[idx])
    test = torch.as_tensor(written["test_x"]).reshape(splits.test_x.shape).float() / 255
    torch.testing.assert_close(splits.test_x, (test - mean) / std)
    assert torch.equal(splits.test_y, torch.as_tensor(written["test_y"]))


# ---------------------------------------------------------------- image datasets


@pytest.mark.parametrize(("name", "folder"), [("fashion_mnist", "FashionMNIST"),
                                              ("mnist", "MNIST")])
def test_idx_folder_round_trips_through_torchvision(tmp_path, name, folder):
    written = make_idx_folder(tmp_path / "src")
    root = tmp_path / "data"
    manifest = data.prepare(name, root, source=tmp_path / "src", download=False, speech=None)
    assert manifest["source"] == {"way": "folder", "path": str(tmp_path / "src")}
    assert manifest["dataset"] == name and len(manifest["classes"]) == 10
    gz = set(catalog.IDX_GZ_FILES)
    assert_manifest_hashes(root, manifest, {f"{folder}/raw/{f}" for f in gz | {
        g[:-3] for g in gz}})
    assert_stored_exactly(root, written)
    splits = data.load_splits(root, 4, "cpu")
    assert splits.info == data.DatasetInfo(name, (1, 28, 28), 10)
    assert splits.augment is False
    assert_held_out_and_normalised(splits, written, val_size=4)


def test_validation_split_is_deterministic(tmp_path):
    make_idx_folder(tmp_path / "src")
    data.prepare("mnist", tmp_path / "d", source=tmp_path / "src", download=False, speech=None)
    first, second = (data.load_splits(tmp_path / "d", 5, "cpu") for _ in range(2))
    for key in ("train_x", "train_y", "val_x", "val_y", "test_x"):
        assert torch.equal(getattr(first, key), getattr(second, key))


def test_prepare_does_nothing_when_up_to_date_and_redoes_on_changed_tensors(tmp_path):
    make_idx_folder(tmp_path / "src")
    root = tmp_path / "d"
    first = data.prepare("mnist", root, source=tmp_path / "src", download=False, speech=None)
    stamp = (root / data.TENSORS_FILE).stat().st_mtime_ns
    # No source and no download: this only succeeds because nothing needs fetching.
    assert data.prepare("mnist", root, source=None, download=False, speech=None) == first
    assert (root / data.TENSORS_FILE).stat().st_mtime_ns == stamp
    (root / data.TENSORS_FILE).write_bytes(b"changed")
    again = data.prepare("mnist", root, source=tmp_path / "src", download=False, speech=None)
    assert again["tensors"] == first["tensors"] == sha256_file(root / data.TENSORS_FILE)


@pytest.fixture
def local_mirror(tmp_path, monkeypatch):
    """Serve tmp_path/mirror over HTTP on localhost as torchvision's FashionMNIST mirror.

    Tests have no network; the download code that runs is torchvision's own. When the folder
    holds the gz files, torchvision's expected md5s are set to theirs.
    """
    import torchvision.datasets as tvd

    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors",
                        [f"http://127.0.0.1:{server.server_address[1]}/"])

    def publish(written_by) -> dict:
        written = written_by(folder)
        monkeypatch.setattr(tvd.FashionMNIST, "resources",
                            [(f, md5(folder / f)) for f in catalog.IDX_GZ_FILES])
        return written

    yield publish
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """Keep the test output free of request logs."""


def test_fashion_mnist_downloads_through_torchvision(tmp_path, local_mirror):
    written = local_mirror(make_idx_folder)
    manifest = data.prepare("fashion_mnist", tmp_path / "d", source=None, download=True,
                            speech=None, debian_dir=tmp_path / "no-debian")
    assert manifest["source"] == {"way": "download", "path": None}
    assert_stored_exactly(tmp_path / "d", written)


def test_fashion_mnist_falls_back_to_debian_folder(tmp_path, local_mirror):
    written = make_idx_folder(tmp_path / "debian")
    manifest = data.prepare("fashion_mnist", tmp_path / "d", source=None, download=True,
                            speech=None, debian_dir=tmp_path / "debian")
    assert manifest["source"] == {"way": "debian", "path": str(tmp_path / "debian")}
    assert_stored_exactly(tmp_path / "d", written)


def test_fashion_mnist_without_any_way_names_all_three_in_one_line(tmp_path, local_mirror):
    with pytest.raises(LthError) as err:
        data.prepare("fashion_mnist", tmp_path / "d", source=None, download=True, speech=None,
                     debian_dir=tmp_path / "no-debian")
    message = str(err.value)
    assert "\n" not in message
    assert "source folder" in message and "(not set)" in message
    assert "download (failed: Error downloading train-images-idx3-ubyte.gz" in message
    assert "`apt-get install dataset-fashion-mnist`" in message


def test_mnist_without_source_or_download_names_its_two_ways(tmp_path):
    with pytest.raises(LthError, match=r"\(not set\).*download=False") as err:
        data.prepare("mnist", tmp_path / "d", source=None, download=False, speech=None)
    assert "apt-get" not in str(err.value)


# ---------------------------------------------------------------- unusable sources, bad files


def test_a_missing_source_folder_is_refused_not_replaced_by_the_debian_copy(tmp_path):
    make_idx_folder(tmp_path / "debian")
    with pytest.raises(LthError) as err:
        data.prepare("fashion_mnist", tmp_path / "d", source=tmp_path / "missing",
                     download=False, speech=None, debian_dir=tmp_path / "debian")
    assert str(err.value) == (f"dataset fashion_mnist: source folder {tmp_path / 'missing'} "
                              f"does not exist")
    assert not (tmp_path / "d").exists()


def test_the_prepare_verb_refuses_a_missing_source_without_downloading(tmp_path, capsys):
    from lth.verbs.cli import main

    speech = [arg for key, value in (("features", "mfcc"), ("n-fft", 480), ("win-length", 480),
                                     ("hop-length", 160), ("n-mels", 40), ("n-mfcc", 40))
              for arg in (f"--speech-{key}", str(value))]
    assert main(["prepare", "--dataset", "mnist", "--root", str(tmp_path / "d"), "--source",
                 str(tmp_path / "missing"), "--download", "true", *speech]) == 2
    assert capsys.readouterr().err == (f"lth: error: dataset mnist: source folder "
                                       f"{tmp_path / 'missing'} does not exist\n")
    assert list(tmp_path.iterdir()) == []


def test_a_source_folder_lacking_files_is_refused_even_when_prepared(tmp_path):
    make_idx_folder(tmp_path / "src")
    first = data.prepare("mnist", tmp_path / "d", source=tmp_path / "src", download=False,
                         speech=None)
    (tmp_path / "src" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(LthError, match=r"source folder .*/src lacks t10k-labels-idx1-ubyte\.gz$"):
        data.prepare("mnist", tmp_path / "d", source=tmp_path / "src", download=False,
                     speech=None)
    assert data.prepare("mnist", tmp_path / "d", source=None, download=False,
                        speech=None) == first


def gz_rewrite(path: Path, edit) -> None:
    """Replace the unpacked bytes of a gz file by edit(bytes)."""
    path.write_bytes(gzip.compress(edit(gzip.decompress(path.read_bytes()))))


@pytest.mark.parametrize(("file", "damage", "expected"), [
    ("train-images-idx3-ubyte.gz", lambda p: p.write_bytes(p.read_bytes()[:200]),
     "not a readable gzip file"),
    ("train-images-idx3-ubyte.gz", lambda p: gz_rewrite(p, lambda b: b[:-100]),
     r"truncated or corrupt: its IDX header announces \(12, 28, 28\) \(9424 bytes "
     r"unpacked\), it holds 9324 bytes"),
    ("t10k-images-idx3-ubyte.gz", lambda p: gz_rewrite(p, lambda b: b"\x00\x00\x0d" + b[3:]),
     "not an IDX file of unsigned bytes with 3 dimensions"),
    ("t10k-labels-idx1-ubyte.gz", lambda p: gz_rewrite(p, lambda b: b[:-1]),
     "truncated or corrupt"),
    ("t10k-labels-idx1-ubyte.gz",
     lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big")
                                           + bytes(4))),
     "4 labels for the 5 images of t10k-images-idx3-ubyte.gz"),
])
def test_a_damaged_idx_file_is_named_in_one_line_and_nothing_is_written(
        tmp_path, file, damage, expected):
    make_idx_folder(tmp_path / "src")
    damage(tmp_path / "src" / file)
    root = tmp_path / "d"
    with pytest.raises(LthError, match=expected) as err:
        data.prepare("mnist", root, source=tmp_path / "src", download=False, speech=None)
    assert str(err.value).startswith(f"{tmp_path / 'src' / file}: ")
    assert "\n" not in str(err.value)
    assert [p.name for p in root.rglob("*")] == []  # no raw file, no scratch folder left


def test_a_damaged_idx_file_leaves_the_prepared_dataset_untouched(tmp_path):
    make_idx_folder(tmp_path / "src")
    root = tmp_path / "d"
    data.prepare("mnist", root, source=tmp_path / "src", download=False, speech=None)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    (root / data.TENSORS_FILE).unlink()  # forces preparing again, from the damaged source
    del before[root / data.TENSORS_FILE]
    gz_rewrite(tmp_path / "src" / "train-images-idx3-ubyte.gz", lambda b: b[:-1])
    with pytest.raises(LthError, match="train-images-idx3-ubyte.gz: truncated or corrupt"):
        data.prepare("mnist", root, source=tmp_path / "src", download=False, speech=None)
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b[:100] + b"x" + b[101:]],
                         ids=["truncated", "one byte changed"])
def test_a_damaged_cifar_batch_is_named_in_one_line(tmp_path, monkeypatch, damage):
    make_cifar_folder(tmp_path / "src")
    accept_generated_cifar_files(monkeypatch, tmp_path / "src")
    batch = tmp_path / "src" / "data_batch_3"
    batch.write_bytes(damage(batch.read_bytes()))
    with pytest.raises(LthError) as err:
        data.prepare("cifar10", tmp_path / "d", source=tmp_path / "src", download=False,
                     speech=None)
    assert str(err.value).startswith(f"{batch}: not the official CIFAR-10 file (md5 ")
    assert str(err.value).endswith("truncated or corrupt")


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda b: b[:-1000], "truncated: its header announces 8000 samples, it holds 7500"),
    (lambda b: b"JUNK" + b[4:], "not a readable WAV file"),
])
def test_a_damaged_speech_clip_is_named_in_one_line(tmp_path, damage, expected):
    make_speech_folder(tmp_path / "src", WORDS)
    clip = tmp_path / "src" / "w07" / f"{SPEAKERS['val']}_nohash_0.wav"
    clip.write_bytes(damage(clip.read_bytes()))
    with pytest.raises(LthError) as err:
        data.prepare("speech_commands", tmp_path / "d", source=tmp_path / "src",
                     download=False, speech=MFCC)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'd'}/SpeechCommands/speech_commands_v0.02/w07/")
    assert expected in message and "\n" not in message


def test_cifar10_batches_round_trip_through_torchvision(tmp_path, monkeypatch):
    written = make_cifar_folder(tmp_path / "src")
    accept_generated_cifar_files(monkeypatch, tmp_path / "src")
    root = tmp_path / "d"
    manifest = data.prepare("cifar10", root, source=tmp_path / "src", download=False,
                            speech=None)
    assert manifest["classes"] == [f"class{i}" for i in range(10)]
    expected = {f"cifar-10-batches-py/{f}" for f in catalog.CIFAR_FILES}
    assert_manifest_hashes(root, manifest, expected)
    assert_stored_exactly(root, written)
    splits = data.load_splits(root, 5, "cpu")
    assert splits.info == data.DatasetInfo("cifar10", (3, 32, 32), 10)
    assert splits.augment is True
    assert_held_out_and_normalised(splits, written, val_size=5)


# ---------------------------------------------------------------- speech commands


@pytest.mark.parametrize("features", [MFCC, LOGMEL], ids=["mfcc", "logmel"])
def test_speech_commands_official_splits_and_features(tmp_path, features):
    import torchaudio.transforms as tat

    clips = make_speech_folder(tmp_path / "src", WORDS)
    root = tmp_path / "d"
    manifest = data.prepare("speech_commands", root, source=tmp_path / "src", download=False,
                            speech=features)
    assert manifest["classes"] == WORDS
    assert manifest["features"] == dataclasses.asdict(features)
    prefix = "SpeechCommands/speech_commands_v0.02/"
    wavs = {f"{prefix}{w}/{s}_nohash_0.wav" for w in WORDS for s in SPEAKERS.values()}
    lists = {prefix + f for f in data.SPEECH_LIST_FILES}
    assert_manifest_hashes(root, manifest,
                           wavs | lists | {prefix + "_background_noise_/white_noise.wav"})

    splits = data.load_splits(root, None, "cpu")
    shape = data.speech_input_shape(features)
    assert splits.info == data.DatasetInfo("speech_commands", shape, 35)
    for x, y in ((splits.train_x, splits.train_y), (splits.val_x, splits.val_y),
                 (splits.test_x, splits.test_y)):
        assert x.shape == (35, *shape)
        assert torch.equal(y, torch.arange(35))

    stored = load_tensors(root / data.TENSORS_FILE)
    mel = {"n_fft": features.n_fft, "win_length": features.win_length,
           "hop_length": features.hop_length, "n_mels": features.n_mels}
    transform = (tat.MFCC(16000, n_mfcc=features.n_mfcc, melkwargs=mel)
                 if features.kind == "mfcc"
                 else torch.nn.Sequential(tat.MelSpectrogram(16000, **mel), tat.AmplitudeToDB()))
    for word in ("w00", "w01"):  # w00 is padded to one second, w01 is cut to it
        wave_1s = np.zeros(16000, dtype=np.float32)
        clip = clips[word][:16000].astype(np.float32) / 32768
        wave_1s[: len(clip)] = clip
        expected = transform(torch.from_numpy(wave_1s)[None, None])[0, 0]
        torch.testing.assert_close(stored["train_x"][WORDS.index(word)], expected)


def test_speech_commands_needs_35_word_folders(tmp_path):
    make_speech_folder(tmp_path / "src", WORDS[:3])
    with pytest.raises(LthError, match="expected 35 word folders .*found 3"):
        data.prepare("speech_commands", tmp_path / "d", source=tmp_path / "src",
                     download=False, speech=MFCC)


def test_speech_settings_are_checked():
    assert data.speech_input_shape(MFCC) == (13, 101)
    assert data.speech_input_shape(LOGMEL) == (32, 81)
    assert catalog.dataset_info("speech_commands", MFCC).input_shape == (13, 101)
    assert catalog.dataset_info("cifar10", None) == data.DATASETS["cifar10"]
    with pytest.raises(LthError, match="n_mfcc"):
        data.speech_input_shape(data.SpeechFeatures("mfcc", 400, 400, 160, 40, None))
    with pytest.raises(LthError, match="win_length"):
        data.speech_input_shape(data.SpeechFeatures("logmel", 256, 400, 160, 40, None))
    with pytest.raises(LthError, match="expected speech feature settings"):
        catalog.dataset_info("speech_commands", None)
    with pytest.raises(LthError, match="dataset: expected one of"):
        catalog.dataset_info("imagenet", None)


# ---------------------------------------------------------------- load_splits errors, imports


def test_load_splits_rejects_missing_corrupt_and_oversized(tmp_path):
    with pytest.raises(LthError, match="file not found"):
        data.load_splits(tmp_path, 4, "cpu")
    (tmp_path / data.TENSORS_FILE).write_bytes(b"\x08" + b"\x00" * 7 + b"not json")
    with pytest.raises(LthError, match="not a valid safetensors file"):
        data.load_splits(tmp_path, 4, "cpu")
    make_idx_folder(tmp_path / "src")
    data.prepare("mnist", tmp_path / "d", source=tmp_path / "src", download=False, speech=None)
    for bad in (12, 0, None):
        with pytest.raises(LthError, match=r"val_size: expected an integer in 1\.\.11"):
            data.load_splits(tmp_path / "d", bad, "cpu")


def test_training_side_does_not_import_torchvision_or_torchaudio(tmp_path):
    make_idx_folder(tmp_path / "src")
    data.prepare("mnist", tmp_path / "d", source=tmp_path / "src", download=False, speech=None)
    code = (f"import sys, lth.core.data; "
            f"lth.core.data.load_splits({str(tmp_path / 'd')!r}, 4, 'cpu'); "
            "print(sorted(m for m in ('torchvision', 'torchaudio') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- augmentation


def crop_candidates(image: torch.Tensor) -> dict[tuple[int, int, bool], torch.Tensor]:
    """Every pad-4 crop of image, flipped or not, keyed by (dy, dx, flipped)."""
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    crops = {}
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy : dy + 32, dx : dx + 32]
            crops[(dy, dx, False)] = crop
            crops[(dy, dx, True)] = crop.flip(-1)
    return crops


def test_augment_batch_crops_and_flips_each_image():
    x = torch.arange(1, 1 + 64 * 3 * 32 * 32, dtype=torch.float32).reshape(64, 3, 32, 32)
    out = data.augment_batch(x, torch.Generator().manual_seed(3))
    assert out.shape == x.shape
    chosen = []
    for image, augmented in zip(x, out, strict=True):
        matches = [key for key, crop in crop_candidates(image).items()
                   if torch.equal(crop, augmented)]
        assert len(matches) == 1
        chosen.append(matches[0])
    assert {flipped for _, _, flipped in chosen} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in chosen}) > 20


def test_augment_batch_is_deterministic_given_the_generator():
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = data.augment_batch(x, torch.Generator().manual_seed(11))
    assert torch.equal(first, data.augment_batch(x, torch.Generator().manual_seed(11)))
    assert not torch.equal(first, data.augment_batch(x, torch.Generator().manual_seed(12)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_batch_on_cuda_matches_cpu():
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    on_cpu = data.augment_batch(x, torch.Generator().manual_seed(5))
    on_cuda = data.augment_batch(x.cuda(), torch.Generator().manual_seed(5))
    assert torch.equal(on_cuda.cpu(), on_cpu)
