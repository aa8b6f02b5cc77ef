// The decoder on random tiny models: incremental (KV cache) against whole-sequence computation and against a
// naive double-precision reference; batched rows against single rows; cache reordering; error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "kernels/f16.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/whisper_weights.h"
#include "unit/double_reference.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

using namespace doubleref;  // NOLINT: test helpers

// Whisper's decoder over a whole token sequence (no cache), in double: logits [n][n_vocab].
Mat ReferenceDecoder(const Model& m, const std::vector<int>& tokens, const std::vector<float>& audio, int n_audio) {
  const HyperParams& hp = m.hparams();
  const int d = hp.n_text_state, n = static_cast<int>(tokens.size());
  const auto emb = Read(m, "decoder.token_embedding.weight"), pos = Read(m, "decoder.positional_embedding");
  Mat x(static_cast<size_t>(n) * d);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < d; ++i) x[t * d + i] = emb[tokens[t] * d + i] + pos[t * d + i];
  const Mat xa(audio.begin(), audio.end());
  for (int l = 0; l < hp.n_text_layer; ++l) {
    const std::string p = "decoder.blocks." + std::to_string(l);
    Mat a = Attend(m, p + ".attn", Ln(m, p + ".attn_ln", x, n, d), n, Ln(m, p + ".attn_ln", x, n, d), n, d,
                   hp.n_text_head, true);
    for (size_t i = 0; i < x.size(); ++i) x[i] += a[i];
    Mat c = Attend(m, p + ".cross_attn", Ln(m, p + ".cross_attn_ln", x, n, d), n, xa, n_audio, d, hp.n_text_head,
                   false);
    for (size_t i = 0; i < x.size(); ++i) x[i] += c[i];
    Mat u = Lin(m, p + ".mlp.0", Ln(m, p + ".mlp_ln", x, n, d), n);
    for (auto& e : u) e = 0.5 * e * (1 + std::erf(e / std::sqrt(2.0)));
    Mat dn = Lin(m, p + ".mlp.2", u, n);
    for (size_t i = 0; i < x.size(); ++i) x[i] += dn[i];
  }
  x = Ln(m, "decoder.ln", x, n, d);
  Mat logits(static_cast<size_t>(n) * hp.n_vocab);
  for (int t = 0; t < n; ++t)
    for (int v = 0; v < hp.n_vocab; ++v) {
      double acc = 0;
      for (int i = 0; i < d; ++i) acc += x[t * d + i] * emb[v * d + i];
      logits[t * hp.n_vocab + v] = acc;
    }
  return logits;
}

struct Fixture {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const WhisperWeights> weights;
  std::vector<float> audio;  // encoder output
  int n_audio = 0;
};

Fixture MakeFixture(uint32_t seed, DType dtype = DType::F32, int n_frames = 13) {
  Fixture f;
  const HyperParams hp = testutil::TinyHyperParams();
  auto model = Model::FromBuffer(MakeRandomTinyModel(hp, seed, dtype));
  EXPECT_TRUE(model.ok()) << model.status().message();
  f.model = model.value();
  auto w = WhisperWeights::Bind(f.model);
  EXPECT_TRUE(w.ok()) << w.status().message();
  f.weights = w.value();
  testutil::TestRng rng(seed + 1);
  std::vector<float> mel(static_cast<size_t>(hp.n_mels) * n_frames);
  for (auto& v : mel) v = rng.Uniform();
  auto enc = Encoder(f.weights).Encode(mel.data(), hp.n_mels, n_frames);
  EXPECT_TRUE(enc.ok());
  f.audio = enc->data;
  f.n_audio = enc->n_positions;
  return f;
}

std::vector<float> Incremental(const Fixture& f, const std::vector<int>& tokens) {
  const int V = f.model->hparams().n_vocab, n = static_cast<int>(tokens.size());
  auto s = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 1, n);
  EXPECT_TRUE(s.ok()) << s.status().message();
  std::vector<float> logits(static_cast<size_t>(n) * V);
  for (int i = 0; i < n; ++i) {
    Status st = s->Forward(&tokens[i], 1, 1, logits.data() + static_cast<size_t>(i) * V);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  EXPECT_EQ(s->length(), n);
  return logits;
}

