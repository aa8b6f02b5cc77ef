// Converting tokenizer vocabularies to the raw-byte Vocabulary of a .earshot file (token i = the bytes it prints).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"

namespace earshot {

// GPT-2 / Whisper byte-level BPE stores each byte as a printable Unicode character (bytes_to_unicode); this
// maps a token string back to its bytes. Characters outside that table (e.g. in added tokens) keep their UTF-8.
std::string ByteLevelToBytes(const std::string& token);
// The inverse, for writing test vocabularies: every byte to its byte-level character.
std::string BytesToByteLevel(const std::string& bytes);

// SentencePiece piece to bytes: U+2581 (the word-boundary mark) becomes a space, "<0xNN>" byte-fallback pieces
// become that single byte.
std::string SentencePieceToBytes(const std::string& piece);
// The inverse for writing tokenizer.json: spaces become U+2581, a lone byte outside printable ASCII becomes its
// "<0xNN>" byte-fallback piece. (A byte-fallback piece of a printable character comes back as the character: both
// print the same byte.)
std::string BytesToSentencePiece(const std::string& bytes);
// "<0xNN>", the byte-fallback piece of one byte.
std::string ByteFallbackPiece(unsigned char byte);

// Our checkpoint's tokenizer.json: {"kind": "sentencepiece" | "bytelevel", "pieces": [...], "special_ids": [...]}.
// Control pieces (special_ids) keep their text as is. len(pieces) must equal n_vocab.
Expected<Vocabulary> LoadCheckpointTokenizer(const std::string& path, int n_vocab);

}  // namespace earshot
