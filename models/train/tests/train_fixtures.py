"""Small fake data sets and a tiny tokenizer for the training tests (no generated data needed)."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SENTENCES = [
    "Turn on the lights.", "What time is it?", "Remind me to call Anna at five.", "The cat sat on the mat.",
    "Open the window, please.", "It is twenty past nine.", "Send a message to Bob.", "Play some music.",
    "How far is the station?", "We met on the third of May.", "Stop the timer.", "Read me the news.",
]


def write_shard(root: str, group: str, name: str, utts, seed: int = 0, done: bool = True):
    """utts: [(n_frames, text)]. Writes random float16 features + jsonl (+ .done) as the data contract says."""
    rng = np.random.default_rng(seed)
    d = os.path.join(root, "shards", group)
    os.makedirs(d, exist_ok=True)
    total = sum(n for n, _ in utts)
    np.save(os.path.join(d, name + ".feats.npy"), rng.standard_normal((total, 80)).astype(np.float16))
    offset = 0
    with open(os.path.join(d, name + ".jsonl"), "w", encoding="utf-8") as f:
        for i, (n, text) in enumerate(utts):
            f.write(json.dumps({"id": f"{name}-{i}", "text": text, "offset": offset, "n_frames": n,
                                "source": group, "voice": "v", "aug": ""}) + "\n")
            offset += n
    if done:
        open(os.path.join(d, name + ".done"), "w").close()


def fake_utts(count: int, seed: int, min_frames: int = 20, max_frames: int = 300, empty: bool = False):
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(min_frames, max_frames + 1)), "" if empty else SENTENCES[int(rng.integers(len(SENTENCES)))])
            for _ in range(count)]


def make_dataset(root: str, synth_shards: int = 2, per_shard: int = 60, max_frames: int = 300):
    for i in range(synth_shards):
        write_shard(root, "synth", f"synth-{i:05d}", fake_utts(per_shard, seed=i, max_frames=max_frames), seed=i)
    write_shard(root, "real", "real-00000", fake_utts(per_shard, seed=100, max_frames=max_frames // 2), seed=100)
    write_shard(root, "noise", "noise-00000", fake_utts(10, seed=200, max_frames=max_frames, empty=True), seed=200)
    write_shard(root, "heldout_synth", "heldout_synth-00000", fake_utts(12, seed=300, max_frames=max_frames), seed=300)
    write_shard(root, "real_holdout", "real_holdout-00000", fake_utts(12, seed=400, max_frames=max_frames), seed=400)


def train_tokenizer(directory: str) -> str:
    """A tiny SentencePiece model with the contract's special ids (unk 0, bos 1 = SOT, eos 2 = EOT)."""
    import sentencepiece as spm

    text = os.path.join(directory, "text.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write("\n".join(SENTENCES * 3) + "\n")
    prefix = os.path.join(directory, "sp")
    spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=64, model_type="bpe",
                                   hard_vocab_limit=False, character_coverage=1.0,
                                   normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                                   minloglevel=2)
    return prefix + ".model"
