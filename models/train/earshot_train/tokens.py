"""The SentencePiece tokenizer as training and export use it: SOT/EOT ids, control pieces, encode/decode."""
from typing import List, Optional, Sequence

import sentencepiece as spm


class Tokenizer:
    """From a model file, or from the serialized model a training checkpoint carries."""

    def __init__(self, model_path: Optional[str] = None, model_proto: Optional[bytes] = None):
        if (model_path is None) == (model_proto is None):
            raise ValueError("give exactly one of model_path and model_proto")
        if model_path is not None:
            self.sp = spm.SentencePieceProcessor(model_file=model_path)
        else:
            self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.n_vocab = self.sp.get_piece_size()
        self.sot, self.eot = self.sp.bos_id(), self.sp.eos_id()
        if self.sot < 0 or self.eot < 0:
            raise ValueError("the tokenizer needs bos (SOT) and eos (EOT) pieces")
        # Control and unknown pieces are never printed; none but EOT may ever be generated.
        self.special_ids = [i for i in range(self.n_vocab) if self.sp.is_control(i) or self.sp.is_unknown(i)]
        self.suppress_ids = [i for i in self.special_ids if i != self.eot]

    def encode(self, text: str) -> List[int]:
        return self.sp.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        special = set(self.special_ids)
        return self.sp.decode([int(i) for i in ids if int(i) not in special])

    def pieces(self) -> List[str]:
        return [self.sp.id_to_piece(i) for i in range(self.n_vocab)]
