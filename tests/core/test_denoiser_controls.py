"""Pipeline conventions of the control features: the unconditional emotion input per version family."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hellomeme_core.control import load_control_network
from hellomeme_core.denoiser.bundle import HMModelBundle, compute_control_features
from tests.support.official_weights import official_state_dict


@pytest.fixture(scope="module")
def emotion_net():
    return load_control_network(official_state_dict("songkey/hm_control2"), "hm_control2 (random, official layout)")


def _features(net, version: str, neg_pd_fpg):
    bundle = HMModelBundle(version=version, dtype=torch.float32, reference_adapter=nn.Identity(), control_networks=[net])
    g = torch.Generator().manual_seed(0)
    condition = torch.rand(2, 3, 128, 64, generator=g) * 2 - 1
    pd_fpg = torch.randn(2, 548, generator=g)
    return compute_control_features(bundle, condition, None, pd_fpg=pd_fpg, neg_pd_fpg=neg_pd_fpg)


@torch.no_grad()
def test_v1_v2_negative_is_the_fan_encoder_negative_and_v3_on_is_zeros(emotion_net):
    neg = torch.randn(1, 548, generator=torch.Generator().manual_seed(1))
    minus_one = -torch.ones(1, 3, 1, 128, 64)
    _, uncond_v1 = _features(emotion_net, "v1", neg)
    expected_v1 = emotion_net(minus_one, neg.reshape(1, 1, 548))
    for key, value in expected_v1.items():
        torch.testing.assert_close(uncond_v1[key], value[:, :, 0])
    # From v3 on the official pipelines use zeros, even when a FanEncoder negative is at hand.
    _, uncond_v3 = _features(emotion_net, "v3", neg)
    expected_v3 = emotion_net(minus_one, torch.zeros(1, 1, 548))
    for key, value in expected_v3.items():
        torch.testing.assert_close(uncond_v3[key], value[:, :, 0])
    assert not torch.allclose(uncond_v1[next(iter(expected_v1))], uncond_v3[next(iter(expected_v1))])
