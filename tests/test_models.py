import numpy as np
import pytest
import torch

from dataset import ShardDataset, evaluation_loader, split_shards
from models import Emulator, build_model, count_macs, count_parameters, example_inputs
from tests.conftest import TINY_BUDGET, TINY_CNN, extreme_inputs, make_emulator
from training import evaluate
from utils.crocus_rules import cleanup_rows, dumont_diffuse_fraction
from utils.domain import model_inputs, outside_domain
from utils.profiles import validate_inputs
from utils.schema import COS_ILLUM, COS_ZENITH, DIFFUSE_SW, DIRECT_SW, SOIL_ALBEDO


def test_cnn_seed_matches_the_predecessor():
    model, settings = build_model("cnn_seed")
    # the predecessor's 715,169 parameters and 2,160,896 MACs, and the soil albedo's 512 of each in the head
    assert count_parameters(model) == 715_681
    # 1.50M in the convolutions, 0.66M in the fully connected head.
    assert count_macs(model) == 2_161_408
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
    for bad, message in (({"n_shallow": 8}, "n_shallow must be in \\[0, 7\\]"),
                         ({"shallow_layers": 0}, "shallow_layers must be in \\[1, 50\\]"),
                         ({"n_described": 3, "shallow_layers": 2}, "n_described \\(3\\) must not exceed"),
                         ({"n_depths": -1}, "n_depths must be in \\[0, 50\\]"),
                         ({"n_depths": 3, "n_described": 1, "shallow_layers": 2}, "n_depths \\(3\\) must not exceed"),
                         ({"truncation": 2}, "setting truncation must be true or false, not 2")):
        with pytest.raises(ValueError, match=message):
            build_model("optical_budget", bad)


def as_profiles(dataset: ShardDataset):
    """The dataset's rows as the labeller takes them: (N, 50) layer arrays with NaN where absent,
    (cos_illum, direct_sw, diffuse_sw), and the keywords soil_albedo and cos_zenith."""
    rows = dataset.rows(np.arange(len(dataset)))
    fields = [np.where(rows["mask"], rows["layers"][:, i].astype(np.float64), np.nan) for i in range(5)]
    scalars = rows["scalars"].astype(np.float64)
    return (fields, [scalars[:, k] for k in (COS_ILLUM, DIRECT_SW, DIFFUSE_SW)],
            {"soil_albedo": scalars[:, SOIL_ALBEDO], "cos_zenith": scalars[:, COS_ZENITH]})


def save_untrained(name, settings, splits, path):
    """An untrained emulator normalised on the training shards (their domain: dust <= 1e-4, SSA
    <= 80, soil albedo 0.1-0.35), sharpened enough that any difference of inputs shows in its albedo."""
    rows = ShardDataset(splits["train"]).rows(np.arange(len(ShardDataset(splits["train"]))))
    make_emulator(settings, path, name=name, sharpen=100.0, inputs=(rows["layers"], rows["scalars"][:, :5].copy()))
    return path


@pytest.fixture(scope="module", params=["cnn_seed", "optical_budget"])
def emulator_file(request, shard_dir, tmp_path_factory):
    splits = split_shards(shard_dir, [], [], [])
    settings = TINY_CNN if request.param == "cnn_seed" else TINY_BUDGET
    path = tmp_path_factory.mktemp("emulator") / "emulator.pt"
    return save_untrained(request.param, settings, splits, path), splits


