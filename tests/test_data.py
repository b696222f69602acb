"""The data layer on IDX files the tests write: layouts, parsing, broken files, normalizations."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from conftest import FILES, idx_bytes, synthetic_split, write_idx_dataset

from fmtui.data import DataError, batch_indices, load_dataset, norm_stats, normalize, parse_idx, pixel_stats, to_device
from fmtui.datafiles import locate

pytestmark = pytest.mark.engine


def test_flat_layout_loads_as_uint8_nchw(tiny_data):
    ds = load_dataset("fashion-mnist", tiny_data)
    assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape == (600, 1, 28, 28)
    assert ds.x_test.shape == (200, 1, 28, 28) and ds.y_test.dtype == torch.int64
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    assert ds.verified is False  # synthetic files do not match the published md5s
    xtr, ytr = synthetic_split(600, 0)
    assert torch.equal(ds.x_train[:, 0], torch.from_numpy(xtr)) and torch.equal(
        ds.y_train, torch.from_numpy(ytr).long()
    )


@pytest.mark.parametrize("sub", ["fashion-mnist", "FashionMNIST/raw"])
def test_dataset_subfolder_and_torchvision_layouts(tmp_path, sub):
    write_idx_dataset(tmp_path / sub)
    assert load_dataset("fashion-mnist", tmp_path).x_train.shape[0] == 600


def test_extracted_files_work_too(tmp_path):
    folder = write_idx_dataset(tmp_path / "gz")
    raw = tmp_path / "raw" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        (raw / name.removesuffix(".gz")).write_bytes(gzip.decompress((folder / name).read_bytes()))
    assert load_dataset("fashion-mnist", tmp_path / "raw").x_test.shape[0] == 200


def test_missing_files_name_them_and_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", tmp_path)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "fashion-mnist") in msg and "\n" not in msg


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    """The real torchvision download path, pointed at a closed local port: fails fast, one line."""
    import torchvision.datasets as tvd

    monkeypatch.delenv("FMTUI_NO_DOWNLOAD")
    monkeypatch.setattr(tvd.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="download failed"):
        load_dataset("fashion-mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written into the data folder


def fake_download_url(source: Path, fail_at: str | None = None):
    """A stand-in for torchvision's download_url: copies the file from `source`, or fails at one file
    after writing half of it (as a dropped connection would)."""

    def download_url(url, root, filename=None, md5=None):
        name = filename or url.rsplit("/", 1)[-1]
        if name == fail_at:
            (Path(root) / name).write_bytes(b"partial")
            raise ConnectionResetError("connection reset by peer")
        shutil.copy(source / name, Path(root) / name)

    return download_url


@pytest.mark.parametrize("dataset", ["fashion-mnist", "kmnist"])
def test_a_failed_download_leaves_the_data_folder_as_it_was(tmp_path, monkeypatch, tiny_data, dataset):
    import torchvision.datasets.utils as tvu

    monkeypatch.delenv("FMTUI_NO_DOWNLOAD")
    data = tmp_path / "shared-data"
    data.mkdir()
    (data / "README").write_text("read-mostly")
    monkeypatch.setattr(tvu, "download_url", fake_download_url(tiny_data, fail_at="t10k-images-idx3-ubyte.gz"))
    with pytest.raises(DataError, match="download failed .*connection reset"):
        load_dataset(dataset, data)
    assert [p.name for p in data.iterdir()] == ["README"]  # no empty kmnist/ or half-written file left behind
    monkeypatch.setattr(tvu, "download_url", fake_download_url(tiny_data))  # the network is back
    assert len(load_dataset(dataset, data).y_train) == 600
    assert sorted(p.name for p in (data / dataset).iterdir()) == sorted(FILES)


def test_a_download_that_cannot_be_moved_into_place_leaves_nothing(tmp_path, monkeypatch, tiny_data):
    import torchvision.datasets.utils as tvu

    monkeypatch.delenv("FMTUI_NO_DOWNLOAD")
    monkeypatch.setattr(tvu, "download_url", fake_download_url(tiny_data))
    moves = []

    def move(src, dst):  # the second file hits a full disk
        if moves:
            raise OSError(28, "No space left on device")
        moves.append(shutil.copy(src, dst))

    monkeypatch.setattr(shutil, "move", move)
    with pytest.raises(DataError, match="cannot write into .*No space left"):
        load_dataset("mnist", tmp_path / "data")
    assert not (tmp_path / "data").exists()  # not even the data folder, which the download would have made


def test_a_failed_cifar_download_leaves_the_data_folder_as_it_was(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    def broken(url, download_root, **kwargs):
        (Path(download_root) / "cifar-10-python.tar.gz").write_bytes(b"half an archive")
        raise OSError("the archive is truncated")

    monkeypatch.delenv("FMTUI_NO_DOWNLOAD")
    monkeypatch.setattr(cifar, "download_and_extract_archive", broken)
    with pytest.raises(DataError, match="download failed .*truncated"):
        load_dataset("cifar10", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_truncated_gzip_is_reported(tiny_data):
    path = tiny_data / FILES[0]
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("fashion-mnist", tiny_data)


def test_corrupted_gzip_is_reported(tiny_data):
    path = tiny_data / FILES[2]
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupted|truncated"):
        load_dataset("fashion-mnist", tiny_data)


def test_idx_with_short_payload_is_reported():
    raw = idx_bytes(synthetic_split(10, 0)[0])
    with pytest.raises(DataError, match="truncated"):
        parse_idx(raw[:-5], "x")
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x03\x04", "x")


def test_label_image_count_mismatch(tiny_data):
    with gzip.open(tiny_data / FILES[1], "wb") as f:
        f.write(idx_bytes(synthetic_split(599, 0)[1]))
    with pytest.raises(DataError, match="600 images but 599 labels"):
        load_dataset("fashion-mnist", tiny_data)


@pytest.mark.real_data
def test_swapped_official_dataset_is_caught(tmp_path, real_files):
    """MNIST's official files given as Fashion-MNIST are recognised by their md5."""
    mnist = locate("mnist", real_files("mnist")).found
    for name in FILES:
        shutil.copy(mnist / name, tmp_path / name)
    with pytest.raises(DataError, match="is a MNIST file, not Fashion-MNIST"):
        load_dataset("fashion-mnist", tmp_path)


