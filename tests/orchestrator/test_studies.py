import pytest

from isosweep.errors import UsageError
from isosweep.orchestrator.plan import make_bundles, make_plan, parse_fuse
from isosweep.studies import STUDIES, get_study
from isosweep.trainers.config import TrialConfig
from isosweep.where import parse_where


def test_toy_study_has_90_trials_per_seed_with_unique_stable_keys():
    toy = get_study("toy")
    configs = toy.configs("smoke")
    assert len(configs) == 90
    keys = [c.key for c in configs]
    assert len(set(keys)) == 90
    assert keys == [c.key for c in toy.configs("smoke")]
    assert {c.dataset for c in configs} == {"norm", "ramp", "mix"}
    assert {c.loss for c in configs} == {"se", "dconv", "uconv"}
    assert len({c.lam for c in configs}) == 10
    assert len(toy.configs("smoke", seeds=3)) == 270


def test_keys_depend_on_content_not_position():
    toy = get_study("toy")
    full = {c.key for c in toy.configs("quick")}
    subset = toy.configs("quick", where={"dataset": ("mix",), "lam": (100.0,)})
    assert len(subset) == 3 and {c.key for c in subset} <= full
    # The budget is part of the identity; the same point at another budget is another trial.
    assert not {c.key for c in toy.configs("smoke")} & full
    # lam=100 and lam=100.0 are the same trial.
    a = TrialConfig(study="toy", budget="smoke", dataset="mix", loss="se", seed=0, latent_dim=3, lam=100)
    b = TrialConfig(study="toy", budget="smoke", dataset="mix", loss="se", seed=0, latent_dim=3, lam=100.0)
    assert a.key == b.key and TrialConfig.from_dict(a.to_dict()).key == a.key


def test_extending_with_seeds_or_lambdas_adds_only_new_keys():
    toy = get_study("toy")
    one = {c.key for c in toy.configs("smoke", seeds=1)}
    two = {c.key for c in toy.configs("smoke", seeds=2)}
    assert one < two and len(two - one) == 90
    extra = toy.configs("smoke", where=parse_where(toy, "lam=3|100"))
    assert len(extra) == 18 and len({c.key for c in extra} - one) == 9


def test_where_parsing_types_and_errors():
    toy = get_study("toy")
    assert parse_where(toy, "dataset=mix,lam=10|100,seed=2") == {
        "dataset": ("mix",),
        "lam": (10.0, 100.0),
        "seed": (2,),
    }
    assert parse_where(toy, "reduction=mean") == {"reduction": ("mean",)}
    for bad, message in [
        ("colour=red", "not an axis"),
        ("dataset=circle", "not a value"),
        ("lam=-1", "positive"),
        ("lam=0", "positive"),
        ("lam=abc", "takes numbers"),
        ("lam", "not K=V"),
        ("seed=-1", "non-negative"),
        ("reduction=max", "choose one of"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_where(toy, bad)
    with pytest.raises(UsageError, match="unknown study"):
        get_study("toys")
    with pytest.raises(UsageError, match="unknown budget"):
        toy.budget("huge")


def test_latent5_variant_and_settings_are_recorded():
    (cfg,) = STUDIES["toy-latent5"].configs("paper")
    assert (cfg.dataset, cfg.loss, cfg.lam, cfg.latent_dim, cfg.epochs) == ("mix", "se", 100.0, 5, 500)
    (mean,) = STUDIES["toy-latent5"].configs("paper", where={"reduction": ("mean",)})
    assert mean.reduction == "mean" and mean.key != cfg.key


def test_bundles_group_compatible_trials_and_plans_skip_completed_keys():
    toy = get_study("toy")
    configs = toy.configs("smoke") + STUDIES["toy-latent5"].configs("smoke")
    bundles = make_bundles(configs, 10, slots=2)
    assert sum(len(b) for b in bundles) == 91
    for b in bundles:
        assert len({c.fusion_key() for c in b}) == 1 and len(b) <= 10
    assert all(len(b) == 1 for b in make_bundles(configs, parse_fuse("off"), 2))
    done = {c.key for c in configs[:50]}
    plan = make_plan(configs, done, "auto", 2, force=False)
    assert len(plan.to_run) == 41 and not done & {c.key for c in plan.to_run}
    assert len(make_plan(configs, done, "auto", 2, force=True).to_run) == 91
    with pytest.raises(UsageError):
        parse_fuse("0")