TEST(DecoderSession, IncrementalMatchesDoubleReference) {
  for (DType dtype : {DType::F32, DType::F16}) {
    Fixture f = MakeFixture(3, dtype);
    const std::vector<int> tokens = {63, 5, 17, 40, 2, 9, 61, 33};
    const auto got = Incremental(f, tokens);
    const Mat want = ReferenceDecoder(*f.model, tokens, f.audio, f.n_audio);
    double max_ref = 0, max_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      max_ref = std::max(max_ref, std::fabs(want[i]));
      max_diff = std::max(max_diff, std::fabs(got[i] - want[i]));
    }
    EXPECT_LE(max_diff, 1e-5 * max_ref) << "diff " << max_diff << " ref " << max_ref;
  }
}

TEST(DecoderSession, CachedIncrementalEqualsWholeSequence) {
  Fixture f = MakeFixture(4);
  const int V = f.model->hparams().n_vocab;
  const std::vector<int> tokens = {63, 1, 2, 3, 50, 7, 7, 12, 30, 44, 0};
  const auto inc = Incremental(f, tokens);
  const int n = static_cast<int>(tokens.size());
  // All at once (causal mask inside one chunk), and in uneven chunks after a cached prefix.
  auto whole = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 1, n);
  ASSERT_TRUE(whole.ok());
  std::vector<float> all(static_cast<size_t>(n) * V);
  ASSERT_TRUE(whole->Forward(tokens.data(), 1, n, all.data(), true).ok());
  auto chunked = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 1, n);
  ASSERT_TRUE(chunked.ok());
  std::vector<float> parts(static_cast<size_t>(n) * V);
  ASSERT_TRUE(chunked->Forward(tokens.data(), 1, 4, parts.data(), true).ok());
  ASSERT_TRUE(chunked->Forward(tokens.data() + 4, 1, 7, parts.data() + 4 * V, true).ok());
  for (size_t i = 0; i < inc.size(); ++i) {
    ASSERT_NEAR(all[i], inc[i], 1e-5f * (1 + std::fabs(inc[i]))) << i;
    ASSERT_NEAR(parts[i], inc[i], 1e-5f * (1 + std::fabs(inc[i]))) << i;
  }
  // Without all_positions only the last token's logits come back.
  auto last = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 1, n);
  std::vector<float> last_logits(V);
  ASSERT_TRUE(last->Forward(tokens.data(), 1, n, last_logits.data()).ok());
  for (int v = 0; v < V; ++v) ASSERT_NEAR(last_logits[v], inc[(n - 1) * V + v], 1e-5f * (1 + std::fabs(inc[(n - 1) * V + v])));
}

TEST(DecoderSession, BatchedRowsEqualSingleRows) {
  Fixture f = MakeFixture(5);
  const int V = f.model->hparams().n_vocab;
  const std::vector<std::vector<int>> seqs = {{63, 4, 9, 1}, {63, 4, 20, 2}, {63, 8, 8, 8}};
  auto batch = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 3, 4);
  ASSERT_TRUE(batch.ok());
  std::vector<float> logits(3 * V);
  for (int step = 0; step < 4; ++step) {
    const std::vector<int> col = {seqs[0][step], seqs[1][step], seqs[2][step]};
    ASSERT_TRUE(batch->Forward(col.data(), 3, 1, logits.data()).ok());
  }
  for (int r = 0; r < 3; ++r) {
    const auto single = Incremental(f, seqs[r]);
    for (int v = 0; v < V; ++v) ASSERT_EQ(logits[r * V + v], single[3 * V + v]) << "row " << r << " id " << v;
  }
}

