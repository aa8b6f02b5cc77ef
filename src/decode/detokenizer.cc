#include "decode/detokenizer.h"

namespace earshot {
namespace {

// Length of the valid UTF-8 prefix of a character starting at s[0] (0 if s[0] cannot start one), and
// whether it is a complete character. Follows the well-formed byte sequences of Unicode table 3-7, so
// overlongs, surrogates and values above U+10FFFF are invalid.
struct CharScan {
  size_t valid = 0;
  bool complete = false;
};

CharScan ScanChar(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return {1, true};
  int need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, false};
  }
  size_t i = 1;
  for (int k = 0; k < need; ++k, ++i) {
    if (i >= s.size()) return {i, false};  // ran out: a valid but incomplete prefix
    const auto b = static_cast<unsigned char>(s[i]);
    const unsigned char l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
    if (b < l || b > h) return {i, false};
  }
  return {i, true};
}

}  // namespace

std::string SanitizeUtf8(std::string_view bytes, bool hold_back_incomplete_tail) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const CharScan c = ScanChar(bytes.substr(i));
    if (c.complete) {
      out.append(bytes.data() + i, c.valid);
      i += c.valid;
    } else if (c.valid > 0 && i + c.valid == bytes.size() && hold_back_incomplete_tail) {
      break;  // the next token may complete this character
    } else {
      out += kReplacement;
      i += c.valid > 0 ? c.valid : 1;
    }
  }
  return out;
}

Detokenizer::Detokenizer(const Vocabulary& vocab, const SpecialTokens& special)
    : vocab_(vocab), timestamp_begin_(special.timestamp_begin) {
  const int n = n_vocab();
  control_.assign(static_cast<size_t>(n), 0);
  auto mark = [&](int id) {
    if (id >= 0 && id < n) control_[id] = 1;
  };
  for (int id : vocab.special_ids) mark(id);
  for (int id : {special.sot, special.eot, special.sot_prev, special.sot_lm, special.no_speech,
                 special.no_timestamps, special.transcribe, special.translate})
    mark(id);
  for (const Language& l : special.languages) mark(l.token);
}

bool Detokenizer::IsText(int id) const {
  return id >= 0 && id < n_vocab() && !control_[id] && !IsTimestamp(id);
}

const std::string& Detokenizer::TokenBytes(int id) const {
  return id >= 0 && id < n_vocab() ? vocab_.tokens[id] : empty_;
}

std::string Detokenizer::Bytes(const std::vector<int>& ids) const {
  std::string bytes;
  for (int id : ids)
    if (IsText(id)) bytes += vocab_.tokens[id];
  if (vocab_.kind == TokenizerKind::SentencePiece && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
  return bytes;
}

std::string Detokenizer::Decode(const std::vector<int>& ids) const { return SanitizeUtf8(Bytes(ids)); }

std::string Detokenizer::DecodePartial(const std::vector<int>& ids) const {
  return SanitizeUtf8(Bytes(ids), /*hold_back_incomplete_tail=*/true);
}

}  // namespace earshot
