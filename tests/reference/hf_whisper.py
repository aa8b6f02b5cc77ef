"""Random-weight Whisper checkpoints written as a Hugging Face `transformers` WhisperForConditionalGeneration folder.

Files, as `save_pretrained` lays them out: model.safetensors (HF tensor names, F32), config.json,
generation_config.json, vocab.json + merges.txt (GPT-2 byte-level BPE), added_tokens.json, tokenizer.json (with its
added_tokens), special_tokens_map.json, tokenizer_config.json, normalizer.json, preprocessor_config.json.

Two shapes: TINY (small, odd sizes, a scaled-down vocabulary with Whisper's special-token structure so an importer
must find special ids by their text, a learned encoder position table, proj_out.weight stored, timestamp tokens left
out of the tokenizer files as older exports did) and TINY_EN (exactly openai/whisper-tiny.en's shapes and special
ids, sinusoidal encoder positions, proj_out.weight left out as tied, timestamp tokens listed). BASE_EN is TINY_EN
with openai/whisper-base.en's shapes (for benchmarks).
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List

from reference_model import Dims, WeightSpec, canonical_tensors, make_model
from safetensors_io import write_safetensors
from vocab import byte_level_decode, byte_level_vocab, whisper_special_layout


@dataclass
class HfVariant:
    name: str
    dims: Dims
    n_merges: int                 # regular vocabulary = 256 bytes + merges, then <|endoftext|>
    weights: WeightSpec
    store_proj_out: bool
    list_timestamps: bool
    alignment_heads: List[List[int]]
    suppress_tokens: List[int] = field(default_factory=list)
    begin_suppress_tokens: List[int] = field(default_factory=list)

    @property
    def eot(self) -> int:
        return 256 + self.n_merges

    @property
    def layout(self):
        return whisper_special_layout(self.eot)


# Real whisper-tiny.en generation_config.json suppress_tokens (ids of symbols and of control tokens).
_TINY_EN_SUPPRESS = [
    1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357, 366, 438, 532, 685,
    705, 796, 930, 1058, 1220, 1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782, 1875, 2162, 2361, 2488, 3467, 4008,
    4211, 4600, 4808, 5299, 5855, 6329, 7203, 9609, 9959, 10563, 10786, 11420, 11709, 11907, 13163, 13697, 13700,
    14808, 15306, 16410, 16791, 17992, 19203, 19510, 20724, 22305, 22935, 27007, 30109, 30420, 33409, 34949, 40283,
    40493, 40549, 47282, 49146, 50257, 50357, 50358, 50359, 50360, 50361]


def _suppress_for(eot: int) -> List[int]:
    """Whisper's suppress list scaled to a vocabulary whose <|endoftext|> is eot: the symbol ids that exist, then
    startoftranscript and translate .. nocaptions at their shifted ids."""
    ids = whisper_special_layout(eot)["ids"]
    regular = [t for t in _TINY_EN_SUPPRESS if t < eot]
    return regular + [ids["sot"]] + list(range(ids["translate"], ids["no_speech"] + 1))


TINY = HfVariant(
    name="whisper-parity-tiny",
    dims=Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=72, n_audio_head=3, n_audio_layer=2,
              n_text_ctx=64, n_text_state=72, n_text_head=3, n_text_layer=2, n_vocab=2119),
    n_merges=255,
    weights=WeightSpec(seed=11, eot=511, eot_slope=0.35, eot_offset=8.0, encoder_position_noise=0.05),
    store_proj_out=True,
    list_timestamps=False,
    alignment_heads=[[1, 0], [1, 2]],
    suppress_tokens=_suppress_for(511),
    begin_suppress_tokens=[220, 511],
)

TINY_EN = HfVariant(
    name="whisper-parity-tiny.en",
    dims=Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
              n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4, n_vocab=51864),
    n_merges=50000,
    weights=WeightSpec(seed=23, eot=50256, logit_std=5.0, eot_slope=0.5, eot_offset=10.0),
    store_proj_out=False,
    list_timestamps=True,
    alignment_heads=[[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]],
    suppress_tokens=_TINY_EN_SUPPRESS,
    begin_suppress_tokens=[220, 50256],
)

# Exactly openai/whisper-base.en's shapes and special ids, otherwise as TINY_EN (benchmarks use it).
BASE_EN = HfVariant(
    name="whisper-parity-base.en",
    dims=Dims(n_mels=80, n_audio_ctx=1500, n_audio_state=512, n_audio_head=8, n_audio_layer=6,
              n_text_ctx=448, n_text_state=512, n_text_head=8, n_text_layer=6, n_vocab=51864),
    n_merges=50000,
    weights=WeightSpec(seed=29, eot=50256, logit_std=5.0, eot_slope=0.5, eot_offset=10.0),
    store_proj_out=False,
    list_timestamps=True,
    alignment_heads=[[3, 3], [4, 7], [5, 1], [5, 5], [5, 7]],
    suppress_tokens=_TINY_EN_SUPPRESS,
    begin_suppress_tokens=[220, 50256],
)

VARIANTS = {"tiny": TINY, "tiny.en": TINY_EN}         # what the parity tests run
BENCH_VARIANTS = {"tiny.en": TINY_EN, "base.en": BASE_EN}  # what the benchmarks run (base.en is too slow for tests)


def hf_name(canonical: str) -> str:
    """Canonical (OpenAI) tensor name -> transformers' WhisperForConditionalGeneration name."""
    parts = canonical.split(".")
    stack = parts[0]  # encoder | decoder
    if canonical == "encoder.positional_embedding":
        return "model.encoder.embed_positions.weight"
    if canonical == "encoder.ln_post.weight" or canonical == "encoder.ln_post.bias":
        return f"model.encoder.layer_norm.{parts[-1]}"
    if canonical == "decoder.token_embedding.weight":
        return "model.decoder.embed_tokens.weight"
    if canonical == "decoder.positional_embedding":
        return "model.decoder.embed_positions.weight"
    if parts[:2] == ["decoder", "ln"]:
        return f"model.decoder.layer_norm.{parts[-1]}"
    if parts[1] in ("conv1", "conv2"):
        return f"model.{canonical}"
    if parts[1] != "blocks":
        raise KeyError(canonical)
    layer, module, rest = parts[2], parts[3], parts[4:]
    prefix = f"model.{stack}.layers.{layer}"
    projections = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
    if module in ("attn", "cross_attn"):
        attn = "self_attn" if module == "attn" else "encoder_attn"
        return f"{prefix}.{attn}.{projections[rest[0]]}.{rest[1]}"
    if module == "mlp":
        return f"{prefix}.{'fc1' if rest[0] == '0' else 'fc2'}.{rest[1]}"
    norms = {"attn_ln": "self_attn_layer_norm", "cross_attn_ln": "encoder_attn_layer_norm",
             "mlp_ln": "final_layer_norm"}
    return f"{prefix}.{norms[module]}.{rest[0]}"


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def expected_metadata(variant: HfVariant) -> Dict[str, object]:
    """What an importer must produce from this folder: special ids, suppression lists, token bytes."""
    layout = variant.layout
    tokens, _ = byte_level_vocab(variant.n_merges, variant.weights.seed)
    token_bytes = [byte_level_decode(t) for t in tokens]
    token_bytes += [layout["texts"][i].encode() for i in range(variant.eot, variant.dims.n_vocab)]
    ids = dict(layout["ids"])
    return {
        "dims": variant.dims.to_dict(),
        "variable_length_audio": False,
        "special": ids,
        "suppress_tokens": list(variant.suppress_tokens),
        "begin_suppress_tokens": list(variant.begin_suppress_tokens),
        # English-only Whisper decodes from <|startoftranscript|> and, with timestamps off, <|notimestamps|>.
        "prompt_without_timestamps": [ids["sot"], ids["no_timestamps"]],
        "token_bytes": token_bytes,
        "n_regular_tokens": variant.eot,
        "alignment_heads": variant.alignment_heads,
    }


