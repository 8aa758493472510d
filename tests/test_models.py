import numpy as np
import pytest
import torch

from dataset import ShardDataset, evaluation_loader, split_shards
from models import Emulator, build_model, count_macs, count_parameters, example_inputs
from tests.test_dataset import tiny_shard_dir
from training import evaluate
from utils.config import Config
from utils.features import fit_normalisation


def test_cnn_seed_matches_the_predecessor():
    model, settings = build_model("cnn_seed")
    assert count_parameters(model) == 715_169
    # 1.50M in the convolutions, 0.66M in the fully connected head.
    assert count_macs(model) == 2_160_896
    model.eval()
    albedo = model(*example_inputs(7))
    assert albedo.shape == (7,) and torch.all((albedo > 0) & (albedo < 1))


def test_build_model_rejects_unknown_names_and_settings():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")
    with pytest.raises(ValueError, match="unknown settings \\['width'\\]"):
        build_model("cnn_seed", {"width": 3})
    model, settings = build_model("cnn_seed", {"hidden": [16], "channels": [8]})
    assert settings.hidden == [16] and count_parameters(model) < 20_000


def as_profiles(dataset: ShardDataset):
    """The dataset's rows as the labeller takes them: (N, 50) layer arrays with NaN where absent."""
    layers, mask, scalars, target = dataset.rows(np.arange(len(dataset)))
    fields = [np.where(mask, layers[:, i].astype(np.float64), np.nan) for i in range(5)]
    return fields, scalars.astype(np.float64), target


@pytest.fixture(scope="module")
def emulator_file(tmp_path_factory):
    splits = split_shards(tiny_shard_dir(tmp_path_factory), [], [], [])
    train_set = ShardDataset(splits["train"])
    torch.manual_seed(0)
    model, settings = build_model("cnn_seed", {"channels": [8, 8], "hidden": [32, 16]})
    fit_normalisation(model, train_set.model_inputs())
    # Untrained, the output barely moves: sharpen it so any difference of inputs shows.
    with torch.no_grad():
        model.head[-1].weight.mul_(100)
    path = tmp_path_factory.mktemp("emulator") / "emulator.pt"
    Emulator("cnn_seed", vars(settings), model, train_set.input_domain(), vars(Config(model="cnn_seed")),
             {"epoch": 0}).save(path)
    return path, splits


def test_predict_agrees_with_the_dataset_path(emulator_file):
    path, splits = emulator_file
    emulator = Emulator.load(path)
    dataset = ShardDataset(splits["test"])
    through_dataset, _ = evaluate(emulator.model, evaluation_loader(dataset, 97), torch.device("cpu"))
    (dz, ssa, density, soot, dust), scalars, _ = as_profiles(dataset)
    direct_sw, diffuse_sw, cos_sza = scalars[:, 1], scalars[:, 2], scalars[:, 3]
    albedo = emulator.predict(dz, ssa, density, soot, dust, cos_sza, direct_sw, diffuse_sw, batch_size=50)
    assert albedo.shape == (len(dataset),) and albedo.dtype == np.float64
    assert albedo.std() > 0.05
    np.testing.assert_allclose(albedo, through_dataset, atol=2e-6)
    # Fewer layer columns than 50 (the deepest profile's count) give the same answer.
    depth = int(np.max(np.sum(~np.isnan(dz), axis=1)))
    short = [a[:, :depth] for a in (dz, ssa, density, soot, dust)]
    np.testing.assert_allclose(emulator.predict(*short, cos_sza, direct_sw, diffuse_sw), albedo, atol=2e-6)


def test_loaded_file_carries_everything(emulator_file):
    path, _ = emulator_file
    emulator = Emulator.load(path)
    assert emulator.model_name == "cnn_seed" and emulator.settings["channels"] == [8, 8]
    assert emulator.config["model"] == "cnn_seed" and emulator.info == {"epoch": 0}
    assert set(emulator.domain) >= {"dz", "ssa", "density", "soot", "dust", "cos_sza", "direct_fraction"}
    # the normalisation travels inside the weights
    assert emulator.model.layer_norm.std.min() > 0 and emulator.model.layer_norm.mean.abs().sum() > 0
    with pytest.raises(ValueError, match="not an emulator file"):
        torch.save({"weights": 1}, path.with_name("other.pt"))
        Emulator.load(path.with_name("other.pt"))


@pytest.mark.parametrize("change, message", [
    (lambda a: a["ssa"].__setitem__((1, 0), np.nan), "ssa: row 1: NaN inside a present layer"),
    (lambda a: a["dz"].__setitem__((0, 1), -0.01), "dz: row 0: negative value"),
    (lambda a: a["density"].__setitem__((2, 0), 0.0), "density: row 2: zero inside a present layer"),
    (lambda a: a["cos_sza"].__setitem__(0, 0.0), "cos_sza: row 0: 0.0 is outside"),
    (lambda a: a["direct_sw"].__setitem__(1, np.inf), "direct_sw: row 1"),
    (lambda a: a.update(diffuse_sw=np.zeros(3), direct_sw=np.zeros(3)), "no incident shortwave"),
    (lambda a: a.update(soot=a["soot"][:, :2]), "soot: shape"),
    (lambda a: a.update(dz=np.full((3, 51), 0.1)), "1 <= L <= 50"),
])
def test_predict_rejects_invalid_input(emulator_file, change, message):
    emulator = Emulator.load(emulator_file[0])
    inputs = {"dz": np.full((3, 4), 0.05), "ssa": np.full((3, 4), 20.0), "density": np.full((3, 4), 300.0),
              "soot": np.zeros((3, 4)), "dust": np.zeros((3, 4)), "cos_sza": np.full(3, 0.5),
              "direct_sw": np.full(3, 300.0), "diffuse_sw": np.full(3, 100.0)}
    assert emulator.predict(**inputs).shape == (3,)
    change(inputs)
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        emulator.predict(**inputs)


def test_predict_warns_once_outside_the_training_domain(emulator_file):
    emulator = Emulator.load(emulator_file[0])
    inputs = {"dz": np.full((3, 4), 0.05), "ssa": np.full((3, 4), 20.0), "density": np.full((3, 4), 300.0),
              "soot": np.zeros((3, 4)), "dust": np.zeros((3, 4)), "cos_sza": np.full(3, 0.5),
              "direct_sw": np.full(3, 300.0), "diffuse_sw": np.full(3, 100.0)}
    inputs["dust"][:2, 0] = 5e-3  # the tiny training data has dust <= 1e-4
    inputs["ssa"][1, 2] = 140.0  # and SSA <= 80
    with pytest.warns(UserWarning, match="2 of 3 profiles lie outside the input domain .*(ssa, dust|dust, ssa)") as caught:
        emulator.predict(**inputs)
    assert len(caught) == 1