def test_predict_agrees_with_the_dataset_path(emulator_file):
    path, splits = emulator_file
    emulator = Emulator.load(path)
    dataset = ShardDataset(splits["test"])
    through_dataset, _ = evaluate(emulator.model, evaluation_loader(dataset, 97), torch.device("cpu"))
    layers, illumination, per_row = as_profiles(dataset)
    albedo = emulator.predict(*layers, *illumination, **per_row, batch_size=50)
    assert albedo.shape == (len(dataset),) and albedo.dtype == np.float64
    assert albedo.std() > 0.05
    # each row's soil albedo matters (the shards' are 0.1 to 0.35), as the labels it would learn
    assert np.abs(emulator.predict(*layers, *illumination, cos_zenith=per_row["cos_zenith"]) - albedo).max() > 1e-3
    # On a CPU, Emulator computes the physics by its compiled kernel (utils/two_stream.py), the dataset
    # path by the torch form: equal to float32 rounding, which this untrained network, sharpened,
    # amplifies to a few 1e-6 (the shipped model: 2e-7)
    tolerance = 5e-6
    np.testing.assert_allclose(albedo, through_dataset["albedo"], atol=tolerance)
    # Fewer layer columns than 50 (the deepest profile's count) give the same answer.
    depth = int(np.max(np.sum(~np.isnan(layers[0]), axis=1)))
    short = [a[:, :depth] for a in layers]
    np.testing.assert_allclose(emulator.predict(*short, *illumination, **per_row), albedo, atol=2e-6)
    if not emulator.model.BUDGET:
        with pytest.raises(ValueError, match="gives the albedo only"):
            emulator.energy_budget(*layers, *illumination)
        return
    budget = emulator.energy_budget(*short, *illumination, **per_row, batch_size=50)
    np.testing.assert_allclose(budget.albedo, albedo, atol=1e-12)
    assert budget.absorbed.shape == (len(dataset), depth)
    np.testing.assert_array_equal(np.isnan(budget.absorbed), np.isnan(short[0]))
    np.testing.assert_allclose(budget.absorbed, np.where(np.isnan(short[0]), np.nan,
                                                         through_dataset["absorbed"][:, :depth]), atol=tolerance)
    np.testing.assert_allclose(budget.soil, through_dataset["soil"], atol=tolerance)


def test_energy_is_conserved_for_any_input(shard_dir, tmp_path):
    path = save_untrained("optical_budget", {}, split_shards(shard_dir, [], [], []), tmp_path / "budget.pt")
    emulator = Emulator.load(path)
    inputs = extreme_inputs(3000, seed=11)
    with pytest.warns(UserWarning, match="outside the input domain"):
        budget = emulator.energy_budget(**inputs)
    total = budget.albedo + np.nansum(budget.absorbed, axis=1) + budget.soil
    np.testing.assert_allclose(total, 1, atol=1e-6)  # float32 rounding
    np.testing.assert_array_equal(np.isnan(budget.absorbed), np.isnan(inputs["dz"]))
    # the model's rows (the others, of SURFEX's clean-up regime, are the labeller's: Crocus's albedo of
    # pitch-black snow under diffuse light is 1 - 1.0112, its band weights' sum)
    model_rows = ~cleanup_rows(*(inputs[name] for name in ("ssa", "density", "soot", "dust")))
    assert model_rows.sum() >= 200
    albedo, absorbed, soil = budget.albedo[model_rows], budget.absorbed[model_rows], budget.soil[model_rows]
    assert np.all(np.isfinite(albedo)) and np.all((albedo >= 0) & (albedo <= 1))
    assert np.nanmin(absorbed) >= 0 and soil.min() >= 0
    # the network on every row, as the exported files give it
    with torch.no_grad():
        albedo, absorbed, soil = (t.double().numpy() for t in emulator.model(*map(torch.from_numpy,
                                                                                 model_inputs(inputs))))
    # float32 sums of 50 layers and the soil, on profiles far beyond any training data
    np.testing.assert_allclose(albedo + absorbed.sum(axis=1) + soil, 1, atol=1e-5)
    assert np.all((albedo >= 0) & (albedo <= 1)) and absorbed.min() >= 0 and soil.min() >= 0


