"""``tdwgym eval``: a complete report from a tiny untrained model, the same report from episodes evaluated in
parts, exact VoE metrics, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tdwgym.agents.evaluate import (
    EvalConfig,
    EvalSettings,
    count_episodes,
    evaluate,
    evaluate_episodes,
    load_run,
    merge_reports,
    voe_metrics,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = "TDWRoom-Occlusion-v0"
RES = 16


def _save_model(path: Path, name: str = "pixel") -> Path:
    from tdwgym.agents.models import make_world_model

    torch.manual_seed(0)
    model = make_world_model(
        name,
        (3, RES, RES),
        10,
        device="cpu",
        width=4,
        **({"latent_dim": 16} if name == "pixel" else {"feature_dim": 8}),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_config": model.config(), "model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder in ``tdwgym train``'s layout: config, an untrained 16x16 pixel model and a tiny MLP agent."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    run = tmp_path_factory.mktemp("run")
    ckpt = run / "checkpoints" / "step_0000000064"
    _save_model(ckpt / "world_model.pt")
    PPO("MlpPolicy", gym.make(ENV, resolution=RES), n_steps=8, batch_size=8, device="cpu").save(ckpt / "agent.zip")
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"dir": ckpt.name, "num_timesteps": 64}))
    (run / "config.json").write_text(json.dumps({"env_id": ENV, "env_kwargs": {"resolution": RES}, "frame_stack": 1}))
    return run


@pytest.fixture(scope="module")
def local_report(tiny_run, tmp_path_factory) -> tuple[dict, Path]:
    """The quick evaluation of the tiny run in one process, and its output folder."""
    out = tmp_path_factory.mktemp("eval") / "local"
    return evaluate(run_dir=tiny_run, quick=True, out=out, device="cpu", progress=False), out


def _without_timing(report: dict) -> dict:
    """The report as JSON, less the fields that differ between equal evaluations (wall time, output folder)."""
    report = json.loads(json.dumps(report))
    for key in ("wall_time_s", "out"):
        report["meta"].pop(key)
    return report


def test_voe_metrics_on_a_synthetic_surprise_ranking_are_exact():
    # four pairs (possible, impossible) of per-step surprise; clip means: 1|2, 2|1, 1|3, 2|2; clip maxes: 1|4, 3|1,
    # 1|3, 2|2
    pairs = [
        (np.array([1.0, 1.0]), np.array([0.0, 4.0])),
        (np.array([1.0, 3.0]), np.array([1.0, 1.0])),
        (np.array([1.0, 1.0]), np.array([3.0, 3.0])),
        (np.array([2.0, 2.0]), np.array([2.0, 2.0])),
    ]
    res = voe_metrics(pairs)
    # mean: pairs won 1, lost 1, won 1, tied 1 -> (1 + 0 + 1 + 0.5) / 4
    assert res["mean"]["pairwise_accuracy"] == 0.625
    # mean AUROC: impossible {2, 1, 3, 2} vs possible {1, 2, 1, 2}: wins over all 16 cross pairs, ties 1/2
    imp, pos = [2, 1, 3, 2], [1, 2, 1, 2]
    wins = sum((i > p) + 0.5 * (i == p) for i in imp for p in pos)
    assert res["mean"]["auroc"] == wins / 16 == 0.6875
    assert res["max"]["pairwise_accuracy"] == 0.625
    imp, pos = [4, 1, 3, 2], [1, 3, 1, 2]
    assert res["max"]["auroc"] == sum((i > p) + 0.5 * (i == p) for i in imp for p in pos) / 16
    perfect = voe_metrics([(np.zeros(3), np.ones(3)), (np.ones(3), np.full(3, 2.0))])
    assert perfect["mean"]["pairwise_accuracy"] == 1.0 and perfect["mean"]["auroc"] == 0.875  # 1 vs 1 across pairs ties


def test_eval_of_a_tiny_untrained_model_writes_a_complete_report(local_report):
    report, out = local_report
    assert {"meta", "prediction", "voe", "probes", "exploration"} <= set(report)
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["meta"]["env_id"] == ENV and on_disk["meta"]["model_name"] == "pixel"
    pred = on_disk["prediction"]
    for split in ("test_id", "test_ood"):
        for label in ("1-step", f"{pred['horizon']}-step"):
            for name in ("model", "copy_last", "constant_velocity"):
                row = pred[split][label][name]
                assert set(row) >= {"mse", "mae", "psnr", "ssim", "n"} and row["n"] > 0
                assert all(np.isfinite(row[m]) for m in ("mse", "mae", "psnr", "ssim"))
        assert len(pred[split][f"{pred['horizon']}-step curve"]["model"]["mse"]) == pred["horizon"]
    voe = on_disk["voe"]
    assert set(voe["kinds"]) == {"vanish", "teleport"}
    assert voe["scorers"] == ["model", "observer", "copy_last", "motion", "constant_velocity"]
    for res in voe["kinds"].values():
        assert res["design"] == "quadruplet" and res["headline_metric"] == "relative" and res["n_items"] >= 1
        for name in voe["scorers"]:
            for how in ("mean", "max"):
                row = res[name][how]
                assert 0.0 <= row["relative"] <= 1.0 and 0.0 <= row["pairwise_accuracy"] <= 1.0
                assert 0.0 <= row["auroc"] <= 1.0
        assert isinstance(res["confounded"], list) and set(res["confounded"]) <= {"copy_last", "motion"}
    for name in voe["scorers"]:
        assert 0.0 <= voe["all"][name]["mean"]["auroc"] <= 1.0
    probes = on_disk["probes"]
    assert "uniform_motion" in probes["kinds"]
    for res in probes["kinds"].values():
        assert {"test_id", "test_ood"} <= set(res) and "by_factor" in res["test_ood"]
    ex = on_disk["exploration"]["policies"]
    assert set(ex) == {"random", "agent"}
    for row in ex.values():
        assert 0.0 <= row["floor_coverage"] <= 1.0 and row["steps"] == 10
    md = (out / "report.md").read_text()
    for heading in ("1. Prediction quality", "2. Violation of expectation", "3. Physical-law probes", "4. Exploration"):
        assert heading in md
    for png in on_disk["meta"]["plots"].values():
        assert (out / png).stat().st_size > 1000 and (out / png).read_bytes()[:4] == b"\x89PNG"


def test_voe_that_measured_nothing_says_so_and_a_zero_score_is_drawn_as_zero(local_report, tmp_path):
    """``eval --quick`` could plot every VoE bar at 0: a kind with no items (every draw skipped) drew nothing, and a
    measured 0 looked the same. Skipped kinds are named in the plot and the report; measured values are labelled."""
    from types import SimpleNamespace

    from tdwgym.agents.evaluation import voe
    from tdwgym.agents.evaluation.report import voe_bars, write_markdown, write_plots

    report = json.loads(json.dumps(local_report[0]))
    settings = SimpleNamespace(voe_pairs=2, voe_split="test_id", voe_observer=False, voe_quadruplets=True)
    plan = SimpleNamespace(env_id=ENV, env_kwargs={}, settings=settings, voe_kinds=("vanish", "teleport"))
    skipped = {"skipped": "no seed of 3 gave clips that differ visibly", "design": "quadruplet"}
    done = [(SimpleNamespace(group=(kind,)), skipped) for kind in plan.voe_kinds for _ in range(2)]
    report["voe"] = json.loads(json.dumps(voe.summary(plan, done)))
    assert report["voe"]["note"].startswith("VoE skipped: none of the 4 item(s) drawn (vanish, teleport)")
    assert all(res["n_items"] == 0 and res["skipped"] == 2 for res in report["voe"]["kinds"].values())
    assert voe_bars(report["voe"]) == (["vanish", "teleport"], {})  # no bar at all, rather than bars at 0
    plots = write_plots(report, tmp_path)
    assert (tmp_path / plots["voe"]).read_bytes()[:4] == b"\x89PNG"
    md = write_markdown(report, tmp_path / "report.md", plots).read_text()
    section = md.split("## 2. Violation of expectation")[1].split("## 3.")[0]
    assert "VoE skipped" in section and "![VoE](voe.png)" in section

    measured = json.loads(json.dumps(local_report[0]))["voe"]
    first = next(iter(measured["kinds"]))
    measured["kinds"][first]["model"]["mean"]["relative"] = 0.0
    kinds, bars = voe_bars(measured)
    assert bars["model"][kinds.index(first)] == 0.0  # a measured 0 is a value, drawn and labelled "0.00"
    assert all(not np.isnan(v) for values in bars.values() for v in values)


def test_episodes_evaluated_in_parts_merge_into_the_local_report(tiny_run, local_report, tmp_path):
    kw = EvalConfig.build(run_dir=tiny_run, quick=True, out=tmp_path / "merged", device="cpu", progress=False)
    n = count_episodes(kw)
    assert (
        n == 2 + 2 * 2 + 3 * 2 + 2
    )  # prediction (2 splits), VoE (2 kinds x 2 pairs), probes (3 kinds x 2), 2 policies
    # three parts, out of order and each mixing sections, as Ray tasks would return them
    parts = [evaluate_episodes(idx, kw) for idx in (range(9, n), range(0, 4), range(4, 9))]
    assert [len(p["results"]) for p in parts] == [n - 9, 4, 5]
    merged = merge_reports(parts, kw)
    assert _without_timing(merged) == _without_timing(local_report[0])
    on_disk = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert _without_timing(on_disk) == _without_timing(json.loads((local_report[1] / "report.json").read_text()))
    assert (tmp_path / "merged" / "report.md").exists() and set(on_disk["meta"]["plots"]) == {
        "prediction",
        "voe",
        "probes",
    }
    with pytest.raises(ValueError, match=r"missing \[9, 10"):
        merge_reports(parts[1:], kw)
    with pytest.raises(ValueError, match="more than one part"):
        merge_reports([*parts, parts[1]], kw)
    with pytest.raises(IndexError, match="outside"):
        evaluate_episodes([n], kw)


def test_eval_command_has_the_ray_flag():
    from tdwgym.commands.eval import add_parser as add_eval_parser

    parser = __import__("argparse").ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    assert parser.parse_args(["eval", "--run", "r"]).ray is None
    assert parser.parse_args(["eval", "--run", "r", "--ray"]).ray == ""
    assert parser.parse_args(["eval", "--run", "r", "--ray", "ray://head:10001"]).ray == "ray://head:10001"


def test_feature_models_mark_pixel_metrics_not_applicable(tmp_path):
    path = _save_model(tmp_path / "latent.pt", "latent")
    s = EvalSettings.quick()
    s.voe_kinds, s.voe_pairs, s.exploration_steps = ["vanish"], 1, 3
    report = evaluate(
        model_path=path,
        settings=s,
        out=tmp_path / "eval",
        probe_envs={"uniform_motion": ENV},
        device="cpu",
        progress=False,
    )
    assert report["prediction"]["pixel_model"] is False
    assert report["prediction"]["test_id"]["1-step"]["model"].startswith("n/a")
    assert isinstance(report["prediction"]["test_id"]["1-step"]["copy_last"]["mse"], float)
    assert 0.0 <= report["voe"]["kinds"]["vanish"]["model"]["mean"]["auroc"] <= 1.0  # surprise-based VoE still works
    assert report["probes"]["kinds"]["uniform_motion"]["test_id"]["model"].startswith("n/a")
    assert "n/a" in (tmp_path / "eval" / "report.md").read_text()


def test_eval_refuses_missing_run_or_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(run_dir=tmp_path / "nope")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no world model"):
        evaluate(run_dir=empty, quick=True, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate(model_path=tmp_path / "missing.pt", quick=True, progress=False)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a world-model checkpoint"):
        load_run(model_path=tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="exactly one"):
        load_run()


def test_eval_command_reports_errors_as_exit_code_2(tmp_path, capsys):
    from tdwgym.cli import main

    assert main(["eval", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.splitlines()) == 1


def test_evaluate_example(tiny_run, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "evaluate.py"),
            "--run",
            str(tiny_run),
            "--quick",
            "--out",
            str(tmp_path / "ex"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1-step" in proc.stdout and "VoE" in proc.stdout
    assert (tmp_path / "ex" / "report.md").exists()


def test_eval_and_record_run_an_agent_trained_at_another_resolution_than_its_world_model(tmp_path):
    """Regression: training downsamples observations for the world model (wm_resolution), so a run's agent sees
    larger frames than its model; eval's exploration section and `tdwgym record` used to feed the agent frames at
    the model's size and crash."""
    import gymnasium as gym
    from stable_baselines3 import PPO

    from tdwgym.agents.panels import record_episode

    agent_res = 24
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "step_0000000064"
    _save_model(ckpt / "world_model.pt")  # RES x RES, smaller than the agent's frames
    env = gym.make(ENV, resolution=agent_res)
    PPO("MlpPolicy", env, n_steps=8, batch_size=8, device="cpu").save(ckpt / "agent.zip")
    env.close()
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"dir": ckpt.name, "num_timesteps": 64}))
    (run / "config.json").write_text(
        json.dumps({"env_id": ENV, "env_kwargs": {"resolution": agent_res}, "frame_stack": 1})
    )
    report = evaluate(run_dir=run, quick=True, out=tmp_path / "eval", device="cpu", progress=False)
    assert "agent" in report["exploration"]["policies"]
    video = record_episode(ENV, out=tmp_path / "v.mp4", run_dir=run, steps=4, progress=False, device="cpu")
    assert video.stat().st_size > 0


