"""The data layer on IDX files the tests write: layouts, parsing, broken files, normalizations."""

import gzip
import shutil

import pytest
import torch
from conftest import FILES, idx_bytes, synthetic_split, write_idx_dataset

from fmtui.data import DataError, batch_indices, load_dataset, norm_stats, normalize, parse_idx, pixel_stats, to_device

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
def test_swapped_official_dataset_is_caught(tmp_path, real_data):
    """MNIST's official files given as Fashion-MNIST are recognised by their md5."""
    for name in FILES:
        shutil.copy(real_data / "mnist" / name, tmp_path / name)
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
