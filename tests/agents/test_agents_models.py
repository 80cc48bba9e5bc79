"""World models: interface, finiteness, learning, non-collapse."""

from __future__ import annotations

import pytest
import torch
from conftest import make_batch

from tdwgym.agents.device import resolve_device
from tdwgym.agents.models import (
    WARP_SCALE,
    LatentPredictor,
    Transitions,
    make_world_model,
    world_model_from_config,
)

VARIANTS = ["pixel", "latent", "rnd", "icm", "progress"]
TINY = {"width": 4}


def test_resolve_device_auto_never_assumes_gpu():
    dev = resolve_device("auto")
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("discrete", [True, False])
def test_loss_and_surprise_shapes_finite_nonnegative(name, discrete):
    batch = make_batch(b=6, k=3)
    if not discrete:
        batch = Transitions(batch.context, torch.randn(6, 5), batch.next_frame)
    model = make_world_model(name, (3, 16, 16), 5, context_frames=3, discrete_actions=discrete, device="auto", **TINY)
    out = model.compute_loss(batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    s = model.surprise(batch)
    assert s.shape == (6,) and torch.isfinite(s).all() and (s >= 0).all()


@pytest.mark.parametrize("name", ["pixel", "latent", "rnd", "icm"])
def test_surprise_on_repeated_transition_falls(name):
    torch.manual_seed(0)
    model = make_world_model(name, (3, 16, 16), 5, context_frames=2, device="cpu", **TINY)
    batch = make_batch(b=4, seed=1)
    model.observe(batch)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    before = model.surprise(batch).mean().item()
    for _ in range(30):
        out = model.compute_loss(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        model.after_update()
    after = model.surprise(batch).mean().item()
    assert after < before


def test_progress_is_zero_before_learning_and_positive_while_learning():
    torch.manual_seed(0)
    model = make_world_model("progress", (3, 16, 16), 5, lag_updates=5, device="cpu", **TINY)
    batch = make_batch(b=4, seed=2)
    assert torch.allclose(model.surprise(batch), torch.zeros(4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):
        out = model.compute_loss(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        model.after_update()
    assert model.surprise(batch).mean() > 0
    # lagged copies are checkpointed too
    clone = make_world_model("progress", (3, 16, 16), 5, lag_updates=5, device="cpu", **TINY)
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(clone.surprise(batch), model.surprise(batch))


@pytest.mark.parametrize("target", ["ema", "online"])
def test_latent_features_keep_nonzero_variance(target):
    torch.manual_seed(0)
    model = LatentPredictor((3, 16, 16), 5, context_frames=2, width=4, feature_dim=16, target=target, device="cpu")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        batch = make_batch(b=16, seed=step)
        out = model.compute_loss(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        model.after_update()
    probe = make_batch(b=32, seed=999)
    with torch.no_grad():
        online = model.encode(probe.next_frame)
        tgt = model.target_features(probe.next_frame)
    # Freshly initialised features have a std of ~0.015; the regulariser must drive it up, not down.
    assert online.std(0).mean() > 0.5
    assert tgt.std(0).mean() > 0.05
    assert out.metrics["feature_std"] > 0.5


def test_pixel_loss_mix_is_configurable():
    batch = make_batch(b=2)
    m1 = make_world_model("pixel", (3, 16, 16), 5, l1_weight=1.0, l2_weight=0.0, device="cpu", **TINY)
    out = m1.compute_loss(batch)
    assert abs(out.metrics["l1"] - out.loss.item()) < 1e-5


def test_pixel_warp_starts_as_copy_and_learns_a_shift_per_action():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(3)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(64, 3, 24, 24, generator=gen), 5, 1, 2)
    shift = {0: 0, 1: 2}  # action 1 shifts the image 2 pixels right, like a camera turn; action 0 keeps it

    def batch(n: int = 16) -> Transitions:
        idx = torch.randint(0, 64, (n,), generator=gen)
        act = torch.randint(0, 2, (n,), generator=gen)
        frames = smooth[idx][..., 4:20, 4:20]
        nxt = torch.stack(
            [smooth[i][..., 4:20, 4 - shift[int(a)] : 20 - shift[int(a)]] for i, a in zip(idx, act, strict=True)]
        )
        return Transitions(torch.stack([frames, frames], 1), torch.nn.functional.one_hot(act, 2).float(), nxt)

    model = make_world_model("pixel", (3, 16, 16), 2, device="cpu", warp=True, **TINY)
    b = batch()
    assert torch.allclose(model.warped_last_frame(b.context[:, -1], b.action), b.context[:, -1], atol=1e-5)
    assert world_model_from_config(model.config(), device="cpu").warp
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        out = model.compute_loss(batch())
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    offset = WARP_SCALE * model.action_warp.weight.detach()
    # x translation of action 1 (2 of 8 half-widths; a shift right samples from the left: negative), none for 0
    assert -0.35 < offset[2, 1] < -0.15 and abs(float(offset[2, 0])) < 0.05


@pytest.mark.parametrize("warp", [False, True])
def test_pixel_fovea_surprise_counts_only_the_centre(warp):
    """With ``fovea`` the surprise is the error inside the central fraction of the frame; the loss still covers every
    pixel (the model learns the whole frame)."""
    torch.manual_seed(0)
    model = make_world_model("pixel", (3, 16, 16), 2, device="cpu", warp=warp, fovea=0.5, **TINY)
    assert world_model_from_config(model.config(), device="cpu").fovea == 0.5
    batch = make_batch(b=2, hw=16, action_dim=2)
    pred = model.predict(batch.context, batch.action).detach().clamp(0, 1)
    border, centre = (pred * 255).round().to(torch.uint8), (pred * 255).round().to(torch.uint8)
    border[..., :3, :] = 255 - border[..., :3, :]  # the top 3 rows: outside the central 8x8
    centre[..., 7, 7] = 255 - centre[..., 7, 7]  # one pixel inside it
    s_border, loss_border = model.evaluate(Transitions(batch.context, batch.action, border))
    s_centre, _ = model.evaluate(Transitions(batch.context, batch.action, centre))
    s_exact, loss_exact = model.evaluate(Transitions(batch.context, batch.action, (pred * 255).round().to(torch.uint8)))
    assert torch.allclose(s_border, s_exact, atol=1e-6)  # a change outside the fovea is no surprise ...
    assert (loss_border > loss_exact + 1e-3).all()  # ... but the model is trained on it
    assert (s_centre > s_exact + 1e-3).all()
    with pytest.raises(ValueError, match="fovea"):
        make_world_model("pixel", (3, 16, 16), 2, device="cpu", fovea=1.5, **TINY)


def test_resize_frames_area_averages_and_keeps_dtype():
    from tdwgym.agents.models import resize_frames

    x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4) * 10
    out = resize_frames(x, (2, 2))
    assert out.dtype == torch.uint8 and out.shape == (1, 1, 2, 2)
    # each output pixel is the mean of a 2x2 block: (0 + 10 + 40 + 50) / 4 = 25, ...
    assert out[0, 0].tolist() == [[25, 45], [105, 125]]
    ctx = torch.randint(0, 256, (3, 2, 3, 36, 36), dtype=torch.uint8)
    assert resize_frames(ctx, (32, 32)).shape == (3, 2, 3, 32, 32)
    assert resize_frames(ctx, (36, 36)) is ctx


@pytest.mark.parametrize("name", VARIANTS)
def test_prepared_scoring_equals_evaluate(name):
    """The curiosity wrapper predicts while the environments step (prepare) and compares when the frames arrive
    (evaluate_prepared): the numbers must be those of evaluate()."""
    torch.manual_seed(0)
    kwargs = {"warp": True} if name in ("pixel", "progress") else {}
    model = make_world_model(name, (3, 16, 16), 5, device="cpu", **TINY, **kwargs)
    batch = make_batch(b=4, hw=16)
    surprise, loss = model.evaluate(batch)
    s2, l2 = model.evaluate_prepared(model.prepare(batch.context, batch.action), batch.next_frame)
    assert torch.equal(surprise, s2) and torch.equal(loss, l2)


def test_models_say_whether_they_observe():
    assert make_world_model("rnd", (3, 16, 16), 5, device="cpu", **TINY).observes
    assert make_world_model("progress", (3, 16, 16), 5, device="cpu", progress_base="rnd", **TINY).observes
    assert not make_world_model("pixel", (3, 16, 16), 5, device="cpu", **TINY).observes
    assert not make_world_model("progress", (3, 16, 16), 5, device="cpu", **TINY).observes


def test_asking_for_cuda_without_it_is_an_error_not_a_silent_cpu(monkeypatch):
    from tdwgym.agents.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_a_zero_or_negative_training_budget_is_refused_at_the_door(tmp_path):
    import subprocess
    import sys

    for budget in ("0", "-5"):
        proc = subprocess.run(
            [sys.executable, "-m", "tdwgym", "train", "--total-steps", budget, "--out", str(tmp_path / "r")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and "positive integer" in proc.stderr
        assert not (tmp_path / "r").exists()
