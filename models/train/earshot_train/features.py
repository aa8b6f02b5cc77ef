"""Feature shards: the on-disk format shared by the data pipeline and the trainer.

$DATA/shards/<group>/<shard>.feats.npy  float16 [total_frames, 80] log-mel rows (mel.py, one utterance after another)
$DATA/shards/<group>/<shard>.jsonl      one JSON object per utterance: id, text, offset, n_frames, source, voice, aug
$DATA/shards/<group>/<shard>.done       empty; written last, so readers only ever see complete shards
"""
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from .mel import SAMPLE_RATE, HOP_LENGTH, log_mel_spectrogram

N_MELS = 80
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH
MAX_FRAMES = 3000  # 30 s, the model's audio window
GROUPS = ("synth", "real", "noise", "heldout_synth", "real_holdout")


def data_root() -> str:
    return os.environ.get("EARSHOT_DATA", os.path.expanduser("~/.cache/earshot/train"))


def utterance_features(audio: np.ndarray) -> np.ndarray:
    """float16 [n_frames, 80] log-mel of one unpadded 16-kHz utterance."""
    return log_mel_spectrogram(audio, N_MELS).T.astype(np.float16)


def shard_paths(group_dir: str, name: str) -> Dict[str, str]:
    base = os.path.join(group_dir, name)
    return {"feats": base + ".feats.npy", "jsonl": base + ".jsonl", "done": base + ".done"}


def shard_is_done(group_dir: str, name: str) -> bool:
    return os.path.exists(shard_paths(group_dir, name)["done"])


class ShardWriter:
    """Accumulates utterances in memory and publishes the shard atomically (temp files, rename, then .done)."""

    def __init__(self, group_dir: str, name: str):
        self.group_dir, self.name = group_dir, name
        self.rows: List[np.ndarray] = []
        self.records: List[dict] = []
        self.frames = 0

    def add(self, utt_id: str, text: str, audio: np.ndarray, source: str, voice: str, aug: str) -> Optional[dict]:
        """Append one utterance; returns its record, or None when it is longer than MAX_FRAMES."""
        feats = utterance_features(audio)
        if feats.shape[0] > MAX_FRAMES or feats.shape[0] == 0:
            return None
        if not np.all(np.isfinite(feats)):
            return None
        record = {"id": utt_id, "text": text, "offset": self.frames, "n_frames": int(feats.shape[0]),
                  "source": source, "voice": voice, "aug": aug}
        self.rows.append(feats)
        self.records.append(record)
        self.frames += feats.shape[0]
        return record

    def __len__(self) -> int:
        return len(self.records)

    def seconds(self) -> float:
        return self.frames / FRAMES_PER_SECOND

    def finish(self) -> None:
        os.makedirs(self.group_dir, exist_ok=True)
        paths = shard_paths(self.group_dir, self.name)
        feats = np.concatenate(self.rows) if self.rows else np.zeros((0, N_MELS), np.float16)
        tmp_feats = paths["feats"] + ".tmp.npy"
        np.save(tmp_feats, feats)
        tmp_jsonl = paths["jsonl"] + ".tmp"
        with open(tmp_jsonl, "w", encoding="utf-8") as f:
            for record in self.records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp_feats, paths["feats"])
        os.replace(tmp_jsonl, paths["jsonl"])
        with open(paths["done"], "w"):
            pass


@dataclass
class ShardInfo:
    group: str
    name: str
    utterances: int
    frames: int


def done_shards(group_dir: str) -> List[str]:
    if not os.path.isdir(group_dir):
        return []
    return sorted(f[:-5] for f in os.listdir(group_dir) if f.endswith(".done"))


def read_shard_records(group_dir: str, name: str) -> List[dict]:
    with open(shard_paths(group_dir, name)["jsonl"], encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_shard(group_dir: str, name: str):
    """(features memmap [total_frames, 80] float16, records) of a completed shard."""
    feats = np.load(shard_paths(group_dir, name)["feats"], mmap_mode="r")
    return feats, read_shard_records(group_dir, name)


def group_summary(root: str) -> Dict[str, dict]:
    """Per group: completed shards, utterances, hours, and hours per source."""
    summary = {}
    for group in GROUPS:
        group_dir = os.path.join(root, "shards", group)
        shards, utterances, frames, per_source = 0, 0, 0, {}
        for name in done_shards(group_dir):
            shards += 1
            for record in read_shard_records(group_dir, name):
                utterances += 1
                frames += record["n_frames"]
                per_source[record["source"]] = per_source.get(record["source"], 0) + record["n_frames"]
        summary[group] = {"shards": shards, "utterances": utterances, "hours": frames / FRAMES_PER_SECOND / 3600,
                          "hours_by_source": {k: v / FRAMES_PER_SECOND / 3600 for k, v in sorted(per_source.items())}}
    return summary
