"""The training loop: schedule, loss on padded batches, exact resume, the one-command CLI, quick evaluation."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import torch

from train_fixtures import make_dataset, train_tokenizer

from earshot_train import export, heldout_loss, train  # noqa: E402
from earshot_train.dataset import collate  # noqa: E402
from earshot_train.evaluate import greedy_decode, word_errors  # noqa: E402
from earshot_train.parallel import Peers, Workers, watch_workers  # noqa: E402
from earshot_train.tokens import Tokenizer  # noqa: E402

TINY = dict(d_model=16, n_head=2, n_audio_layer=1, n_text_layer=1, n_audio_ctx=160, n_text_ctx=64,
            batch_frames=1500, warmup_steps=3, spec_augment_from_step=2, eval_utts=6, decode_utts=3, print_utts=1)


def tiny_config(**overrides) -> train.TrainConfig:
    cfg = train.TrainConfig()
    for k, v in dict(TINY, **overrides).items():
        setattr(cfg, k, v)
    return cfg


class LoopTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.set_num_threads(1)
        cls.root = tempfile.mkdtemp()
        make_dataset(cls.root)
        cls.tok_path = train_tokenizer(cls.root)
        cls.tok = Tokenizer(cls.tok_path)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def trainer(self, run="t", **overrides):
        run_dir = os.path.join(self.root, "runs", run)
        os.makedirs(run_dir, exist_ok=True)
        t = train.Trainer(tiny_config(**overrides), run_dir, self.root, self.tok)
        t.index.scan()
        return t


class ScheduleTest(unittest.TestCase):
    def test_warmup_then_decay(self):
        cfg = train.TrainConfig(lr=1e-3, warmup_steps=100)
        self.assertAlmostEqual(train.learning_rate(cfg, 1), 1e-5)
        self.assertAlmostEqual(train.learning_rate(cfg, 100), 1e-3)
        self.assertAlmostEqual(train.learning_rate(cfg, 400), 5e-4)
        cfg = train.TrainConfig(lr=1e-3, warmup_steps=100, schedule="cosine", total_steps=1100, min_lr_ratio=0.1)
        self.assertAlmostEqual(train.learning_rate(cfg, 600), 1e-3 * (0.1 + 0.9 * 0.5))
        self.assertAlmostEqual(train.learning_rate(cfg, 5000), 1e-4)


class TrainStepTest(LoopTestBase):
    def test_padded_batch_loss_is_the_sum_of_single_utterance_losses(self):
        for stride in (1, 2, 4):  # the masks follow the front end's frames per position
            t = self.trainer(f"pad{stride}", conv1_stride=stride)
            keys = t.index.by_group["synth"][:4]
            self.assertGreater(len({t.index.utterances[k].n_frames % 4 for k in keys}), 1)
            t.model.eval()

            def loss(ks):
                b = collate(t.index, ks, self.tok.sot, self.tok.eot)
                return float(train.sequence_loss(t.model(b.mel, b.tokens_in, b.n_frames), b.targets, 0.1))

            self.assertAlmostEqual(loss(keys), sum(loss([k]) for k in keys), places=3, msg=f"stride {stride}")

    def test_resume_continues_exactly(self):
        a = self.trainer("a", dropout=0.1)  # its masks come from the saved random state too
        for _ in range(3):
            a.train_step(a.sampler.next_step())
        path = os.path.join(a.run_dir, "last.pt")
        a.save()
        losses_a = [a.train_step(a.sampler.next_step())["loss"] for _ in range(3)]
        b = self.trainer("b", dropout=0.1)
        b.load_state_dict(torch.load(path))
        losses_b = [b.train_step(b.sampler.next_step())["loss"] for _ in range(3)]
        self.assertEqual(losses_a, losses_b)
        for (name, pa), pb in zip(a.model.named_parameters(), b.model.parameters()):
            self.assertTrue(torch.equal(pa, pb), name)
        for name, wa in a.ema.weights.items():
            self.assertTrue(torch.equal(wa, b.ema.weights[name]), name)
        self.assertEqual(a.stats, b.stats)
        self.assertFalse(os.path.exists(path + ".tmp"))

    def test_weight_average_follows_each_update(self):
        t = self.trainer("ema", ema_decay=0.75)
        for _ in range(2):
            t.train_step(t.sampler.next_step())
        previous = {k: v.clone() for k, v in t.ema.weights.items()}
        t.train_step(t.sampler.next_step())
        for k, v in t.model.state_dict().items():
            torch.testing.assert_close(t.ema.weights[k], 0.75 * previous[k] + 0.25 * v)
        self.assertTrue(any(not torch.equal(t.ema.weights[k], v) for k, v in t.model.state_dict().items()))
        evaluated = t.ema.as_model(t.model)
        for k, v in evaluated.state_dict().items():
            self.assertTrue(torch.equal(v, t.ema.weights[k]), k)
        self.assertFalse(evaluated.training)
        self.assertTrue(t.model.training)  # the trained model is untouched

    def test_loss_goes_down(self):
        t = self.trainer("c", lr=1e-2, spec_augment_from_step=1000)
        batch = t.sampler.next_step()
        first = t.train_step(batch)["loss"]
        for _ in range(15):
            last = t.train_step(batch)["loss"]
        self.assertLess(last, first - 0.5)

    def test_greedy_decode_stops(self):
        t = self.trainer()
        b = collate(t.index, t.index.by_group["noise"][:2] + t.index.by_group["synth"][:1], self.tok.sot,
                    self.tok.eot)
        hyps = greedy_decode(t.model, b.mel, b.n_frames, self.tok.sot, self.tok.eot, self.tok.suppress_ids)
        self.assertEqual(len(hyps), 3)
        for h, n in zip(hyps, b.n_frames.tolist()):
            self.assertLessEqual(len(h), 10 + n * 8 // 100)
            self.assertFalse(set(h) & set(self.tok.special_ids))


class CommandLineTest(LoopTestBase):
    def args(self, *extra, shape=True):
        """Command line of a tiny run; shape=False leaves the model-shape options out."""
        tiny = []
        for k, v in TINY.items():
            if shape or k not in train.MODEL_SHAPE_FIELDS:
                tiny += ["--" + k.replace("_", "-"), str(v)]
        return ["--data", self.root, "--tokenizer", self.tok_path, "--run", "cli", "--eval-minutes", "0"] + tiny + \
            list(extra)

    def test_start_refuse_overwrite_and_resume(self):
        self.assertEqual(train.main(self.args("--max-steps", "2")), 0)
        run_dir = os.path.join(self.root, "runs", "cli")
        self.assertEqual(train.main(self.args("--max-steps", "3")), 2)  # exists: needs --resume
        self.assertEqual(train.main(self.args("--max-steps", "3", "--resume", "--lr", "5e-4")), 0)
        state = torch.load(os.path.join(run_dir, "last.pt"))
        self.assertEqual(state["step"], 3)
        self.assertEqual(state["config"]["lr"], 5e-4)
        self.assertTrue(os.path.exists(os.path.join(run_dir, "best.pt")))
        with open(os.path.join(run_dir, "train.log")) as f:
            log = f.read()
        for text in ("new run", "resuming", "eval heldout_synth", "eval real_holdout", "REF:", "HYP:", "audio-s/s"):
            self.assertIn(text, log)
        with self.assertRaises(ValueError):  # the model's shape is fixed for a run
            train.main(self.args("--resume", "--d-model", "32"))

    def test_init_from_starts_a_new_run_with_the_weights(self):
        base = self.args("--max-steps", "2", "--min-snr-db", "15", "--ctc-weight", "0.5")
        base[base.index("--run") + 1] = "base"
        self.assertEqual(train.main(base), 0)
        source = torch.load(os.path.join(self.root, "runs", "base", "last.pt"))
        tuned = self.args("--max-steps", "1", "--real-share", "0.5", "--init-from",
                          os.path.join(self.root, "runs", "base", "last.pt"), shape=False)
        tuned[tuned.index("--run") + 1] = "tuned"
        self.assertEqual(train.main(tuned), 0)
        state = torch.load(os.path.join(self.root, "runs", "tuned", "last.pt"))
        self.assertEqual(state["step"], 1)  # a new run: its own step count and warm-up
        self.assertEqual(state["config"]["real_share"], 0.5)
        defaults = train.TrainConfig()  # the source's stage options do not carry over; its shape does
        self.assertEqual(state["config"]["min_snr_db"], defaults.min_snr_db)
        self.assertEqual(state["config"]["ctc_weight"], defaults.ctc_weight)
        for k in train.MODEL_SHAPE_FIELDS:  # not on the tuned command line: taken from the source
            self.assertEqual(state["config"][k], TINY.get(k, getattr(defaults, k)))
        self.assertEqual(state["tokenizer_model"], source["tokenizer_model"])
        moved = [k for k, v in state["model"].items() if not torch.equal(v, source["model"][k])]
        self.assertTrue(moved)  # one update away from the source, not from a fresh initialisation
        delta = max(float((state["model"][k] - source["model"][k]).abs().max()) for k in moved)
        self.assertLess(delta, 0.05)
        # the new stage's weight average starts from the weights it was given, not from a fresh initialisation
        decay = state["config"]["ema_decay"]
        for k, v in state["ema"].items():
            torch.testing.assert_close(v, decay * source["model"][k] + (1 - decay) * state["model"][k])

    def test_init_from_a_model_folder(self):
        """A model folder (`earshot export` of a shipped file, here the recipe's own export) starts a stage: its
        weights, and a tokenizer rebuilt from its pieces with the data tokenizer's settings."""
        base = self.args("--max-steps", "2")
        base[base.index("--run") + 1] = "folder-base"
        self.assertEqual(train.main(base), 0)
        folder = os.path.join(self.root, "folder-export")
        export.export(os.path.join(self.root, "runs", "folder-base", "last.pt"), folder)
        weights = export.read_safetensors(os.path.join(folder, "model.safetensors"))
        tuned = self.args("--max-steps", "1", "--init-from", folder, shape=False)
        tuned[tuned.index("--run") + 1] = "folder-tuned"
        self.assertEqual(train.main(tuned), 0)
        state = torch.load(os.path.join(self.root, "runs", "folder-tuned", "last.pt"))
        self.assertEqual(state["step"], 1)
        for k in train.MODEL_SHAPE_FIELDS:  # from the folder's config.json
            self.assertEqual(state["config"][k], TINY.get(k, getattr(train.TrainConfig(), k)))
        self.assertEqual(Tokenizer(model_proto=state["tokenizer_model"]).pieces(), self.tok.pieces())
        self.assertEqual(set(state["model"]), set(weights))
        delta = max(float((state["model"][k] - torch.from_numpy(weights[k].copy())).abs().max()) for k in weights)
        self.assertGreater(delta, 0)
        self.assertLess(delta, 0.05)  # one update away from the folder's weights

        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            pieces = json.load(f)
        pieces["kind"] = "bytelevel"
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(pieces, f)
        tuned[tuned.index("--run") + 1] = "folder-bytelevel"
        with self.assertRaisesRegex(ValueError, "SentencePiece"):
            train.main(tuned)

    def test_heldout_loss_is_the_same_from_every_form_of_the_weights(self):
        """heldout_loss reads a checkpoint, its export folder and (through the CLI) the .earshot file made from it:
        f32 throughout, so all three must score the same."""
        base = self.args("--max-steps", "2")
        base[base.index("--run") + 1] = "loss-base"
        self.assertEqual(train.main(base), 0)
        checkpoint = os.path.join(self.root, "runs", "loss-base", "last.pt")
        folder = os.path.join(self.root, "loss-export")
        export.export(checkpoint, folder)
        forms = [checkpoint, folder]
        cli = os.environ.get("EARSHOT_CLI") or heldout_loss.DEFAULT_CLI
        if os.access(cli, os.X_OK):
            model_file = os.path.join(self.root, "loss.earshot")
            subprocess.run([cli, "import", "checkpoint", folder, "-o", model_file, "--dtype", "f32"], check=True,
                           capture_output=True)
            forms.append(model_file)
        else:
            print(f"skipping the .earshot form: no CLI at {cli} (scripts/setup.sh builds it)")
        losses = []
        for path in forms:
            model, tok = heldout_loss.load_weights(path, self.tok_path, cli)
            losses.append(heldout_loss.model_heldout_losses(model, tok, self.root))
        self.assertEqual(set(losses[0]), {"heldout_synth", "real_holdout"})
        for form, other in zip(forms[1:], losses[1:]):
            for group, (loss, tokens) in losses[0].items():
                self.assertEqual(other[group][1], tokens, form)
                self.assertAlmostEqual(other[group][0], loss, places=5, msg=form)
        with self.assertRaisesRegex(ValueError, "export"):
            heldout_loss.load_weights(os.path.join(self.root, "missing.earshot"), self.tok_path, cli)

    def test_init_from_can_change_the_front_end_stride(self):
        """The stride shapes no parameter: a stride-2 run starts from a stride-1 checkpoint's weights."""
        base = self.args("--max-steps", "1")
        base[base.index("--run") + 1] = "s1"
        self.assertEqual(train.main(base), 0)
        source = os.path.join(self.root, "runs", "s1", "last.pt")
        strided = self.args("--max-steps", "2", "--conv1-stride", "2", "--init-from", source, shape=False)
        strided[strided.index("--run") + 1] = "s2"
        self.assertEqual(train.main(strided), 0)
        state = torch.load(os.path.join(self.root, "runs", "s2", "last.pt"))
        self.assertEqual((state["config"]["conv1_stride"], state["dims"]["conv1_stride"]), (2, 2))
        self.assertEqual(state["step"], 2)
        resumed = self.args("--max-steps", "3", "--resume", "--conv1-stride", "1", shape=False)
        resumed[resumed.index("--run") + 1] = "s2"
        with self.assertRaisesRegex(ValueError, "model shape"):
            train.main(resumed)
        # stride 4: two CTC slots per position, each starting from the stride-2 run's head
        wider = self.args("--max-steps", "1", "--conv1-stride", "4", "--init-from",
                          os.path.join(self.root, "runs", "s2", "last.pt"), shape=False)
        wider[wider.index("--run") + 1] = "s4"
        self.assertEqual(train.main(wider), 0)
        head = torch.load(os.path.join(self.root, "runs", "s4", "last.pt"))["ctc_head"]["weight"]
        n_classes = len(train.CTC_ALPHABET) + 1
        self.assertEqual(tuple(head.shape), (2 * n_classes, state["ctc_head"]["weight"].shape[1]))
        for slot in range(2):
            delta = float((head[slot * n_classes:(slot + 1) * n_classes] - state["ctc_head"]["weight"]).abs().max())
            self.assertLess(delta, 0.05)


class FailsToArrive:
    """Unpickles into an exit: a worker process that dies while starting, before it can join."""

    def __reduce__(self):
        return (sys.exit, (5,))


def never_called(peers):
    raise AssertionError("the worker should have died before joining")


class DataParallelTest(LoopTestBase):
    def test_workers_partition_every_micro_batch(self):
        steps = [[("synth", list("abcde")), ("real", ["x"]), ("noise", ["n1", "n2"])]]
        for world in (1, 2, 3):
            parts = [Peers(rank, world).share(steps[0]) for rank in range(world)]
            for pool, keys in steps[0]:
                got = sorted(k for part in parts for p, ks in part if p == pool for k in ks)
                self.assertEqual(got, sorted(keys), (world, pool))
            self.assertTrue(all(keys for part in parts for _, keys in part))  # no empty micro-batches

    def test_a_failed_worker_is_noticed_and_a_finished_one_is_not(self):
        class Proc:
            def __init__(self, exitcode):
                self.exitcode = exitcode

        for codes, expected in (([None, 0], []), ([None, 1], [1]), ([-9], [-9])):
            seen = []
            noticed = threading.Event()
            done = watch_workers([Proc(c) for c in codes], lambda code: (seen.append(code), noticed.set()),
                                 interval=0.01)
            noticed.wait(0.5)
            done.set()
            self.assertEqual(seen, expected, codes)

    def test_a_worker_that_dies_while_starting_is_reported_not_waited_for(self):
        workers = Workers(2, never_called, (FailsToArrive(),))
        with self.assertRaisesRegex(RuntimeError, "exit code 5 before joining"):
            workers.connect(startup_timeout=120)
        workers.join(timeout=10)

    def run_cli(self, run, *extra):
        """The training command in its own process (workers are spawned processes; a hang fails, not blocks)."""
        args = CommandLineTest.args(self, "--max-steps", "4", "--spec-augment-from-step", "1000", "--lr", "3e-3",
                                    "--eval-minutes", "1000", "--log-seconds", "0", *extra)
        args[args.index("--run") + 1] = run
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        proc = subprocess.run([sys.executable, "-m", "earshot_train.train"] + args, cwd=here, capture_output=True,
                              text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        run_dir = os.path.join(self.root, "runs", run)
        with open(os.path.join(run_dir, "train.log")) as f:
            losses = [float(x) for x in re.findall(r"step \d+ loss ([0-9.]+)", f.read())]
        return torch.load(os.path.join(run_dir, "last.pt")), losses

    def test_two_workers_follow_the_single_process_run(self):
        # fp32: bf16 matmuls round differently on each worker's share of the batch than on the whole of it.
        one, losses_one = self.run_cli("w1", "--precision", "fp32")
        two, losses_two = self.run_cli("w2", "--workers", "2", "--precision", "fp32")
        self.assertEqual(len(losses_one), 4)
        for a, b in zip(losses_one, losses_two):  # the whole step's loss, not one worker's share of it
            self.assertAlmostEqual(a, b, places=4)
        self.assertEqual(two["step"], 4)
        self.assertEqual(one["stats"]["audio_seconds"], two["stats"]["audio_seconds"])
        self.assertEqual(one["sampler"], two["sampler"])
        for name, value in one["model"].items():
            self.assertTrue(torch.allclose(value, two["model"][name], atol=1e-5), name)
        with open(os.path.join(self.root, "runs", "w2", "train.log")) as f:
            self.assertIn("2 workers of 1 threads each", f.read())


class WordErrorTest(unittest.TestCase):
    def test_counts_edits_after_normalising(self):
        self.assertEqual(word_errors("Turn on the lights.", "turn on the light"), (1, 4))
        self.assertEqual(word_errors("It's twenty-five.", "its twenty five"), (1, 3))
        self.assertEqual(word_errors("", "hello"), (1, 0))


if __name__ == "__main__":
    unittest.main()
