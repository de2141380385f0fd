"""Typed method options: sections validate themselves and name the key; renamed flat keys are refused with the
new name in a user's config and translated when an old checkpoint's config is read."""

from __future__ import annotations

import re
from typing import Any

import pytest

from wsol.methods import build_method
from wsol.methods.erasing import ErasingOptions
from wsol.methods.minmax_entropy import MaskOptions, MinMaxEntropy, SizeConstraint
from wsol.methods.options import (
    BackboneSpec,
    WildcatOptions,
    reject_renamed,
    section,
    upgrade_renamed,
    without_pretrained_weights,
)
from wsol.methods.weight_map import ClassifierSource, SiameseOptions, TripletOptions, WeightMapMethod
from wsol.training.config import load_config

TINY = {"backbone": {"name": "tiny"}, "wildcat": {"kmax": 0.3, "modalities": 2}}


@pytest.mark.parametrize(
    ("cls", "values", "message"),
    [
        (ErasingOptions, {"depth": -1}, "depth: expected an integer >= 0, got -1"),
        (ErasingOptions, {"depth": 2.5}, "depth: expected an integer >= 0, got 2.5"),
        (ErasingOptions, {"slope": 0.0}, "slope: expected a number > 0.0, got 0.0"),
        (ErasingOptions, {"history": "always"}, "history: expected one of 'trust', 'correct', got 'always'"),
        (ErasingOptions, {"shrink_batch": "yes"}, "shrink_batch: expected true or false, got 'yes'"),
        (MaskOptions, {"omega": 0}, "omega: expected a number > 0.0, got 0"),
        (MaskOptions, {"sigma": 0.5, "sigma_max": 0.4}, "sigma_max: expected a number >= 0.5, got 0.4"),
        (MaskOptions, {"normalization": "global"}, "normalization: expected one of 'per_sample', 'batch'"),
        (SizeConstraint, {"init_t": 20.0}, "max_t: expected a number >= 20.0, got 10.0"),
        (SizeConstraint, {"t_growth": 0.9}, "t_growth: expected a number >= 1.0, got 0.9"),
        (WildcatOptions, {"modalities": 0}, "modalities: expected an integer >= 1, got 0"),
        (WildcatOptions, {"dropout": 1.5}, "dropout: expected a number >= 0.0 <= 1.0, got 1.5"),
        (WildcatOptions, {"kmax": True}, "kmax: expected a number > 0.0, got True"),
        (BackboneSpec, {"large_feature_map": "no"}, "large_feature_map: expected true or false, got 'no'"),
        (ClassifierSource, {"checkpoint": "a.ckpt", "weights": "f.pth"}, "give one of checkpoint and"),
        (SiameseOptions, {"prototype_momentum": 1.0}, "prototype_momentum: expected a number in [0, 1)"),
        (TripletOptions, {"margin": -1.0}, "margin: expected a number >= 0.0, got -1.0"),
    ],
)
def test_a_bad_value_names_its_key(cls: type, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls(**values)


def test_sections_from_config_mappings_name_the_full_key() -> None:
    assert section(ErasingOptions, {"depth": 4}, "erasing") == ErasingOptions(depth=4)
    assert section(ErasingOptions, None, "erasing") == ErasingOptions()
    with pytest.raises(ValueError, match=re.escape("method.options.erasing.depth: expected an integer >= 0")):
        section(ErasingOptions, {"depth": -4}, "erasing")
    with pytest.raises(ValueError, match=re.escape("method.options.erasing.dpeth: unknown option; expected")):
        section(ErasingOptions, {"dpeth": 4}, "erasing")
    with pytest.raises(ValueError, match=re.escape("method.options.erasing: expected a mapping with keys")):
        section(ErasingOptions, 4, "erasing")
    with pytest.raises(ValueError, match=re.escape("method.options.mask.omega: expected a number > 0.0")):
        build_method("minmax_entropy", 3, {**TINY, "mask": {"omega": -8.0}})
    with pytest.raises(ValueError, match=re.escape("method.options.triplet.use_inner: expected true or")):
        WeightMapMethod(3, method="II", phase="pretrain_siamese", triplet={"use_inner": 1})


def test_sections_reach_the_method() -> None:
    method = build_method(
        "minmax_entropy",
        3,
        {**TINY, "erasing": {"depth": 3, "start_epoch": 2}, "mask": {"sigma": 0.25, "detach": False}},
    )
    assert isinstance(method, MinMaxEntropy)
    assert method.erasing == ErasingOptions(depth=3, start_epoch=2)
    assert (method.sigma, method.mask.detach, method.localizer_head.kmax) == (0.25, False, 0.3)
    method.on_train_epoch_end(1)  # epoch 2 reached: erasing starts
    assert method.erasing_active


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("method.options.erasing_depth=4", "erasing_depth was renamed: use method.options.erasing.depth"),
        ("method.options.detach_mask=false", "detach_mask was renamed: use method.options.mask.detach"),
        ("method.options.kmax=0.5", "kmax was renamed: use method.options.wildcat.kmax"),
        ("method.options.size_constraint=true", "size_constraint is now a section: use "),
    ],
)
def test_a_user_config_with_an_old_key_is_refused_with_the_new_name(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config(None, ["method.name=minmax_entropy", override])


def test_old_weight_map_keys_are_refused_and_new_ones_accepted() -> None:
    old = ["method.name=weight_map", "method.options.classifier_checkpoint=run/best.ckpt"]
    with pytest.raises(ValueError, match=re.escape("use method.options.classifier.checkpoint")):
        load_config(None, old)
    new = ["method.name=weight_map", "method.options.classifier.checkpoint=run/best.ckpt"]
    config = load_config(None, new)
    assert dict(config.method.options.classifier) == {"checkpoint": "run/best.ckpt"}


def test_the_minmax_preset_is_nested() -> None:
    options = load_config("minmax_entropy").method.options  # type: ignore[arg-type]
    assert options.erasing.depth == 4 and options.mask.detach is True and options.backbone.name == "tiny"


def test_old_flat_options_upgrade_to_sections() -> None:
    flat = {
        "backbone": "tiny",
        "weights": "imagenet",
        "kmax": 0.3,
        "erasing_depth": 2,
        "erasing_shrink_batch": False,
        "exclude_untrusted": True,
        "detach_mask": False,
        "size_constraint": True,
        "init_t": 4.0,
        "variant": "sem",
    }
    upgraded = upgrade_renamed(flat, MinMaxEntropy.RENAMED_OPTIONS)
    assert upgraded == {
        "backbone": {"name": "tiny", "weights": "imagenet"},
        "wildcat": {"kmax": 0.3},
        "erasing": {"depth": 2, "shrink_batch": False, "exclude_untrusted": True},
        "mask": {"detach": False},
        "size_constraint": {"enabled": True, "init_t": 4.0},
        "variant": "sem",
    }
    reject_renamed(upgraded, MinMaxEntropy.RENAMED_OPTIONS)  # nothing stale is left
    assert flat["backbone"] == "tiny"  # the input is not modified
    assert without_pretrained_weights(upgraded)["backbone"] == {"name": "tiny", "weights": None}
    assert upgraded["backbone"]["weights"] == "imagenet"