@pytest.mark.parametrize("name", ["pixel", "progress", "rnd"])
def test_model_stepper_scores_and_predicts_with_one_forward_pass(name):
    import gymnasium as gym

    from tdwgym.agents.curiosity import actions_to_vectors
    from tdwgym.agents.evaluate import ModelStepper, pixel_predictor
    from tdwgym.agents.models import Transitions, make_world_model

    torch.manual_seed(0)
    space = gym.spaces.Discrete(9)
    pixel_kwargs = {"warp": True, "fovea": 0.5} if name != "rnd" else {}
    model = make_world_model(name, (3, RES, RES), 9, context_frames=2, device="cpu", **pixel_kwargs)
    pixel = pixel_predictor(model)
    calls = []
    if pixel is not None:
        pixel.encoder.register_forward_hook(lambda *_: calls.append(1))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, RES, RES, 3), dtype=np.uint8)
    stepper = ModelStepper(model)
    stepper.reset(frames[0])
    history = [frames[0], frames[0]]
    for t, action in enumerate([3, 0, 8], start=1):
        calls.clear()
        surprise, pred = stepper.step(action, frames[t], space)
        assert len(calls) == (1 if pixel is not None else 0)  # was 2: surprise and prediction computed apart
        ctx = torch.from_numpy(np.stack([h.transpose(2, 0, 1) for h in history[-2:]]))[None]
        act = torch.from_numpy(actions_to_vectors(np.asarray([action]), space))
        nxt = torch.from_numpy(frames[t].transpose(2, 0, 1).copy())[None]
        assert surprise == pytest.approx(float(model.surprise(Transitions(ctx, act, nxt))[0]), rel=1e-5, abs=1e-7)
        if pixel is None:
            assert pred is None
        else:
            with torch.no_grad():
                expected = pixel.predict(ctx, act).clamp(0, 1)[0].permute(1, 2, 0).numpy()
            np.testing.assert_allclose(pred, expected, rtol=1e-5, atol=1e-6)
        history.append(frames[t])


