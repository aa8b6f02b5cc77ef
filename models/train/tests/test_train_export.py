"""Export to our float checkpoint folder: safetensors layout, config.json and tokenizer.json as specified.

With EARSHOT_CLI pointing at a built `earshot`, the export is also imported by the engine.
"""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from train_fixtures import make_dataset, train_tokenizer

from earshot_train import export, train  # noqa: E402
from earshot_train.augment import TRAIN_CONFIG  # noqa: E402
from earshot_train.tokens import Tokenizer  # noqa: E402


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp()
        make_dataset(cls.root, synth_shards=1, per_shard=10)
        cls.tok = Tokenizer(train_tokenizer(cls.root))
        cfg = train.TrainConfig(d_model=16, n_head=2, n_audio_layer=2, n_text_layer=1, n_audio_ctx=150,
                                n_text_ctx=32)
        run_dir = os.path.join(cls.root, "runs", "x")
        os.makedirs(run_dir)
        cls.trainer = train.Trainer(cfg, run_dir, cls.root, cls.tok)
        cls.trainer.save()
        cls.out = os.path.join(cls.root, "export")
        cls.config = export.export(os.path.join(run_dir, "last.pt"), cls.out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_safetensors_layout_and_values(self):
        with open(os.path.join(self.out, "model.safetensors"), "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        self.assertEqual(n % 8, 0)
        header = json.loads(raw[8: 8 + n])
        self.assertEqual(header.pop("__metadata__"), {"format": "pt"})
        end = 0
        for name in sorted(header):  # contiguous, in name order, F32 little-endian
            info = header[name]
            self.assertEqual(info["dtype"], "F32")
            self.assertEqual(info["data_offsets"][0], end)
            end = info["data_offsets"][1]
            self.assertEqual(end - info["data_offsets"][0], 4 * int(np.prod(info["shape"])))
        self.assertEqual(8 + n + end, len(raw))
        tensors = export.read_safetensors(os.path.join(self.out, "model.safetensors"))
        params = dict(self.trainer.model.named_parameters())
        self.assertEqual(set(tensors), set(params))  # parameters only: no sinusoids, no masks, tied output
        self.assertNotIn("encoder.positional_embedding", tensors)
        for name, p in params.items():
            np.testing.assert_array_equal(tensors[name], p.detach().numpy(), err_msg=name)
        self.assertEqual(tensors["encoder.conv1.weight"].shape, (16, 80, 3))
        self.assertEqual(tensors["decoder.token_embedding.weight"].shape, (self.tok.n_vocab, 16))

    def test_weight_average_is_exported_unless_raw_weights(self):
        state = torch.load(os.path.join(self.root, "runs", "x", "last.pt"))
        self.assertIn("ema", state)  # on by default
        state["ema"] = {k: v + 0.5 for k, v in state["ema"].items()}  # an average that differs from the weights
        path = os.path.join(self.root, "averaged.pt")
        torch.save(state, path)
        for raw, source in ((False, "ema"), (True, "model")):
            out = os.path.join(self.root, f"export-{source}")
            config = export.export(path, out, raw_weights=raw)
            tensors = export.read_safetensors(os.path.join(out, "model.safetensors"))
            for name, value in tensors.items():
                np.testing.assert_array_equal(value, state[source][name].numpy(), err_msg=f"{source} {name}")
            self.assertEqual(config["card"]["extra"]["weights"],
                             "trained" if raw else f"moving average, decay {train.TrainConfig().ema_decay:g}")

    def test_config(self):
        with open(os.path.join(self.out, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["format"], "earshot-checkpoint")
        self.assertEqual(config["format_version"], 1)
        self.assertEqual(config["dims"], {"n_mels": 80, "n_audio_ctx": 150, "n_audio_state": 16, "n_audio_head": 2,
                                          "n_audio_layer": 2, "n_text_ctx": 32, "n_text_state": 16,
                                          "n_text_head": 2, "n_text_layer": 1, "n_vocab": self.tok.n_vocab,
                                          "conv1_stride": 1})
        self.assertTrue(config["variable_length_audio"])
        lead_lo, lead_hi = TRAIN_CONFIG.lead_silence  # the engine's edge silence is one the model was trained with
        self.assertTrue(lead_lo * 1000 <= config["edge_silence_ms"] <= lead_hi * 1000)
        self.assertEqual(config["mel"], {"sample_rate": 16000, "n_fft": 400, "hop_length": 160, "n_mels": 80,
                                         "chunk_seconds": 30})
        self.assertEqual(config["special_tokens"], {"sot": 1, "eot": 2})
        self.assertEqual(config["default_prompt"], [1])
        self.assertEqual(config["begin_suppress_tokens"], [])  # EOT first = no speech
        self.assertIn(0, config["suppress_tokens"])
        self.assertIn(1, config["suppress_tokens"])
        self.assertNotIn(2, config["suppress_tokens"])
        card = config["card"]
        self.assertEqual(card["languages"], ["en"])
        self.assertIn("MODEL_CARD.md", card["description"])
        self.assertTrue(card["name"].startswith("earshot-en-"))

    def test_tokenizer(self):
        with open(os.path.join(self.out, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
        self.assertEqual(tok["kind"], "sentencepiece")
        self.assertEqual(len(tok["pieces"]), self.tok.n_vocab)
        self.assertEqual(tok["pieces"][:3], ["<unk>", "<s>", "</s>"])
        self.assertEqual(tok["special_ids"], [0, 1, 2])
        self.assertTrue(any(p.startswith("\u2581") for p in tok["pieces"]))

    def test_engine_imports_the_export(self):
        cli = os.environ.get("EARSHOT_CLI")
        if not cli or not os.path.exists(cli):
            self.skipTest("set EARSHOT_CLI to a built earshot binary")
        out = os.path.join(self.root, "m.earshot")
        r = subprocess.run([cli, "import", "checkpoint", self.out, "-o", out, "--dtype", "f32"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertGreater(os.path.getsize(out), 4 * sum(p.numel() for p in self.trainer.model.parameters()))

    def test_card_wer_from_an_evaluation_report(self):
        report = {"sets": {"dev": {"rows": [
            {"label": "vctk", "reference_words": 40, "beams": {"1": {"wer_percent": 31.5}, "5": {"wer_percent": 29.0}}},
            {"label": "all", "reference_words": 90, "beams": {"1": {"wer_percent": 33.25}, "5": {"wer_percent": None}}},
        ]}}}
        self.assertEqual(export.card_wer(report), [
            {"test_set": "dev/vctk", "decoding": "greedy", "wer": 31.5, "words": 40},
            {"test_set": "dev/vctk", "decoding": "beam5", "wer": 29.0, "words": 40},
            {"test_set": "dev/all", "decoding": "greedy", "wer": 33.25, "words": 90},
        ])
        out = os.path.join(self.root, "export-wer")
        config = export.export(os.path.join(self.root, "runs", "x", "last.pt"), out, wer_report=report)
        self.assertEqual(len(config["card"]["wer"]), 3)
        with open(os.path.join(out, "config.json")) as f:
            self.assertEqual(json.load(f)["card"]["wer"][2]["wer"], 33.25)


if __name__ == "__main__":
    unittest.main()