@pytest.mark.parametrize("name", ["optical_budget", "cnn_seed"])
def test_models_apply_crocus_rules(name):
    """The rules are a map of the inputs: an ice layer or an SSA of 150 is seen as Crocus gives it,
    a sun behind the slope as all diffuse light, a forcing without diffuse light (cos_zenith
    known) as Dumont's split of it; cos_zenith does nothing else."""
    model, _ = build_model(name, TINY_BUDGET if name == "optical_budget" else TINY_CNN)
    model.eval()
    layers, scalars = example_inputs(3)
    layers[1, 2, 0] = 880.0  # ice at the surface
    layers[2, 1, :3] = 150.0  # SSA above 100
    same = layers.clone()
    same[1, 1, 0], same[1, 3, 0], same[1, 4, 0] = 0.05, 100e-9, 0.0
    same[2, 1, :3] = 70.0
    behind, diffuse = scalars.clone(), scalars.clone()
    behind[:, COS_ILLUM] = -0.2
    diffuse[:, COS_ILLUM], diffuse[:, DIRECT_SW], diffuse[:, DIFFUSE_SW] = 0.6018150231520484, 0.0, 400.0
    no_diffuse, split, unknown = scalars.clone(), scalars.clone(), scalars.clone()
    no_diffuse[:, DIRECT_SW], no_diffuse[:, DIFFUSE_SW] = 400.0, 0.0
    no_diffuse[:, COS_ZENITH] = torch.tensor([0.1, 0.4, 0.9])
    fraction = torch.tensor(dumont_diffuse_fraction(no_diffuse[:, COS_ZENITH].numpy()), dtype=torch.float32)
    split[:, DIRECT_SW], split[:, DIFFUSE_SW], split[:, COS_ZENITH] = 400.0 * (1 - fraction), 400.0 * fraction, np.nan
    unknown[:, COS_ZENITH] = np.nan
    as_tuple = (lambda out: out) if model.BUDGET else (lambda out: (out,))
    with torch.no_grad():
        for a, b in zip(as_tuple(model(layers, scalars)), as_tuple(model(same, scalars))):
            torch.testing.assert_close(a, b)
        for a, b in zip(as_tuple(model(layers, behind)), as_tuple(model(layers, diffuse))):
            torch.testing.assert_close(a, b)
        for a, b in zip(as_tuple(model(layers, no_diffuse)), as_tuple(model(layers, split))):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(as_tuple(model(layers, scalars)), as_tuple(model(layers, unknown))):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_budget_model_counts():
    model, _ = build_model("optical_budget")
    assert model.BUDGET and count_parameters(model) < 30_000
    # every matrix product counted, the last layer's (called as a product, not as its module) included
    network = 66 * 128 + 128 * 128 + 128 * 2 * (1 + 7 + 4)
    assert count_macs(model) == model.feature_macs + network < 45_000
    # the near infrared on the top 16 layers: 3 x 50 + 4 x 16 layer-wavelengths instead of 7 x 50
    full, _ = build_model("optical_budget", {"n_shallow": 0})
    assert model.optics.operations * 350 == full.optics.operations * 214