def test_an_external_model_runs_through_the_benchmark_by_its_two_method_protocol(tmp_path):
    """examples/external_model.py's copy-last model, named by file:attr, gets the same VoE and prediction figures
    as the built-in copy-last baseline (it computes the same thing)."""
    from pathlib import Path

    from tdwgym.agents.evaluate import evaluate

    example = Path(__file__).resolve().parents[2] / "examples" / "external_model.py"
    report = evaluate(model_path=f"{example}:CopyLastModel", quick=True, out=tmp_path / "ext", progress=False)
    for kind, res in report["voe"]["kinds"].items():
        for how in ("mean", "max"):
            assert res["model"][how]["pairwise_accuracy"] == res["copy_last"][how]["pairwise_accuracy"], kind
    pred = report["prediction"]["test_id"]["1-step"]
    assert pred["model"]["mse"] == pytest.approx(pred["copy_last"]["mse"], rel=1e-5)
    with pytest.raises(ValueError, match="no attribute 'Nope'"):
        evaluate(model_path=f"{example}:Nope", quick=True, out=tmp_path / "x", progress=False)


def test_frozen_evaluation_sets_export_the_clips_eval_scores(tmp_path):
    import json as json_

    from tdwgym.agents.evaluate import EvalSettings, evaluate
    from tdwgym.agents.evaluation.voe import _baseline_surprise
    from tdwgym.cli import main as agents_cli

    code = agents_cli(
        ["eval", "--export-sets", str(tmp_path / "sets"), "--quick", "--env-kwargs", '{"resolution": 32}']
    )
    assert code == 0
    index = json_.loads((tmp_path / "sets" / "index.json").read_text())
    assert index["resolution"] == 32 and index["voe"] and index["probes"]
    first = np.load(tmp_path / "sets" / index["voe"][0]["file"])
    assert str(first["design"]) == "quadruplet" and index["voe"][0]["design"] == "quadruplet"
    assert first["possible_a"].shape[1:] == (32, 32, 3) and first["possible_a"].shape == first["impossible_b"].shape
    assert first["possible_a_segmentation"].shape == first["possible_a"].shape[:3]
    assert first["impossible_a_depth"].dtype == np.float32
    probe = np.load(tmp_path / "sets" / index["probes"][0]["file"])
    assert probe["positions"].shape[:2] == (len(probe["frames"]), len(probe["object_ids"]))
    assert probe["depth"].shape == probe["segmentation"].shape == probe["frames"].shape[:3]
    # the same clips eval scores: copy-last's VoE surprise from the exported pair equals the report's
    example = __import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "external_model.py"
    report = evaluate(model_path=f"{example}:CopyLastModel", settings=EvalSettings.quick(), out=tmp_path / "e")
    kind = index["voe"][0]["kind"]
    per_pair = []
    for row in index["voe"]:
        if row["kind"] == kind:
            item = np.load(tmp_path / "sets" / row["file"])
            window = slice(int(item["event_frame"]) - 1, None)
            for role in ("possible_a", "possible_b"):
                per_pair.append(np.mean(_baseline_surprise(item[role], "copy_last")[window]))
    scores = report["voe"]["kinds"][kind]["copy_last"]["mean"]
    assert scores["surprise_possible"] == pytest.approx(np.mean(per_pair), rel=1e-9)