def test_normalizations_map_pixels_as_named():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1)
    cases = {"none": [0, 51, 255], "unit": [0, 0.2, 1], "symmetric": [-1, -0.6, 1]}
    for norm, expected in cases.items():
        out = normalize(x, norm_stats(norm, x))
        assert out.dtype == torch.float32
        assert torch.allclose(out.flatten(), torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_zscore_uses_training_statistics_and_per_image_each_image(tiny_data):
    ds = load_dataset("fashion-mnist", tiny_data)
    stats = norm_stats("zscore", ds.x_train)
    mean, std, _, _ = pixel_stats(ds.x_train, stats)
    assert abs(mean) < 1e-4 and abs(std - 1) < 1e-4
    assert abs(stats.shift[0] - ds.x_train.double().mean().item()) < 1e-6
    per = normalize(ds.x_test[:5], norm_stats("per-image", ds.x_train)).flatten(1)
    assert torch.allclose(per.mean(1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(per.std(1, unbiased=False), torch.ones(5), atol=1e-4)


def test_validation_split_is_fixed_by_the_seed_and_disjoint(tiny_data):
    ds = load_dataset("fashion-mnist", tiny_data)
    a = to_device(ds, torch.device("cpu"), 0.2, seed=1)
    b = to_device(ds, torch.device("cpu"), 0.2, seed=1)
    assert len(a.y_val) == 120 and len(a.y_train) == 480
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_val, to_device(ds, torch.device("cpu"), 0.2, seed=2).x_val)


def test_batches_cover_every_sample_once():
    gen = torch.Generator().manual_seed(0)
    batches = list(batch_indices(130, 64, gen, torch.device("cpu")))
    assert [len(b) for b in batches] == [64, 64, 2]
    assert torch.equal(torch.cat(batches).sort().values, torch.arange(130))


def test_data_dir_beats_environment_beats_user_cache(tiny_data, tmp_path, monkeypatch):
    from fmtui.data import default_data_dir

    monkeypatch.delenv("FMTUI_DATA_DIR", raising=False)
    assert default_data_dir() == tmp_path / "cache" / "fmtui" / "data"  # XDG_CACHE_HOME from the fixture
    write_idx_dataset(tmp_path / "cache" / "fmtui" / "data" / "fashion-mnist", n_train=50)
    assert len(load_dataset("fashion-mnist").y_train) == 50  # the user cache
    monkeypatch.setenv("FMTUI_DATA_DIR", str(tiny_data))
    assert len(load_dataset("fashion-mnist").y_train) == 600  # the environment wins over the cache
    write_idx_dataset(tmp_path / "explicit", n_train=70)
    assert len(load_dataset("fashion-mnist", tmp_path / "explicit").y_train) == 70  # the argument wins


@pytest.mark.parametrize(
    "name,files",
    [
        ("mnist", "train-images-idx3-ubyte.gz"),
        ("kmnist", "train-images-idx3-ubyte.gz"),
        ("cifar10", "cifar-10-batches-py"),
    ],
)
def test_every_dataset_explains_missing_files(tmp_path, name, files):
    with pytest.raises(DataError) as info:
        load_dataset(name, tmp_path)
    assert files in str(info.value) and "\n" not in str(info.value)


def test_kmnist_and_mnist_load_from_their_own_subfolders(tmp_path):
    write_idx_dataset(tmp_path / "kmnist", n_train=40)
    write_idx_dataset(tmp_path / "mnist", n_train=30)
    kmnist, mnist = load_dataset("kmnist", tmp_path), load_dataset("mnist", tmp_path)
    assert len(kmnist.y_train) == 40 and kmnist.title == "KMNIST" and len(kmnist.classes) == 10
    assert len(mnist.y_train) == 30 and mnist.classes[0].startswith("0")


def test_datafiles_finds_what_load_dataset_loads_without_torch(tmp_path, monkeypatch):
    import subprocess
    import sys

    from fmtui import datafiles
    from fmtui.data import SPECS, _tv_class

    for spec in SPECS.values():  # the registry's files and class names are torchvision's (they must not drift)
        tv = _tv_class(spec)
        files = (tv.base_folder,) if spec.name == "cifar10" else tuple(n for n, _ in tv.resources)
        assert spec.files == files and spec.classes == tuple(getattr(tv, "classes", spec.classes))
        assert len(spec.classes) == 10 and spec.shape == ((3, 32, 32) if spec.name == "cifar10" else (1, 28, 28))
    missing = datafiles.locate("kmnist", tmp_path)
    assert missing.found is None and missing.target == tmp_path / "kmnist"
    assert missing.summary().endswith("downloads are off") and "unset FMTUI_NO_DOWNLOAD" in missing.help()
    assert all(len(line) < 120 or str(tmp_path) in line for line in missing.help().splitlines())
    write_idx_dataset(tmp_path / "KMNIST" / "raw", n_train=20)
    assert datafiles.locate("kmnist", tmp_path).found == tmp_path / "KMNIST" / "raw"
    assert len(load_dataset("kmnist", tmp_path).y_train) == 20
    monkeypatch.setenv("FMTUI_DATA_DIR", str(tmp_path))
    assert datafiles.locate("kmnist").from_env and "in " + str(tmp_path) in datafiles.locate("kmnist").summary()
    code = "import sys, fmtui.datafiles as d; d.locate('mnist'); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
