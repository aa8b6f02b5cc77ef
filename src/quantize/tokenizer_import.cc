#include "quantize/tokenizer_import.h"

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

namespace earshot {
namespace {

using json = nlohmann::json;

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes one UTF-8 sequence at s[i]; returns its length (1 for an invalid byte, which is then taken as is).
size_t NextCodePoint(const std::string& s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    *cp = 0xFFFFFFFF;
    return 1;
  }
  uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) {
      *cp = 0xFFFFFFFF;
      return 1;
    }
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  *cp = v;
  return len;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to U+0100 upwards.
std::array<uint32_t, 256> ByteToCodePoint() {
  std::array<uint32_t, 256> table{};
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) table[b] = printable[b] ? static_cast<uint32_t>(b) : next++;
  return table;
}

const std::array<uint32_t, 256>& ByteTable() {
  static const std::array<uint32_t, 256> table = ByteToCodePoint();
  return table;
}

const std::unordered_map<uint32_t, uint8_t>& CodePointTable() {
  static const std::unordered_map<uint32_t, uint8_t> table = [] {
    std::unordered_map<uint32_t, uint8_t> t;
    for (int b = 0; b < 256; ++b) t[ByteTable()[b]] = static_cast<uint8_t>(b);
    return t;
  }();
  return table;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string ByteLevelToBytes(const std::string& token) {
  const auto& table = CodePointTable();
  std::string out;
  for (size_t i = 0; i < token.size();) {
    uint32_t cp;
    const size_t len = NextCodePoint(token, i, &cp);
    auto it = table.find(cp);
    if (it != table.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      out.append(token, i, len);
    }
    i += len;
  }
  return out;
}

std::string BytesToByteLevel(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) AppendUtf8(ByteTable()[c], &out);
  return out;
}

std::string SentencePieceToBytes(const std::string& piece) {
  if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
    const int hi = HexDigit(piece[3]), lo = HexDigit(piece[4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  static const std::string kMark = "\xE2\x96\x81";  // U+2581
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kMark.size(), kMark) == 0) {
      out.push_back(' ');
      i += kMark.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

std::string ByteFallbackPiece(unsigned char byte) {
  static const char kHex[] = "0123456789ABCDEF";
  return std::string("<0x") + kHex[byte >> 4] + kHex[byte & 15] + ">";
}

std::string BytesToSentencePiece(const std::string& bytes) {
  if (bytes.size() == 1) {
    const unsigned char c = static_cast<unsigned char>(bytes[0]);
    if (c != ' ' && (c < 0x21 || c > 0x7E)) return ByteFallbackPiece(c);
  }
  std::string out;
  for (char c : bytes) {
    if (c == ' ') {
      out += "\xE2\x96\x81";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Expected<Vocabulary> LoadCheckpointTokenizer(const std::string& path, int n_vocab) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot open tokenizer '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  json root;
  try {
    root = json::parse(text.str());
  } catch (const std::exception& e) {
    return Status::Error("tokenizer '" + path + "' is not valid JSON (" + e.what() + ")");
  }
  const std::string where = "tokenizer '" + path + "'";
  if (!root.is_object()) return Status::Error(where + ": not a JSON object");
  Vocabulary vocab;
  const json kind = root.value("kind", json());
  if (kind == "sentencepiece") {
    vocab.kind = TokenizerKind::SentencePiece;
  } else if (kind == "bytelevel") {
    vocab.kind = TokenizerKind::ByteLevelBpe;
  } else {
    return Status::Error(where + ": \"kind\" must be \"sentencepiece\" or \"bytelevel\"");
  }
  const json pieces = root.value("pieces", json());
  if (!pieces.is_array()) return Status::Error(where + ": \"pieces\" must be an array of strings");
  if (pieces.size() != static_cast<size_t>(n_vocab)) {
    return Status::Error(where + ": " + std::to_string(pieces.size()) +
                         " pieces but the model has n_vocab = " + std::to_string(n_vocab));
  }
  const json specials = root.value("special_ids", json::array());
  if (!specials.is_array()) return Status::Error(where + ": \"special_ids\" must be an array");
  std::vector<bool> is_special(pieces.size(), false);
  for (const json& id : specials) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= n_vocab) {
      return Status::Error(where + ": special id " + id.dump() + " is not a token id");
    }
    const int v = id.get<int>();
    if (!is_special[v]) vocab.special_ids.push_back(v);
    is_special[v] = true;
  }
  vocab.tokens.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].is_string()) return Status::Error(where + ": piece " + std::to_string(i) + " is not a string");
    const std::string& p = pieces[i].get_ref<const std::string&>();
    if (is_special[i]) {
      vocab.tokens.push_back(p);
    } else {
      vocab.tokens.push_back(vocab.kind == TokenizerKind::SentencePiece ? SentencePieceToBytes(p)
                                                                        : ByteLevelToBytes(p));
    }
  }
  return vocab;
}

}  // namespace earshot