def test_a_local_evaluation_loads_the_model_once_from_one_config(tiny_run, tmp_path, monkeypatch):
    from tdwgym.agents.evaluation import plan as plan_module

    loads = []
    real = plan_module.load_run

    def counting_load_run(**kwargs):
        loads.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(plan_module, "load_run", counting_load_run)
    settings = EvalSettings.quick()
    settings.voe_pairs, settings.probe_clips, settings.exploration_episodes = 1, 1, 1
    config = EvalConfig(run_dir=tiny_run, out=tmp_path / "once", settings=settings, device="cpu", progress=False)
    report = evaluate(config)
    assert len(loads) == 1
    assert report["meta"]["settings"]["voe_pairs"] == 1
    with pytest.raises(TypeError, match="not both"):
        evaluate(config, quick=True)


def test_an_external_model_that_asks_for_segmentation_and_depth_gets_them(tmp_path):
    from tdwgym.agents.evaluate import EvalSettings, evaluate

    module = tmp_path / "seg_model.py"
    module.write_text(
        "import numpy as np\n"
        "CALLS = []\n"
        "class SegModel:\n"
        "    resolution = 32\n"
        "    passes = ('rgb', 'segmentation', 'depth')\n"
        "    def surprise(self, frames, segmentation, depth):\n"
        "        assert segmentation.shape == depth.shape == frames.shape[:3]\n"
        "        assert segmentation.dtype == np.int32 and depth.dtype == np.float32\n"
        "        CALLS.append(len(frames))\n"
        "        return (segmentation > 0).sum((1, 2)).astype(float)\n"
    )
    settings = EvalSettings.quick()
    settings.voe_kinds, settings.voe_observer = ["vanish"], False
    report = evaluate(model_path=f"{module}:SegModel", settings=settings, out=tmp_path / "e", progress=False)
    res = report["voe"]["kinds"]["vanish"]
    assert res["n_items"] >= 1 and 0.0 <= res["model"]["mean"]["relative"] <= 1.0