TEST(DecoderSession, ReorderFollowsSourceRows) {
  Fixture f = MakeFixture(6);
  const int V = f.model->hparams().n_vocab;
  // One prompt row, fanned out to three beams, then reordered the way beam search does.
  auto s = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 3, 6);
  ASSERT_TRUE(s.ok());
  std::vector<float> logits(3 * V);
  const std::vector<int> prompt = {63, 11};
  ASSERT_TRUE(s->Forward(prompt.data(), 1, 2, logits.data()).ok());
  ASSERT_TRUE(s->ReorderRows({0, 0, 0}).ok());
  ASSERT_TRUE(s->Forward(std::vector<int>{5, 6, 7}.data(), 3, 1, logits.data()).ok());
  ASSERT_TRUE(s->ReorderRows({2, 0}).ok());  // beam 0 continues old row 2, beam 1 old row 0; row 1 dropped
  EXPECT_EQ(s->rows(), 2);
  ASSERT_TRUE(s->Forward(std::vector<int>{9, 10}.data(), 2, 1, logits.data()).ok());
  ASSERT_TRUE(s->ReorderRows({1, 1, 0}).ok());
  ASSERT_TRUE(s->Forward(std::vector<int>{1, 2, 3}.data(), 3, 1, logits.data()).ok());
  const std::vector<std::vector<int>> expect = {{63, 11, 5, 10, 1}, {63, 11, 5, 10, 2}, {63, 11, 7, 9, 3}};
  for (int r = 0; r < 3; ++r) {
    const auto single = Incremental(f, expect[r]);
    for (int v = 0; v < V; ++v) ASSERT_EQ(logits[r * V + v], single[4 * V + v]) << "row " << r;
  }
}

TEST(DecoderSession, RejectsMisuse) {
  Fixture f = MakeFixture(8);
  const HyperParams& hp = f.model->hparams();
  std::vector<float> logits(4 * hp.n_vocab);
  EXPECT_FALSE(DecoderSession::Start(f.weights, f.audio.data(), 0, 1, 4).ok());
  EXPECT_FALSE(DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 1, hp.n_text_ctx + 1).ok());
  auto s = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 2, 3);
  ASSERT_TRUE(s.ok());
  const int bad = hp.n_vocab;
  Status st = s->Forward(&bad, 1, 1, logits.data());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("outside the vocabulary"), std::string::npos);
  const int neg = -1;
  EXPECT_FALSE(s->Forward(&neg, 1, 1, logits.data()).ok());
  const std::vector<int> four = {1, 2, 3, 4};
  st = s->Forward(four.data(), 1, 4, logits.data());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("exceed the context"), std::string::npos);
  EXPECT_FALSE(s->Forward(four.data(), 3, 1, logits.data()).ok());  // more rows than allocated
  ASSERT_TRUE(s->Forward(four.data(), 2, 1, logits.data()).ok());
  EXPECT_FALSE(s->Forward(four.data(), 1, 1, logits.data()).ok());  // row count changed without a reorder
  EXPECT_FALSE(s->ReorderRows({0, 2}).ok());                         // no row 2
  EXPECT_FALSE(s->ReorderRows({}).ok());
  s->Reset();
  EXPECT_EQ(s->length(), 0);
  EXPECT_TRUE(s->Forward(four.data(), 1, 3, logits.data()).ok());
}

// A model whose text context is long enough for the cache to grow several times during one decode.
Fixture MakeLongContextFixture(uint32_t seed, DType dtype, int n_text_ctx) {
  Fixture f;
  HyperParams hp = testutil::TinyHyperParams();
  hp.n_text_ctx = n_text_ctx;
  auto model = Model::FromBuffer(MakeRandomTinyModel(hp, seed, dtype));
  EXPECT_TRUE(model.ok()) << model.status().message();
  f.model = model.value();
  auto w = WhisperWeights::Bind(f.model);
  EXPECT_TRUE(w.ok()) << w.status().message();
  f.weights = w.value();
  testutil::TestRng rng(seed + 1);
  std::vector<float> mel(static_cast<size_t>(hp.n_mels) * 13);
  for (auto& v : mel) v = rng.Uniform();
  auto enc = Encoder(f.weights).Encode(mel.data(), hp.n_mels, 13);
  EXPECT_TRUE(enc.ok());
  f.audio = enc->data;
  f.n_audio = enc->n_positions;
  return f;
}

