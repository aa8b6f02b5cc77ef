// Token ids -> text. Token bytes are concatenated; control tokens and timestamps are skipped; SentencePiece
// vocabularies drop one leading space. Output is always valid UTF-8: complete output replaces invalid bytes
// with U+FFFD (like Python's errors="replace"); partial output (streaming) holds back an incomplete UTF-8
// sequence at its very end, since the next token may complete it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace earshot {

class Detokenizer {
 public:
  // Keeps a reference to `vocab`: the vocabulary must outlive the detokenizer.
  Detokenizer(const Vocabulary& vocab, const SpecialTokens& special);

  // True for ids that print: in range, not a control token, not a timestamp.
  bool IsText(int id) const;
  bool IsTimestamp(int id) const { return timestamp_begin_ >= 0 && id >= timestamp_begin_ && id < n_vocab(); }
  // The raw bytes of one token (empty for out-of-range ids); may be a partial UTF-8 sequence.
  const std::string& TokenBytes(int id) const;
  int n_vocab() const { return static_cast<int>(vocab_.tokens.size()); }

  std::string Decode(const std::vector<int>& ids) const;
  // Text that later tokens cannot change: like Decode but without a trailing incomplete UTF-8 sequence.
  std::string DecodePartial(const std::vector<int>& ids) const;

 private:
  std::string Bytes(const std::vector<int>& ids) const;

  const Vocabulary& vocab_;
  std::vector<unsigned char> control_;  // 1 = never printed
  int timestamp_begin_ = -1;
  std::string empty_;
};

// Replaces each maximal invalid subsequence of `bytes` with U+FFFD (Unicode's recommended practice, which
// Python follows). With hold_back_incomplete_tail, a trailing sequence that is a valid prefix of a UTF-8
// character is dropped instead of replaced.
std::string SanitizeUtf8(std::string_view bytes, bool hold_back_incomplete_tail = false);

}  // namespace earshot