def test_the_objects_model_is_evaluated_on_its_own_passes(tmp_path):
    from tdwgym.agents.evaluate import EvalSettings, evaluate
    from tdwgym.agents.models import make_world_model
    from tdwgym.agents.pretraining import save_world_model

    model = make_world_model("objects", (24, 19), 10, device="cpu", hidden=8, resolution=32)
    save_world_model(model, tmp_path / "objects.pt")
    settings = EvalSettings.quick()
    settings.voe_kinds = ["vanish"]
    report = evaluate(model_path=tmp_path / "objects.pt", settings=settings, out=tmp_path / "e", progress=False)
    assert report["meta"]["model_name"] == "objects"
    res = report["voe"]["kinds"]["vanish"]
    assert res["n_items"] >= 1 and np.isfinite(res["model"]["mean"]["relative"])
    assert np.isfinite(res["observer"]["mean"]["relative"])


def test_a_quadruplets_spliced_clips_score_as_when_each_clip_is_scored_whole(tmp_path, monkeypatch):
    """The VoE section scores a quadruplet's spliced clips from the features and observer state of the clips they
    are spliced from (each start observed once): every scorer's surprise equals, bit for bit, that of scoring the
    four clips as given."""
    from tdwgym.agents.evaluation import plan as plan_module
    from tdwgym.agents.evaluation import voe
    from tdwgym.agents.models import make_world_model
    from tdwgym.agents.pretraining import save_world_model

    torch.manual_seed(0)
    model = make_world_model("objects", (24, 19), 10, device="cpu", hidden=8, resolution=32)
    save_world_model(model, tmp_path / "objects.pt")
    settings = EvalSettings.quick()
    settings.voe_kinds, settings.voe_pairs = ["teleport"], 1
    config = EvalConfig(model_path=tmp_path / "objects.pt", settings=settings, out=tmp_path / "e", device="cpu")
    plan = plan_module.make_plan(config)
    (ep,) = [e for e in plan.episodes if e.section == "voe"]
    calls = []
    real = voe.spliced_observer_surprise
    monkeypatch.setattr(voe, "spliced_observer_surprise", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(ep.seed)
    fast = voe.run_section_episode(plan, ep)
    assert fast["design"] == "quadruplet" and calls
    monkeypatch.setattr(voe, "is_spliced", lambda *a: False)
    torch.manual_seed(ep.seed)
    whole = voe.run_section_episode(plan, ep)
    assert set(fast) == set(whole)
    for name in ("model", "observer", "copy_last", "motion", "constant_velocity"):
        assert len(fast[name]) == 4 and all(
            np.array_equal(x, y) for x, y in zip(fast[name], whole[name], strict=True)
        ), name


def test_the_report_does_not_depend_on_the_worker_count(tmp_path, capsys, monkeypatch):
    """Episodes evaluated by a pool of processes (one task each, in any order) give the report of one process, to
    the last bit (each episode seeds what it draws from its own seeds); ``--workers`` is a positive int, not with
    --ray; the default is one worker per idle core (cores less the load average), at least 1, at most 4."""
    from tdwgym.agents.evaluation.plan import MAX_DEFAULT_WORKERS, default_workers
    from tdwgym.agents.models import make_world_model
    from tdwgym.agents.pretraining import save_world_model
    from tdwgym.cli import main

    torch.manual_seed(0)
    model = make_world_model("objects", (24, 19), 10, device="cpu", hidden=8, resolution=32)
    save_world_model(model, tmp_path / "objects.pt")
    settings = EvalSettings.quick()
    settings.voe_pairs, settings.probe_clips = 3, 1
    reports = [
        evaluate(
            model_path=tmp_path / "objects.pt",
            settings=settings,
            out=tmp_path / f"w{w}",
            device="cpu",
            progress=False,
            workers=w,
        )
        for w in (1, 3)
    ]
    assert reports[0]["voe"]["kinds"]["vanish"]["n_items"] >= 1
    assert _without_timing(reports[0]) == _without_timing(reports[1])
    assert 1 <= default_workers() <= MAX_DEFAULT_WORKERS and default_workers("cuda") == 1
    cores = len(os.sched_getaffinity(0))
    for load, idle in ((0.0, cores), (cores - 0.7, 1), (cores + 3.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert default_workers() == min(idle, MAX_DEFAULT_WORKERS), load
    assert main(["eval", "--model", "m.pt", "--workers", "2", "--ray"]) == 2
    assert "--workers: not with --ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--model", "m.pt", "--workers", "0"])
