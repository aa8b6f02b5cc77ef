"""Gradients of the training loss: float32 and bf16-autocast autograd against float64, and float64 against finite
differences.

This guards the setting TOOLCHAIN.md warns about: with oneDNN enabled, Conv1d weight gradients on this machine's
torch build are wrong (relative error ~0.9, sometimes 1e40) and training diverges. The trainer keeps oneDNN off
except inside a bf16 step, where the model's convolutions are matmuls (model.MatmulConv1d).
"""
import contextlib
import copy
import unittest
from unittest import mock

import torch

import train_fixtures  # noqa: F401  (puts earshot_train on the path)
from earshot_train import train  # noqa: E402  (importing it turns oneDNN off)
from earshot_train.model import Dims, MatmulConv1d, ResidualBlock, Whisper  # noqa: E402

DIMS = Dims(n_mels=8, n_audio_ctx=12, n_audio_state=16, n_audio_head=2, n_audio_layer=1, n_text_ctx=8,
            n_text_state=16, n_text_head=2, n_text_layer=1, n_vocab=24)


def small_model(dtype):
    torch.manual_seed(0)
    model = Whisper(DIMS).init_weights(seed=1, std=0.3)
    with torch.no_grad():  # non-trivial LayerNorms and biases, so their gradients are exercised too
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape))
    return model.to(dtype)


def batch(dtype):
    g = torch.Generator().manual_seed(2)
    mel = torch.randn(3, DIMS.n_mels, 20, generator=g).to(dtype)
    n_frames = torch.tensor([20, 13, 7])  # variable lengths: the padded positions are masked
    tokens = torch.randint(3, DIMS.n_vocab, (3, 6), generator=g)
    tokens[:, 0] = 1
    targets = torch.randint(3, DIMS.n_vocab, (3, 6), generator=g)
    targets[1, 4:] = -100
    targets[2, 2:] = -100
    return mel, n_frames, tokens, targets


def loss_of(model, dtype):
    mel, n_frames, tokens, targets = batch(dtype)
    logits = model(mel, tokens, n_frames)
    assert logits.dtype == dtype
    return train.sequence_loss(logits, targets, label_smoothing=0.1) / int((targets != -100).sum())


@contextlib.contextmanager
def float64_throughout():
    """model.py runs the attention softmax and the logits in float32 (`.float()`), which is right for training
    but would swamp a float64 reference with float32 rounding: here `.float()` leaves float64 tensors alone."""
    to_float32 = torch.Tensor.float

    def keep_float64(self, *args, **kwargs):
        return self if self.dtype == torch.float64 else to_float32(self, *args, **kwargs)

    with mock.patch.object(torch.Tensor, "float", keep_float64):
        yield


