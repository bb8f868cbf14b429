"""FuzzyMLP, its epoch tally, the in-memory batch source and the feature scaler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ktrdr_lib.errors import ConfigError, DataError, TrainingError
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec, ModelTrainingSpec
from ktrdr_lib.training.batches import TensorBatches, cut_windows
from ktrdr_lib.training.evaluation import evaluate_regression
from ktrdr_lib.training.module import (
    EpochTally,
    FuzzyMLP,
    build_network,
    classification_loss,
    inverse_frequency_weights,
)
from ktrdr_lib.training.scaling import FeatureScaler


def spec(**architecture: object) -> ModelSpec:
    return ModelSpec(architecture=ArchitectureSpec(**architecture))  # type: ignore[arg-type]


# --- network ---------------------------------------------------------------------------------


def test_network_follows_the_architecture() -> None:
    network = build_network(spec(hidden_layers=[7, 5], activation="tanh", dropout=0.3), 4)
    linears = [layer for layer in network if isinstance(layer, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in linears] == [
        (4, 7),
        (7, 5),
        (5, 3),
    ]
    assert sum(isinstance(layer, nn.Tanh) for layer in network) == 2
    assert [layer.p for layer in network if isinstance(layer, nn.Dropout)] == [0.3, 0.3]


def test_zero_dropout_adds_no_dropout_layer() -> None:
    network = build_network(spec(hidden_layers=[8], dropout=0.0), 2)
    assert not any(isinstance(layer, nn.Dropout) for layer in network)


@pytest.mark.parametrize(
    ("architecture", "n_features", "fragment"),
    [
        ({"hidden_layers": [8, 0]}, 3, "hidden_layers"),
        ({"dropout": 1.0}, 3, "dropout"),
        ({}, 0, "feature"),
    ],
)
def test_invalid_architecture_is_a_config_error(
    architecture: dict[str, object], n_features: int, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        build_network(spec(**architecture), n_features)


def test_predict_proba_is_a_distribution_and_keeps_the_mode() -> None:
    torch.manual_seed(0)
    module = FuzzyMLP(spec(dropout=0.5), n_features=5)
    module.train()
    x = torch.randn(16, 5)
    first, second = module.predict_proba(x), module.predict_proba(x)
    assert first.shape == (16, 3)
    torch.testing.assert_close(first.sum(dim=1), torch.ones(16))
    assert torch.equal(first, second)  # eval mode: dropout off, so deterministic
    assert module.training


def test_predict_proba_is_softmax_of_the_eval_logits() -> None:
    module = FuzzyMLP(spec(dropout=0.0), n_features=3)
    x = torch.randn(4, 3)
    with torch.no_grad():
        logits = module(x)
    torch.testing.assert_close(module.predict_proba(x), torch.softmax(logits, dim=1))


@pytest.mark.parametrize(
    ("name", "optimizer_class"),
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("sgd", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
    ],
)
def test_optimizer_comes_from_the_spec(name: str, optimizer_class: type) -> None:
    training = ModelTrainingSpec(optimizer=name, learning_rate=0.05, weight_decay=0.01)  # type: ignore[arg-type]
    module = FuzzyMLP(ModelSpec(training=training), n_features=3)
    optimizer = module.configure_optimizers()
    assert type(optimizer) is optimizer_class
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_non_positive_learning_rate_is_a_config_error() -> None:
    module = FuzzyMLP(ModelSpec(training=ModelTrainingSpec(learning_rate=0.0)), n_features=3)
    with pytest.raises(ConfigError, match="learning_rate"):
        module.configure_optimizers()


def test_latest_batch_loss_is_none_before_training() -> None:
    assert FuzzyMLP(spec(), n_features=2).latest_batch_loss is None


# --- epoch tally -----------------------------------------------------------------------------


def test_tally_weights_losses_by_batch_size_and_grows() -> None:
    tally = EpochTally(capacity=2)
    batches = [
        (0.5, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), torch.tensor([0, 2])),
        (1.0, torch.tensor([[0, 0, 1.0]]), torch.tensor([2])),
        (2.0, torch.tensor([[0, 1.0, 0], [0, 1.0, 0], [1.0, 0, 0]]), torch.tensor([1, 1, 1])),
    ]
    for index, (loss, logits, y) in enumerate(batches):
        tally.add(index, torch.tensor(loss), logits, y)
    loss_sum, correct, count = tally.totals().tolist()
    assert loss_sum == pytest.approx(0.5 * 2 + 1.0 * 1 + 2.0 * 3)
    assert correct == 1 + 1 + 2
    assert count == 6
    assert tally.batches == 3
    assert tally.first_non_finite_batch() == -1
    tally.reset(torch.device("cpu"))
    assert tally.batches == 0
    assert tally.totals().tolist() == [0.0, 0.0, 0.0]


def test_tally_finds_the_first_non_finite_batch() -> None:
    tally = EpochTally()
    logits, y = torch.zeros(1, 3), torch.zeros(1, dtype=torch.int64)
    for index, loss in enumerate([0.3, 0.2, float("nan"), float("inf")]):
        tally.add(index, torch.tensor(loss), logits, y)
    assert tally.first_non_finite_batch() == 2


# --- batches ---------------------------------------------------------------------------------


def test_batches_cover_the_split_in_order_without_shuffle() -> None:
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    batches = TensorBatches(x, y, batch_size=4)
    assert len(batches) == 3
    for _ in range(2):  # re-iterable, same order each epoch
        labels = [batch_y.tolist() for _, batch_y in batches]
        assert labels == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    first_x, _ = next(iter(batches))
    assert first_x.data_ptr() == x.data_ptr()  # a view, not a copy


def test_shuffled_batches_are_seeded_permutations_per_epoch() -> None:
    x, y = torch.arange(64.0).unsqueeze(1), torch.arange(64)

    def epochs(seed: int) -> list[list[int]]:
        batches = TensorBatches(x, y, batch_size=10, shuffle=True, seed=seed)
        return [torch.cat([batch_y for _, batch_y in batches]).tolist() for _ in range(3)]

    first = epochs(seed=3)
    assert all(sorted(epoch) == list(range(64)) for epoch in first)
    assert first[0] != first[1] != first[2]
    assert first == epochs(seed=3)
    assert first != epochs(seed=4)
    for batch_x, batch_y in TensorBatches(x, y, batch_size=10, shuffle=True):
        assert torch.equal(batch_x.squeeze(1).long(), batch_y)  # rows stay paired


def test_weighted_batches_draw_samples_in_proportion_to_their_weights() -> None:
    x, y = torch.arange(4.0).unsqueeze(1), torch.arange(4)
    weights = torch.tensor([1.0, 1.0, 2.0, 0.0], dtype=torch.float64)
    batches = TensorBatches(x, y, batch_size=500, shuffle=True, seed=1, weights=weights)
    drawn = torch.cat([torch.cat([b for _, b in batches]) for _ in range(250)])
    assert len(drawn) == 1000  # n per epoch, drawn with replacement
    counts = torch.bincount(drawn, minlength=4).double() / len(drawn)
    assert counts[3] == 0  # weight 0: never drawn
    assert torch.allclose(
        counts[:3], torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64), atol=0.04
    )
    for batch_x, batch_y in batches:
        assert torch.equal(batch_x.squeeze(1).long(), batch_y)  # rows stay paired
    with pytest.raises(DataError, match="one non-negative number per sample"):
        TensorBatches(x, y, 2, weights=torch.ones(3))


def test_ranks_get_disjoint_equal_shards() -> None:
    x, y = torch.zeros(11, 1), torch.arange(11)
    shards = [
        torch.cat([b for _, b in TensorBatches(x, y, 2, shuffle=True, rank=r, world_size=3)])
        for r in range(3)
    ]
    assert [len(shard) for shard in shards] == [3, 3, 3]
    assert len(set(torch.cat(shards).tolist())) == 9
    assert len(TensorBatches(x, y, 2, rank=1, world_size=3)) == 2


def test_placing_a_source_later_takes_the_same_shard() -> None:
    x, y = torch.zeros(11, 1), torch.arange(11)
    late = TensorBatches(x, y, 2, shuffle=True, seed=4)
    late.place(torch.device("cpu"), rank=1, world_size=3)
    early = TensorBatches(x, y, 2, shuffle=True, seed=4, rank=1, world_size=3)
    assert len(late) == len(early) == 2
    assert [b.tolist() for _, b in late] == [b.tolist() for _, b in early]
    with pytest.raises(ConfigError, match="rank"):
        late.place(torch.device("cpu"), rank=3, world_size=3)


def test_batches_on_the_device_skip_the_transfer() -> None:
    module = FuzzyMLP(spec(), n_features=2)
    batch = (torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64))
    assert module.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    listed = [torch.ones(2, 2), torch.ones(2)]  # not the (x, y) tuple: Lightning's move
    moved = module.transfer_batch_to_device(listed, torch.device("cpu"), 0)
    assert isinstance(moved, list)
    assert all(torch.equal(a, b) for a, b in zip(moved, listed, strict=True))


def test_batch_source_rejects_bad_arguments() -> None:
    x, y = torch.zeros(4, 1), torch.zeros(4)
    with pytest.raises(ConfigError, match="batch_size"):
        TensorBatches(x, y, batch_size=0)
    with pytest.raises(DataError, match="differ in length"):
        TensorBatches(x, torch.zeros(3), batch_size=2)


# --- scaler ----------------------------------------------------------------------------------


def test_scaler_standardises_with_training_statistics() -> None:
    x_train = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]], dtype=np.float32)
    scaler = FeatureScaler.fit(x_train)
    assert scaler.mean.tolist() == [2.0, 20.0, 5.0]
    assert scaler.std.tolist() == [1.0, 10.0, 1.0]  # constant column: std 0 → 1
    out = scaler.transform(np.array([[2.0, 40.0, 7.0]], dtype=np.float32))
    assert out.dtype == np.float32
    assert out.tolist() == [[0.0, 2.0, 2.0]]


def test_scaler_in_place_overwrites_its_input_with_the_same_values() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 2.0, size=(40, 3)).astype(np.float32)
    scaler = FeatureScaler.fit(x)
    expected = scaler.transform(x)
    before = x.copy()
    view = x[5:30]
    out = scaler.transform(view, in_place=True)
    assert out is view and np.shares_memory(out, x)
    np.testing.assert_array_equal(x[5:30], expected[5:30])
    np.testing.assert_array_equal(x[:5], before[:5])  # rows outside the view are untouched
    np.testing.assert_array_equal(x[30:], before[30:])
    with pytest.raises(DataError, match="writable float32"):
        scaler.transform(x.astype(np.float64), in_place=True)


def test_scaler_round_trips_through_json() -> None:
    rng = np.random.default_rng(1)
    scaler = FeatureScaler.fit(rng.normal(3.0, 2.0, size=(50, 4)).astype(np.float32))
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert restored == scaler
    x = rng.normal(size=(5, 4)).astype(np.float32)
    assert np.array_equal(restored.transform(x), scaler.transform(x))


def test_scaler_reports_bad_input() -> None:
    scaler = FeatureScaler.fit(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(DataError, match="2 columns"):
        scaler.transform(np.ones((3, 5), dtype=np.float32))
    with pytest.raises(DataError, match="NaN or inf in columns \\[1\\]"):
        FeatureScaler.fit(np.array([[1.0, np.nan], [2.0, 1.0]]))
    with pytest.raises(DataError, match="'mean' and 'std'"):
        FeatureScaler.from_dict({"mean": [0.0]})


# --- losses ----------------------------------------------------------------------------------


def test_focal_loss_with_gamma_zero_is_weighted_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(40, 3), torch.randint(0, 3, (40,))
    weights = torch.tensor([0.5, 2.0, 1.0])
    plain = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(classification_loss(logits, y), plain)
    weighted = torch.nn.functional.cross_entropy(logits, y, weight=weights)
    assert torch.allclose(classification_loss(logits, y, weights=weights), weighted)
    # gamma → 0 approaches the weighted cross-entropy from the focal formula itself
    near = classification_loss(logits, y, gamma=1e-6, weights=weights)
    assert torch.allclose(near, weighted, atol=1e-5)


def test_focal_loss_follows_its_formula_and_discounts_easy_samples() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    y = torch.tensor([0, 0])
    p = torch.softmax(logits, dim=1)[:, 0]
    expected = (-((1 - p) ** 2) * torch.log(p)).mean()
    assert torch.allclose(classification_loss(logits, y, gamma=2.0), expected)
    per_sample_ce = -torch.log(p)
    focal_share = ((1 - p) ** 2 * per_sample_ce)[0] / ((1 - p) ** 2 * per_sample_ce).sum()
    assert focal_share < per_sample_ce[0] / per_sample_ce.sum()  # the easy sample counts less


def test_inverse_frequency_weights_have_mean_one_over_present_classes() -> None:
    y = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    weights = inverse_frequency_weights(y)
    expected = torch.tensor([1 / 6, 1 / 3, 1.0])
    assert torch.allclose(weights, expected / expected.mean())
    missing = inverse_frequency_weights(torch.tensor([0, 0, 2]))
    assert missing[1] == 0 and torch.allclose(missing[[0, 2]].mean(), torch.tensor(1.0))


# --- regression ------------------------------------------------------------------------------


def test_a_regression_module_has_one_output_and_its_loss() -> None:
    torch.manual_seed(1)
    huber = FuzzyMLP(ModelSpec(), n_features=4, regression=True, huber_delta=0.5)
    mse = FuzzyMLP(ModelSpec(), n_features=4, regression=True, regression_loss="mse")
    x, y = torch.randn(8, 4), torch.randn(8)
    out = huber(x)
    assert out.shape == (8,)
    expected = torch.nn.functional.huber_loss(out, y, delta=0.5)
    assert torch.allclose(huber.compute_loss(out, y), expected)
    assert torch.allclose(mse.compute_loss(out, y), torch.nn.functional.mse_loss(out, y))
    assert huber.predict_values(x).shape == (8,)
    with pytest.raises(TrainingError, match="predicts values"):
        huber.predict_proba(x)
    with pytest.raises(TrainingError, match="predict_proba"):
        FuzzyMLP(ModelSpec(), n_features=4).predict_values(x)


def test_the_tally_counts_directional_hits_for_values() -> None:
    tally = EpochTally()
    preds = torch.tensor([0.5, -0.2, 0.1, -0.3])
    truth = torch.tensor([1.0, -1.0, -0.5, 0.2])
    tally.add(0, torch.tensor(0.1), preds, truth)
    _, correct, count = tally.totals().tolist()
    assert (correct, count) == (2.0, 4.0)


def test_regression_metrics_follow_their_definitions() -> None:
    torch.manual_seed(2)
    module = FuzzyMLP(ModelSpec(), n_features=3, regression=True)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (0.01 * x[:, 0] + rng.normal(scale=0.01, size=200)).astype(np.float32)
    metrics = evaluate_regression(module, x, y, train_mean=0.002)
    preds = module.predict_values(torch.from_numpy(x)).numpy().astype(np.float64)
    truth = y.astype(np.float64)
    assert metrics.mae == pytest.approx(np.mean(np.abs(preds - truth)), rel=1e-6)
    assert metrics.rmse == pytest.approx(np.sqrt(np.mean((preds - truth) ** 2)), rel=1e-6)
    assert metrics.directional_accuracy == pytest.approx(np.mean(np.sign(preds) == np.sign(truth)))
    assert metrics.correlation == pytest.approx(np.corrcoef(preds, truth)[0, 1], abs=1e-6)
    assert metrics.zero_baseline_mae == pytest.approx(np.mean(np.abs(truth)), rel=1e-6)
    assert metrics.mean_baseline_mae == pytest.approx(np.mean(np.abs(truth - 0.002)), rel=1e-6)
    assert metrics.mean_baseline_directional_accuracy == pytest.approx(np.mean(truth > 0))
    assert metrics.samples == 200 and metrics.train_mean == pytest.approx(0.002)


# --- windows ---------------------------------------------------------------------------------


def test_windows_are_the_rows_before_each_end_cut_from_a_strided_view() -> None:
    source = torch.arange(40.0).reshape(10, 4)
    ends = torch.tensor([3, 9, 5])
    windows = cut_windows(source, ends, 3)
    assert windows.shape == (3, 3, 4)
    for k, end in enumerate(ends.tolist()):
        assert torch.equal(windows[k], source[end - 2 : end + 1])


def test_window_batches_pair_each_window_with_its_label() -> None:
    source = torch.arange(60.0).reshape(20, 3)
    ends = torch.arange(4, 20)
    y = ends.clone()
    batches = TensorBatches(ends, y, batch_size=5, shuffle=True, seed=2, source=source, window=4)
    seen = []
    for windows, labels in batches:
        assert windows.shape[1:] == (4, 3)
        last_rows = windows[:, -1, 0].long() // 3  # row index of each window's last row
        assert torch.equal(last_rows, labels)
        seen += labels.tolist()
    assert sorted(seen) == list(range(4, 20))
    with pytest.raises(ConfigError, match="at least 1 row"):
        TensorBatches(ends, y, 5, source=source, window=0)


def test_a_sequence_network_reads_windows_into_its_outputs() -> None:
    for kind in ("lstm", "gru"):
        spec = ModelSpec(
            type=kind,
            architecture=ArchitectureSpec(sequence_length=6, hidden_size=5, num_layers=2),
        )
        module = FuzzyMLP(spec, n_features=3)
        assert module.sequence_length == 6
        assert module(torch.zeros(4, 6, 3)).shape == (4, 3)
        regression = FuzzyMLP(spec, n_features=3, regression=True)
        assert regression(torch.zeros(4, 6, 3)).shape == (4,)
    with pytest.raises(ConfigError, match=r"needs model\.architecture\.sequence_length"):
        build_network(ModelSpec(type="gru"), 3)