// Beam-search-like traffic (prompt, fan-out, reorders, dropped rows) on two sessions: one whose cache grows
// as tokens come, one that reserved every position first (one allocation, as the cache used to be). The
// logits must be equal bit for bit at every step, for each storage type.
TEST(DecoderSession, GrowingCacheGivesTheSameLogitsAsAReservedOne) {
  for (DType dtype : {DType::F32, DType::F16, DType::I8}) {
    const int ctx = 2 * KvCache::kGrowthStep + 40, rows = 3;  // grows twice
    Fixture f = MakeLongContextFixture(21, dtype, ctx);
    const int V = f.model->hparams().n_vocab;
    auto grown = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, rows, ctx);
    auto reserved = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, rows, ctx);
    ASSERT_TRUE(grown.ok() && reserved.ok());
    EXPECT_EQ(grown->cache_floats(), 0u);  // nothing before the first token
    ASSERT_TRUE(reserved->ReservePositions(ctx).ok());
    const size_t per_position = static_cast<size_t>(2) * f.model->hparams().n_text_layer * rows *
                                f.model->hparams().n_text_state;
    EXPECT_EQ(reserved->cache_floats(), per_position * ctx);

    std::vector<float> a(static_cast<size_t>(rows) * 3 * V), b(a.size());
    const std::vector<int> prompt = {63, 62, 11};
    ASSERT_TRUE(grown->Forward(prompt.data(), 1, 3, a.data(), true).ok());
    ASSERT_TRUE(reserved->Forward(prompt.data(), 1, 3, b.data(), true).ok());
    ASSERT_EQ(a, b);
    EXPECT_EQ(grown->cache_floats(), per_position * KvCache::kGrowthStep);
    testutil::TestRng rng(7);
    int live = 1;
    for (int step = 0; grown->length() < ctx; ++step) {
      // Next rows: each continues a random old row; sometimes fewer rows survive.
      const int next = (step % 17 == 16) ? 2 : rows;
      std::vector<int> src(next), tok(next);
      for (int r = 0; r < next; ++r) {
        src[r] = static_cast<int>(rng.Next() % live);
        tok[r] = static_cast<int>(rng.Next() % V);
      }
      ASSERT_TRUE(grown->ReorderRows(src).ok());
      ASSERT_TRUE(reserved->ReorderRows(src).ok());
      ASSERT_TRUE(grown->Forward(tok.data(), next, 1, a.data()).ok());
      ASSERT_TRUE(reserved->Forward(tok.data(), next, 1, b.data()).ok());
      for (size_t i = 0; i < static_cast<size_t>(next) * V; ++i)
        ASSERT_EQ(a[i], b[i]) << "dtype " << static_cast<int>(dtype) << " length " << grown->length();
      live = next;
    }
    EXPECT_EQ(grown->cache_floats(), per_position * ctx);
  }
}

TEST(DecoderSession, StartHoldsOnlyTheCrossAttentionKeysAndValues) {
  Fixture f = MakeLongContextFixture(22, DType::F32, 150);
  const HyperParams& hp = f.model->hparams();
  const size_t before = AlignedBuffer::LiveBytes();
  auto s = DecoderSession::Start(f.weights, f.audio.data(), f.n_audio, 5, 150);
  ASSERT_TRUE(s.ok());
  const size_t cross = static_cast<size_t>(2) * hp.n_text_layer * f.n_audio * hp.n_text_state * sizeof(float);
  // Each matrix is its own buffer, rounded up to AlignedBuffer's alignment.
  EXPECT_GE(AlignedBuffer::LiveBytes() - before, cross);
  EXPECT_LE(AlignedBuffer::LiveBytes() - before, cross + 2 * hp.n_text_layer * AlignedBuffer::kAlignment);
}

}  // namespace
}  // namespace earshot