class GradientTest(unittest.TestCase):
    def test_onednn_is_off(self):
        self.assertFalse(torch.backends.mkldnn.enabled)

    def test_float32_gradients_match_float64(self):
        m32 = small_model(torch.float32)
        m64 = copy.deepcopy(m32).to(torch.float64)
        loss_of(m32, torch.float32).backward()
        self.assert_gradients_near_float64(m32, m64, 1e-4)

    def test_float64_gradients_match_finite_differences(self):
        model = small_model(torch.float64)
        with float64_throughout():
            loss_of(model, torch.float64).backward()
        params = dict(model.named_parameters())
        probes = [("encoder.conv1.weight", (3, 2, 1)), ("encoder.conv2.weight", (5, 7, 2)),
                  ("encoder.blocks.0.attn.key.weight", (1, 4)), ("encoder.blocks.0.mlp_ln.weight", (6,)),
                  ("decoder.token_embedding.weight", (7, 3)), ("decoder.positional_embedding", (2, 9)),
                  ("decoder.blocks.0.cross_attn.value.bias", (11,)), ("decoder.ln.bias", (0,))]
        eps = 1e-6
        for name, idx in probes:
            p = params[name]
            with torch.no_grad(), float64_throughout():
                orig = float(p[idx])
                p[idx] = orig + eps
                up = float(loss_of(model, torch.float64))
                p[idx] = orig - eps
                down = float(loss_of(model, torch.float64))
                p[idx] = orig
            numeric = (up - down) / (2 * eps)
            analytic = float(p.grad[idx])
            self.assertAlmostEqual(analytic, numeric, delta=1e-6 + 1e-5 * abs(numeric), msg=name)

    def test_dropout_scales_each_residual_branch_in_training_only(self):
        torch.manual_seed(3)
        block = ResidualBlock(16, 2, cross_attention=False).double()
        x = torch.randn(2, 5, 16, dtype=torch.float64)
        model = Whisper(DIMS).set_dropout(0.5)
        self.assertEqual({m.dropout for m in model.modules() if isinstance(m, ResidualBlock)}, {0.5})
        block.dropout = 0.5
        torch.manual_seed(7)
        y = block(x)
        torch.manual_seed(7)  # the same masks, drawn in the same order: attention branch, then MLP branch
        attn = block.attn(block.attn_ln(x))
        x1 = x + attn * torch.nn.functional.dropout(torch.ones_like(attn), 0.5, True)
        mlp = block.mlp(block.mlp_ln(x1))
        expected = x1 + mlp * torch.nn.functional.dropout(torch.ones_like(mlp), 0.5, True)
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)
        block.eval()
        plain = x + block.attn(block.attn_ln(x))
        torch.testing.assert_close(block(x), plain + block.mlp(block.mlp_ln(plain)), rtol=0, atol=1e-12)
        with self.assertRaises(ValueError):
            model.set_dropout(1.0)

    def test_ctc_gradients_match_float64(self):
        """The auxiliary CTC loss reaches the encoder through its own head: both must get float64-exact gradients."""
        texts = ["a cab", "bad", "ok"]  # 5, 3 and 2 labels for 10, 7 and 4 encoder positions
        models, heads = {}, {}
        for dtype in (torch.float32, torch.float64):
            models[dtype] = small_model(torch.float32).to(dtype)
            heads[dtype] = train.ctc_head(DIMS.n_audio_state, seed=3).to(dtype)
            mel, n_frames, _, _ = batch(dtype)
            with float64_throughout():
                audio, _ = models[dtype].encoder(mel, n_frames)
                loss, n_labels = train.ctc_loss(heads[dtype], audio, n_frames, texts)
            self.assertEqual(n_labels, 10)
            self.assertTrue(torch.isfinite(loss) and float(loss) > 0)
            loss.backward()
        pairs = list(zip(models[torch.float32].encoder.named_parameters(), models[torch.float64].encoder.parameters()))
        pairs += list(zip(heads[torch.float32].named_parameters(), heads[torch.float64].parameters()))
        for (name, p32), p64 in pairs:
            err = float((p32.grad.double() - p64.grad).norm() / p64.grad.norm().clamp_min(1e-12))
            self.assertLess(err, 1e-4, f"{name}: relative gradient error {err:.2e}")

    def test_ctc_slots_are_positions_in_time_order(self):
        """A two-slot head (stride 4) scores like an explicit sequence in which position p's slots are steps 2p and
        2p + 1; a transcript longer than the positions but not the slots is learnable."""
        g = torch.Generator().manual_seed(9)
        n_classes = len(train.CTC_ALPHABET) + 1
        n_slots = train.ctc_slots_per_position(Dims(conv1_stride=4).frames_per_position)
        head = train.ctc_head(DIMS.n_audio_state, seed=3, slots_per_position=n_slots).double()
        with torch.no_grad():
            head.bias.copy_(torch.randn(head.bias.shape, generator=g))  # slots differ, so their order matters
        audio = torch.randn(2, 5, DIMS.n_audio_state, generator=g, dtype=torch.float64)
        n_frames = torch.tensor([40, 24])  # 5 and 3 positions at stride 4
        texts = ["abcdefg", "ab"]  # 7 labels for 5 positions (10 slots), 2 for 3 (6 slots)
        self.assertEqual(train.encoder_positions(n_frames, 4).tolist(), [5, 3])
        got, n = train.ctc_loss(head, audio, n_frames, texts, conv1_stride=4)
        w, bias = head.weight.detach(), head.bias.detach()
        part = [slice(k * n_classes, (k + 1) * n_classes) for k in (0, 1)]
        slots = [audio @ w[p].T + bias[p] for p in part]
        sequence = torch.stack(slots, dim=2).reshape(2, 10, n_classes)
        labels = torch.tensor([c for t in texts for c in train.ctc_labels(t)])
        want = torch.nn.functional.ctc_loss(sequence.log_softmax(-1).transpose(0, 1), labels, torch.tensor([10, 6]),
                                            torch.tensor([7, 2]), blank=n_classes - 1, reduction="sum")
        self.assertEqual(n, 9)
        self.assertTrue(torch.isfinite(want) and float(want) > 0)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)  # the loss runs in float32
        self.assertEqual([train.ctc_slots_per_position(Dims(conv1_stride=s).frames_per_position) for s in (1, 2, 4)],
                         [1, 1, 2])

    def test_ctc_labels_are_characters(self):
        self.assertEqual(train.ctc_labels("Don't -- stop, Now!"),
                         [train.CTC_ALPHABET.index(c) for c in "don't stop now"])
        self.assertEqual(train.ctc_labels("..."), [])

    def test_matmul_conv_is_conv1d(self):
        """Same outputs and gradients as torch's convolution, for every front-end stride."""
        g = torch.Generator().manual_seed(5)
        for stride, length in ((1, 9), (2, 9), (2, 10), (4, 9), (4, 12)):
            conv = MatmulConv1d(4, 6, kernel_size=3, stride=stride, padding=1).double()
            x = torch.randn(2, 4, length, generator=g, dtype=torch.float64, requires_grad=True)
            out = conv(x)
            ref = torch.nn.functional.conv1d(x, conv.weight, conv.bias, stride=stride, padding=1)
            self.assertEqual(out.shape, ref.shape)
            torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
            upstream = torch.randn(out.shape, generator=g, dtype=torch.float64)
            got = torch.autograd.grad(out, (x, conv.weight, conv.bias), upstream)
            want = torch.autograd.grad(ref, (x, conv.weight, conv.bias), upstream)
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

    def test_bf16_step_gradients_near_float64(self):
        """A bf16 training step (oneDNN on, autocast) against float64: bf16 rounding (~1e-2), nothing worse."""
        if train.resolve_precision("auto", "cpu") != "bf16":
            self.skipTest("this CPU has no native bf16 matmul (avx512_bf16 / amx_bf16): bf16 steps are not used here")
        m16 = small_model(torch.float32)
        m64 = copy.deepcopy(m16).to(torch.float64)
        with train.forward_precision("bf16", "cpu"):
            self.assertTrue(torch.backends.mkldnn.enabled)
            self.assertEqual(m16.encoder.conv1(batch(torch.float32)[0]).dtype, torch.bfloat16)
            loss_of(m16, torch.float32).backward()
        self.assertFalse(torch.backends.mkldnn.enabled)  # switched on for the step only
        self.assert_gradients_near_float64(m16, m64, 0.1)

    def assert_gradients_near_float64(self, model, m64, tolerance: float):
        """Runs the float64 copy's backward pass and compares every parameter's gradient with `model`'s."""
        with float64_throughout():
            loss_of(m64, torch.float64).backward()
        g64 = dict(m64.named_parameters())
        for name, p in model.named_parameters():
            ref = g64[name].grad
            err = float((p.grad.double() - ref).norm() / ref.norm().clamp_min(1e-12))
            self.assertLess(err, tolerance, f"{name}: relative gradient error {err:.2e}")


if __name__ == "__main__":
    unittest.main()
