// Detokenizer: byte-level and SentencePiece vocabularies, control and timestamp tokens, UTF-8 split across
// tokens, invalid bytes; and segments from timestamp tokens.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode/detokenizer.h"
#include "decode/segments.h"
#include "model/model.h"

namespace earshot {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// ids: 0 "Hello", 1 " world", 2 "\xE2\x82" (first two bytes of the euro sign), 3 "\xAC" (its last byte),
// 4 "!", 5 " ", 6 <eot>, 7 <sot>, 8 <lang>, 9 <notimestamps>, 10.. timestamps.
struct Fixture {
  Vocabulary vocab;
  SpecialTokens special;
  Fixture(TokenizerKind kind) {
    vocab.kind = kind;
    vocab.tokens = {"Hello", " world", "\xE2\x82", "\xAC", "!", " ", "<|endoftext|>", "<|startoftranscript|>",
                    "<|en|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>", "<|0.04|>"};
    vocab.special_ids = {6, 7};  // the rest of the control tokens come from SpecialTokens
    special.eot = 6;
    special.sot = 7;
    special.languages = {{"en", 8}};
    special.no_timestamps = 9;
    special.timestamp_begin = 10;
  }
};

TEST(Detokenizer, ByteLevelConcatenatesAndSkipsControlTokens) {
  Fixture f(TokenizerKind::ByteLevelBpe);
  Detokenizer d(f.vocab, f.special);
  EXPECT_EQ(d.Decode({7, 8, 9, 10, 0, 1, 4, 11, 6}), "Hello world!");
  EXPECT_EQ(d.Decode({1, 1}), " world world");  // byte-level keeps the leading space
  EXPECT_TRUE(d.IsText(0));
  for (int id : {6, 7, 8, 9, 10, 12, -1, 13}) EXPECT_FALSE(d.IsText(id)) << id;
  EXPECT_TRUE(d.IsTimestamp(12));
  EXPECT_FALSE(d.IsTimestamp(9));
  EXPECT_EQ(d.TokenBytes(2), "\xE2\x82");
  EXPECT_EQ(d.TokenBytes(99), "");
}

TEST(Detokenizer, SentencePieceDropsOneLeadingSpace) {
  Fixture f(TokenizerKind::SentencePiece);
  Detokenizer d(f.vocab, f.special);
  EXPECT_EQ(d.Decode({1, 4}), "world!");
  EXPECT_EQ(d.Decode({5, 1}), " world");  // only one space goes
  EXPECT_EQ(d.Decode({7, 1}), "world");   // control tokens first do not hide the leading space
  EXPECT_EQ(d.Decode({0, 1}), "Hello world");
  EXPECT_EQ(d.Decode({}), "");
}

TEST(Detokenizer, Utf8SplitAcrossTokens) {
  Fixture f(TokenizerKind::ByteLevelBpe);
  Detokenizer d(f.vocab, f.special);
  EXPECT_EQ(d.Decode({4, 2, 3}), "!\xE2\x82\xAC");  // the euro sign, reassembled from two tokens
  // Partial output holds back the incomplete character; complete output replaces it.
  EXPECT_EQ(d.DecodePartial({4, 2}), "!");
  EXPECT_EQ(d.Decode({4, 2}), "!" + kFffd);
  EXPECT_EQ(d.DecodePartial({4, 2, 3}), "!\xE2\x82\xAC");
  // An incomplete character in the middle is invalid even in partial output.
  EXPECT_EQ(d.DecodePartial({2, 4}), kFffd + "!");
  // A continuation byte alone is never a prefix of anything.
  EXPECT_EQ(d.DecodePartial({3}), kFffd);
}

TEST(Detokenizer, InvalidBytesAreReplacedLikePython) {
  // Expected strings are what Python's bytes.decode("utf-8", errors="replace") gives.
  struct Case {
    std::string in, out;
  } cases[] = {
      {"\xE2\x82" "a", kFffd + "a"},
      {"\xF0\x80", kFffd + kFffd},
      {"\xED\xA0\x80", kFffd + kFffd + kFffd},     // surrogate
      {"\xC0\xAF", kFffd + kFffd},                 // overlong
      {"\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
      {"a\xE2\x82", "a" + kFffd},
      {"\xFF", kFffd},
      {"\xF0\x9F\x98", kFffd},
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
      {std::string("a\0b", 3), std::string("a\0b", 3)},
  };
  for (const Case& c : cases) EXPECT_EQ(SanitizeUtf8(c.in), c.out);
  EXPECT_EQ(SanitizeUtf8("ok\xF0\x9F\x98", true), "ok");
  EXPECT_EQ(SanitizeUtf8("ok\xF0\x80", true), "ok" + kFffd + kFffd);  // not a valid prefix: replaced
}

TEST(Segments, SplitAtTimestampPairs) {
  Fixture f(TokenizerKind::ByteLevelBpe);
  f.vocab.tokens.resize(60, "x");
  Detokenizer d(f.vocab, f.special);
  const int ts = 10;
  // <|0.00|> Hello <|0.04|><|0.04|> world <|0.08|> ! (no closing timestamp)
  auto segs = SplitAtTimestamps({ts, 0, ts + 2, ts + 2, 1, ts + 4, 4}, d, ts, 30.0, 31.5);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_DOUBLE_EQ(segs[0].start, 30.0);
  EXPECT_DOUBLE_EQ(segs[0].end, 30.04);
  EXPECT_EQ(segs[0].tokens, (std::vector<int>{0}));
  EXPECT_DOUBLE_EQ(segs[1].start, 30.04);
  EXPECT_DOUBLE_EQ(segs[1].end, 30.08);
  EXPECT_EQ(segs[1].tokens, (std::vector<int>{1}));
  EXPECT_DOUBLE_EQ(segs[2].start, 30.08);
  EXPECT_DOUBLE_EQ(segs[2].end, 31.5);
  // Text without any timestamp spans the window; timestamps without text make no segment.
  auto plain = SplitAtTimestamps({0, 1}, d, ts, 0.0, 2.0);
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_DOUBLE_EQ(plain[0].end, 2.0);
  EXPECT_TRUE(SplitAtTimestamps({ts, ts + 3}, d, ts, 0.0, 2.0).empty());
}

}  // namespace
}  // namespace earshot