def test_loaded_file_carries_everything(emulator_file):
    path, _ = emulator_file
    emulator = Emulator.load(path)
    assert emulator.settings == vars(build_model(emulator.model_name, emulator.settings)[1])
    assert emulator.config["model"] == emulator.model_name and emulator.info == {"epoch": 0}
    assert set(emulator.domain) >= {"dz", "ssa", "density", "soot", "dust", "cos_illum", "direct_fraction",
                                    "soil_albedo"}
    # the normalisation travels inside the weights
    norm = emulator.model.layer_norm if emulator.model_name == "cnn_seed" else emulator.model.norm
    assert norm.std.min() > 0 and norm.mean.abs().sum() > 0
    with pytest.raises(ValueError, match="not an emulator file"):
        torch.save({"weights": 1}, path.with_name("other.pt"))
        Emulator.load(path.with_name("other.pt"))
    path.with_name("text.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="text.pt: not an emulator file"):
        Emulator.load(path.with_name("text.pt"))
    # a model of an older format (other inputs) is refused, in one line that says so
    saved = torch.load(path, weights_only=True)
    torch.save({**saved, "format": "tartes-emulator/5"}, path.with_name("old.pt"))
    with pytest.raises(ValueError, match="old.pt: not an emulator file of format .* but of tartes-emulator/5") as refused:
        Emulator.load(path.with_name("old.pt"))
    assert "\n" not in str(refused.value) and "retrain" in str(refused.value)


@pytest.mark.parametrize("change, message", [
    (lambda a: a["ssa"].__setitem__((1, 0), np.nan), "ssa: row 1, layer 1: NaN inside a present layer"),
    (lambda a: a["dz"].__setitem__((0, 1), -0.01), "dz: row 0, layer 2: negative value"),
    (lambda a: a["density"].__setitem__((2, 0), 0.0), "density: row 2, layer 1: zero inside a present layer"),
    (lambda a: a["density"].__setitem__((2, 0), 1200.0), "density: row 2, layer 1: above 917"),
    (lambda a: a["cos_illum"].__setitem__(0, 1.5), "cos_illum: row 0: 1.5 is outside"),
    (lambda a: a["direct_sw"].__setitem__(1, np.inf), "direct_sw: row 1"),
    (lambda a: a.update(diffuse_sw=np.full(3, -1.0), direct_sw=np.zeros(3)), "diffuse_sw: row 0: -1.0 is not"),
    (lambda a: a.update(ssa=np.full((3, 4), "fine")), "ssa: expected numbers, got ndarray"),
    (lambda a: a.update(cos_illum=["0.5", "high", "0.5"]), "cos_illum: expected numbers, got list .*'high'"),
    (lambda a: a.update(dust=[[0.0] * 4, [0.0] * 3, [0.0] * 4]), "dust: expected numbers, got list"),
    (lambda a: a.update(soot=a["soot"][:, :2]), "soot: shape"),
    (lambda a: a.update(dz=np.full((3, 51), 0.1)), "1 <= L <= 50"),
    (lambda a: a.update(soil_albedo=np.array([0.2, 1.2, 0.2])), "soil_albedo: row 1: 1.2 is not a finite value"),
    (lambda a: a.update(soil_albedo=-0.1), "soil_albedo: -0.1 is not a finite value"),
    (lambda a: a.update(soil_albedo=np.full(2, 0.2)), "soil_albedo: expected a number or shape"),
    (lambda a: a.update(cos_zenith=np.array([0.5, np.nan, 1.5])), "cos_zenith: row 2: 1.5 is outside"),
    (lambda a: a.update(cos_zenith="high"), "cos_zenith: expected numbers, got str"),
])
def test_predict_rejects_invalid_input(emulator_file, change, message):
    emulator = Emulator.load(emulator_file[0])
    inputs = {"dz": np.full((3, 4), 0.05), "ssa": np.full((3, 4), 20.0), "density": np.full((3, 4), 300.0),
              "soot": np.zeros((3, 4)), "dust": np.zeros((3, 4)), "cos_illum": np.full(3, 0.5),
              "direct_sw": np.full(3, 300.0), "diffuse_sw": np.full(3, 100.0)}
    assert emulator.predict(**inputs).shape == (3,)
    change(inputs)
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        emulator.predict(**inputs)


def test_predict_warns_once_outside_the_training_domain(emulator_file):
    emulator = Emulator.load(emulator_file[0])
    inputs = {"dz": np.full((3, 4), 0.05), "ssa": np.full((3, 4), 20.0), "density": np.full((3, 4), 300.0),
              "soot": np.zeros((3, 4)), "dust": np.zeros((3, 4)), "cos_illum": np.full(3, 0.5),
              "direct_sw": np.full(3, 300.0), "diffuse_sw": np.full(3, 100.0)}
    inputs["dust"][:2, 0] = 5e-3  # the tiny training data has dust <= 1e-4
    inputs["ssa"][1, 2] = 140.0  # and SSA <= 80
    with pytest.warns(UserWarning, match="2 of 3 profiles lie outside the input domain .*(ssa, dust|dust, ssa)") as caught:
        emulator.predict(**inputs)
    assert len(caught) == 1
    np.testing.assert_array_equal(emulator.outside_domain(**inputs), [True, True, False])
    # below the lowest value of a profile variable too (a thinner pack than any in training)
    low = emulator.domain["snow_depth"][0]
    inputs["dz"][2, :] = [low / 8, np.nan, np.nan, np.nan]
    for name in ("ssa", "density", "soot", "dust"):
        inputs[name][2, 1:] = np.nan
    np.testing.assert_array_equal(emulator.outside_domain(**inputs), [True, True, True])
    layers, scalars = model_inputs(inputs)
    outside, variables = outside_domain(emulator.domain, layers, layers[:, 0] > 0, scalars)
    assert outside[2] and "snow_depth" in variables
    # the batch's ranges from the input checks give the same answer without their pass
    ranges = validate_inputs(**inputs)[3]
    shortcut = outside_domain(emulator.domain, layers, layers[:, 0] > 0, scalars, ranges)
    np.testing.assert_array_equal(shortcut[0], outside)
    assert shortcut[1] == variables
    # a soil albedo the training data did not span (0.1 to 0.35)
    inputs["dz"][2, 0] = 0.05
    np.testing.assert_array_equal(emulator.outside_domain(**inputs, soil_albedo=[0.2, 0.2, 0.6]), [True, True, True])
    np.testing.assert_array_equal(emulator.outside_domain(**inputs, soil_albedo=[0.2, 0.2, 0.3]), [True, True, False])
    with pytest.warns(UserWarning, match="1 of 1 profiles lie outside the input domain .*\\(soil_albedo\\)"):
        emulator.predict(**{k: v[2:] for k, v in inputs.items()}, soil_albedo=0.05)


def test_snow_free_rows_give_nan_and_wide_nan_columns_are_accepted(emulator_file):
    emulator = Emulator.load(emulator_file[0])
    inputs = {"dz": np.full((3, 60), np.nan), "ssa": np.full((3, 60), np.nan), "density": np.full((3, 60), np.nan),
              "soot": np.full((3, 60), np.nan), "dust": np.full((3, 60), np.nan), "cos_illum": np.array([0.5, 0.0, 0.7]),
              "direct_sw": np.array([300.0, 0.0, 50.0]), "diffuse_sw": np.array([100.0, 0.0, 20.0])}
    for name, value in (("dz", 0.05), ("ssa", 20.0), ("density", 300.0), ("soot", 0.0), ("dust", 0.0)):
        inputs[name][[0, 2], :4] = value  # row 1: no snow (and night)
    albedo = emulator.predict(**inputs)
    assert np.isnan(albedo[1]) and np.isfinite(albedo[[0, 2]]).all()
    np.testing.assert_allclose(albedo[[0, 2]], emulator.predict(**{k: v[[0, 2]] for k, v in inputs.items()}))
    if emulator.model.BUDGET:
        budget = emulator.energy_budget(**inputs)
        assert budget.absorbed.shape == (3, 50) and np.isnan(budget.absorbed[1]).all() and np.isnan(budget.soil[1])
    inputs["dz"][0, 55] = 0.01  # a layer beyond 50 is not padding
    with pytest.raises(ValueError, match="1 <= L <= 50"):
        emulator.predict(**inputs)


def night_inputs():
    """Rows: lit; dark (no shortwave); dark (a trace of 1e-9 W m-2); snow-free and dark; snow-free
    and lit. Two layers of snow in the rows with snow, NaN below."""
    inputs = {"dz": np.full((5, 4), np.nan), "ssa": np.full((5, 4), np.nan), "density": np.full((5, 4), np.nan),
              "soot": np.full((5, 4), np.nan), "dust": np.full((5, 4), np.nan), "cos_illum": np.full(5, 0.5),
              "direct_sw": np.array([300.0, 0.0, 1e-9, 0.0, 300.0]),
              "diffuse_sw": np.array([100.0, 0.0, 0.0, 0.0, 100.0])}
    for name, value in (("dz", 0.05), ("ssa", 20.0), ("density", 300.0), ("soot", 0.0), ("dust", 0.0)):
        inputs[name][:3, :2] = value
    return inputs


def test_dark_rows_give_albedo_1_and_nothing_absorbed(emulator_file):
    """docs/labels.md, "Night and no light": a dark row with snow has albedo 1, absorbs 0 in its
    layers (NaN below them) and sends 0 to the soil; a row without snow is NaN; the lit rows of the
    batch are computed as alone; dark rows are never outside the domain."""
    emulator = Emulator.load(emulator_file[0])
    inputs = night_inputs()
    albedo = emulator.predict(**inputs)
    np.testing.assert_array_equal(albedo[1:4], [1.0, 1.0, np.nan])
    assert np.isnan(albedo[4])
    assert albedo[0] == emulator.predict(**{k: v[:1] for k, v in inputs.items()})[0] and 0 < albedo[0] < 1
    np.testing.assert_array_equal(emulator.outside_domain(**inputs)[1:], False)
    if emulator.model.BUDGET:
        budget = emulator.energy_budget(**inputs)
        np.testing.assert_array_equal(budget.albedo[1:3], 1.0)
        np.testing.assert_array_equal(budget.absorbed[1:3], [[0.0, 0.0, np.nan, np.nan]] * 2)
        np.testing.assert_array_equal(budget.soil[1:3], 0.0)
        assert all(np.isnan(values[3:]).all() for values in (budget.albedo, budget.absorbed, budget.soil))
        np.testing.assert_allclose(budget.albedo[0] + np.nansum(budget.absorbed[0]) + budget.soil[0], 1, atol=1e-6)
    # all dark: no model run at all
    dark = {k: v[1:3] for k, v in inputs.items()}
    np.testing.assert_array_equal(emulator.predict(**dark), [1.0, 1.0])
    # dark also where cos_zenith is given and <= 1e-8, whatever the shortwave; not where it is NaN
    lit = {k: v[[0, 0, 0, 0]] for k, v in inputs.items()}
    cos_zenith = [0.3, 1e-8, -0.2, np.nan]
    got = emulator.predict(**lit, cos_zenith=cos_zenith)
    np.testing.assert_array_equal(got[1:3], 1.0)
    np.testing.assert_allclose(got[[0, 3]], albedo[0], rtol=1e-6)  # float32 (a batch of 2, not 1)
    np.testing.assert_array_equal(emulator.outside_domain(**lit, cos_zenith=cos_zenith, soil_albedo=0.9),
                                  [True, False, False, True])
    if emulator.model.BUDGET:
        budget = emulator.energy_budget(**lit, cos_zenith=cos_zenith)
        np.testing.assert_array_equal(budget.absorbed[1:3], [[0.0, 0.0, np.nan, np.nan]] * 2)
        np.testing.assert_array_equal(budget.soil[1:3], 0.0)


def test_a_single_profile_and_an_empty_batch(emulator_file):
    emulator = Emulator.load(emulator_file[0])
    inputs = night_inputs()
    batch = emulator.predict(**inputs)
    one = emulator.predict(**{k: v[0] for k, v in inputs.items()})  # layers (4,), scalars numbers
    assert np.ndim(one) == 0 and one == batch[0]
    assert emulator.predict(**{k: v[1] for k, v in inputs.items()}) == 1.0
    assert not emulator.outside_domain(**{k: v[0] for k, v in inputs.items()})
    empty = emulator.predict(**{k: v[:0] for k, v in inputs.items()})
    assert empty.shape == (0,) and empty.dtype == np.float64
    with pytest.raises(ValueError, match="cos_illum: 1 rows, but dz has none"):
        emulator.predict(**{k: v[:0] for k, v in inputs.items()} | {"cos_illum": np.ones(1)})
    # soil_albedo and cos_zenith: numbers, or one value per row
    assert emulator.predict(**{k: v[0] for k, v in inputs.items()}, soil_albedo=0.3, cos_zenith=0.5) == \
        emulator.predict(**inputs, soil_albedo=np.full(5, 0.3), cos_zenith=0.5)[0]
    assert emulator.predict(**{k: v[:0] for k, v in inputs.items()}, soil_albedo=0.3, cos_zenith=None).shape == (0,)
    with pytest.raises(ValueError, match="soil_albedo: 1 rows, but dz has none"):
        emulator.predict(**{k: v[:0] for k, v in inputs.items()}, soil_albedo=np.ones(1))
    if emulator.model.BUDGET:
        single = emulator.energy_budget(**{k: v[0] for k, v in inputs.items()})
        full = emulator.energy_budget(**inputs)
        assert np.ndim(single.albedo) == 0 and single.absorbed.shape == (4,) and np.ndim(single.soil) == 0
        np.testing.assert_array_equal(single.absorbed, full.absorbed[0])
        assert single.soil == full.soil[0]
        nothing = emulator.energy_budget(**{k: v[:0] for k, v in inputs.items()})
        assert nothing.albedo.shape == (0,) and nothing.absorbed.shape == (0, 4) and nothing.soil.shape == (0,)


def test_the_albedo_path_gives_the_budget_albedo():
    torch.manual_seed(3)
    model, _ = build_model("optical_budget")
    model.eval()
    inputs = extreme_inputs(500, seed=4)
    inputs["density"] = np.minimum(inputs["density"], 917.0)
    layers, scalars = (torch.from_numpy(a) for a in model_inputs(inputs))
    with torch.no_grad():
        # to float32 rounding (its step is 1.2e-7 below 1): the albedo path's last layer is a product by the two
        # albedo rows of the weights alone, summed in another order than by all of them
        torch.testing.assert_close(model.albedo(layers, scalars), model(layers, scalars)[0], rtol=0, atol=2.5e-7)


def test_the_network_without_autograd_is_the_one_trained():
    """Without autograd, SiLU runs in place (OpticalBudget._network): the same outputs, bit for bit,
    as the network autograd runs."""
    torch.manual_seed(5)
    model, _ = build_model("optical_budget")
    model.eval()
    model.norm.mean.uniform_(-2, 2)
    model.norm.std.uniform_(0.5, 3)
    inputs = extreme_inputs(300, seed=6)
    inputs["density"] = np.minimum(inputs["density"], 917.0)
    layers, scalars = (torch.from_numpy(a) for a in model_inputs(inputs))
    with torch.no_grad():
        physics = model.physics(layers, scalars, budget=True)
        fast = model._network(physics)
    with torch.enable_grad():
        reference = model._network(physics)
    assert torch.equal(fast, reference.detach())