def write_hf_whisper(out_dir: str, variant: HfVariant):
    """Writes the folder and returns (torch reference model, canonical tensors written, expected metadata)."""
    os.makedirs(out_dir, exist_ok=True)
    dims, layout = variant.dims, variant.layout
    if layout["n_vocab"] != dims.n_vocab:
        raise ValueError(f"{variant.name}: special layout gives {layout['n_vocab']} tokens, dims say {dims.n_vocab}")
    model = make_model(dims, variant.weights)
    canonical = canonical_tensors(model, include_encoder_positions=True)
    hf = {hf_name(name): array for name, array in sorted(canonical.items())}
    if variant.store_proj_out:
        hf["proj_out.weight"] = canonical["decoder.token_embedding.weight"]
    write_safetensors(os.path.join(out_dir, "model.safetensors"), dict(sorted(hf.items())), {"format": "pt"})

    ids = layout["ids"]
    d = dims.n_audio_state
    config = {
        "_name_or_path": variant.name,
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "apply_spec_augment": False,
        "architectures": ["WhisperForConditionalGeneration"],
        "attention_dropout": 0.0,
        "begin_suppress_tokens": variant.begin_suppress_tokens,
        "bos_token_id": ids["eot"],
        "classifier_proj_size": 256,
        "d_model": d,
        "decoder_attention_heads": dims.n_text_head,
        "decoder_ffn_dim": 4 * d,
        "decoder_layerdrop": 0.0,
        "decoder_layers": dims.n_text_layer,
        "decoder_start_token_id": ids["sot"],
        "dropout": 0.0,
        "encoder_attention_heads": dims.n_audio_head,
        "encoder_ffn_dim": 4 * d,
        "encoder_layerdrop": 0.0,
        "encoder_layers": dims.n_audio_layer,
        "eos_token_id": ids["eot"],
        "forced_decoder_ids": [[1, ids["no_timestamps"]]],
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": dims.n_text_ctx,
        "max_source_positions": dims.n_audio_ctx,
        "max_target_positions": dims.n_text_ctx,
        "median_filter_width": 7,
        "model_type": "whisper",
        "num_hidden_layers": dims.n_audio_layer,
        "num_mel_bins": dims.n_mels,
        "pad_token_id": ids["eot"],
        "scale_embedding": False,
        "suppress_tokens": variant.suppress_tokens,
        "torch_dtype": "float32",
        "transformers_version": "4.36.0",
        "use_cache": True,
        "use_weighted_layer_sum": False,
        "vocab_size": dims.n_vocab,
    }
    _write_json(os.path.join(out_dir, "config.json"), config)
    _write_json(os.path.join(out_dir, "generation_config.json"), {
        "alignment_heads": variant.alignment_heads,
        "begin_suppress_tokens": variant.begin_suppress_tokens,
        "bos_token_id": ids["eot"],
        "decoder_start_token_id": ids["sot"],
        "eos_token_id": ids["eot"],
        "forced_decoder_ids": [[1, ids["no_timestamps"]]],
        "is_multilingual": False,
        "max_initial_timestamp_index": 50,
        "max_length": dims.n_text_ctx,
        "no_timestamps_token_id": ids["no_timestamps"],
        "pad_token_id": ids["eot"],
        "prev_sot_token_id": ids["sot_prev"],
        "return_timestamps": False,
        "suppress_tokens": variant.suppress_tokens,
        "transformers_version": "4.36.0",
    })

    tokens, merges = byte_level_vocab(variant.n_merges, variant.weights.seed)
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab["<|endoftext|>"] = ids["eot"]
    _write_json(os.path.join(out_dir, "vocab.json"), vocab)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    last_listed = ids["timestamp_begin"] + 1501 if variant.list_timestamps else ids["timestamp_begin"]
    added = {layout["texts"][i]: i for i in range(ids["sot"], last_listed)}
    _write_json(os.path.join(out_dir, "added_tokens.json"), added)
    specials = [layout["texts"][i] for i in range(ids["sot"], ids["timestamp_begin"])]
    _write_json(os.path.join(out_dir, "special_tokens_map.json"), {
        "additional_special_tokens": specials,
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
    })
    _write_json(os.path.join(out_dir, "tokenizer_config.json"), {
        "add_bos_token": False, "add_prefix_space": False, "bos_token": "<|endoftext|>",
        "clean_up_tokenization_spaces": True, "eos_token": "<|endoftext|>", "errors": "replace",
        "model_max_length": 1024, "pad_token": "<|endoftext|>", "processor_class": "WhisperProcessor",
        "return_attention_mask": False, "tokenizer_class": "WhisperTokenizer", "unk_token": "<|endoftext|>",
    })
    added_entries = [{"id": ids["eot"], "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}]
    added_entries += [{"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
                       "normalized": False, "special": i < ids["timestamp_begin"]}
                      for text, i in added.items()]
    _write_json(os.path.join(out_dir, "tokenizer.json"), {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_entries,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    })
    _write_json(os.path.join(out_dir, "normalizer.json"), {"colour": "color", "favour": "favor"})
    _write_json(os.path.join(out_dir, "preprocessor_config.json"), {
        "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": dims.n_mels,
        "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
        "padding_value": 0.0, "processor_class": "WhisperProcessor", "return_attention_mask": False,
        "sampling_rate": 16000,
    })
    return model, canonical, expected_metadata(variant)
