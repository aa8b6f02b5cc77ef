// Every way a model buffer can be wrong is refused with a clear message, and damaged buffers never crash the
// loader (truncation at many offsets, random bit flips).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "earshot_generated.h"
#include "model/model.h"
#include "model/tensor_names.h"
#include "unit/test_models.h"

namespace earshot {
namespace {

using testutil::MakeRandomTinyTensors;
using testutil::MakeTinyMeta;
using testutil::TinyHyperParams;

std::vector<uint8_t> ValidModelBytes(DType dtype = DType::F32) {
  AlignedBuffer b = MakeRandomTinyModel(TinyHyperParams(), 11, dtype);
  return std::vector<uint8_t>(b.data(), b.data() + b.size());
}

Status Load(const std::vector<uint8_t>& bytes) {
  auto model = Model::FromBuffer(AlignedBuffer(bytes.data(), bytes.size()));
  return model.ok() ? Status::Ok() : model.status();
}

Status Load(const std::vector<uint8_t>& bytes, size_t prefix) {
  auto model = Model::FromBuffer(AlignedBuffer(bytes.data(), prefix));
  return model.ok() ? Status::Ok() : model.status();
}

#define EXPECT_ERROR_HAS(status_expr, needle)                                                 \
  do {                                                                                        \
    const ::earshot::Status st_ = (status_expr);                                              \
    EXPECT_FALSE(st_.ok()) << "expected an error containing: " << (needle);                   \
    EXPECT_NE(st_.message().find(needle), std::string::npos) << "message: " << st_.message(); \
  } while (0)

Status Serialize(const ModelMeta& meta, const std::vector<TensorData>& tensors) {
  auto bytes = SerializeModel(meta, tensors);
  return bytes.ok() ? Status::Ok() : bytes.status();
}

// The FlatBuffers table behind a generated accessor, for patching a serialized model in place.
const flatbuffers::Table* AsTable(const void* generated_table) {
  return reinterpret_cast<const flatbuffers::Table*>(generated_table);
}

template <class T>
void Patch(const flatbuffers::Table* table, flatbuffers::voffset_t field, T value) {
  uint8_t* at = const_cast<uint8_t*>(table->GetAddressOf(field));
  ASSERT_NE(at, nullptr) << "field not stored";
  std::memcpy(at, &value, sizeof(T));
}

TEST(ModelVerify, ValidModelLoads) { EXPECT_TRUE(Load(ValidModelBytes()).ok()); }

TEST(ModelVerify, EmptyAndTinyBuffers) {
  EXPECT_ERROR_HAS(Load({}), "empty");
  EXPECT_ERROR_HAS(Load({1, 2, 3}), "too small");
}

TEST(ModelVerify, TruncatedAtManyOffsetsIsAnError) {
  const std::vector<uint8_t> bytes = ValidModelBytes();
  for (size_t n = 0; n < bytes.size(); n += (n < 512 || n + 512 > bytes.size()) ? 1 : 61) {
    const Status st = Load(bytes, n);
    if (st.ok()) {
      // Only the alignment padding after the last object may go unnoticed.
      ASSERT_LT(bytes.size() - n, 16u) << "prefix of " << n << " bytes loaded";
      for (size_t i = n; i < bytes.size(); ++i) ASSERT_EQ(bytes[i], 0) << "prefix of " << n << " bytes loaded";
    } else {
      ASSERT_FALSE(st.message().empty());
    }
  }
}

TEST(ModelVerify, RandomBitFlipsNeverCrash) {
  const std::vector<uint8_t> bytes = ValidModelBytes(DType::I4);
  std::mt19937 rng(1234);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 1500; ++i) {
    std::vector<uint8_t> damaged = bytes;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      // Half the flips land in the first 1 KiB (tables, vtables, offsets), where damage is most interesting.
      const size_t range = (k % 2 == 0) ? std::min<size_t>(1024, damaged.size()) : damaged.size();
      const size_t at = rng() % range;
      damaged[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    const Status st = Load(damaged);
    if (st.ok()) {
      ++loaded;  // e.g. a flipped weight bit
    } else {
      ++refused;
      ASSERT_FALSE(st.message().empty());
    }
  }
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

TEST(ModelVerify, WrongIdentifier) {
  std::vector<uint8_t> bytes = ValidModelBytes();
  std::memcpy(&bytes[4], "GGUF", 4);
  EXPECT_ERROR_HAS(Load(bytes), "not an .earshot model");
}

std::vector<uint8_t> ModelWithVersion(uint16_t major, uint16_t minor) {
  // A bare root table: a newer major version must be reported as such even when the rest is unreadable.
  flatbuffers::FlatBufferBuilder b;
  fb::ModelBuilder mb(b);
  mb.add_schema_major(major);
  mb.add_schema_minor(minor);
  const flatbuffers::Offset<fb::Model> root(mb.fbb_.EndTable(mb.start_));
  fb::FinishModelBuffer(b, root);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

TEST(ModelVerify, SchemaVersions) {
  EXPECT_ERROR_HAS(Load(ModelWithVersion(2, 3)),
                   "model file uses schema version 2.3; this earshot reads 1.x: upgrade earshot");
  EXPECT_ERROR_HAS(Load(ModelWithVersion(0, 9)), "schema version 0.9");
  // Same major, newer minor: accepted by the version check (then refused here for the missing tables).
  EXPECT_ERROR_HAS(Load(ModelWithVersion(1, 7)), "corrupt");
  ModelMeta meta = MakeTinyMeta(TinyHyperParams());
  meta.schema_major = 2;
  EXPECT_ERROR_HAS(Serialize(meta, MakeRandomTinyTensors(meta.hparams, 1)), "schema version 2");
}

class TensorErrors : public ::testing::Test {
 protected:
  HyperParams hp = TinyHyperParams();
  ModelMeta meta = MakeTinyMeta(hp);
  std::vector<TensorData> tensors = MakeRandomTinyTensors(hp, 5);

  TensorData& Get(const std::string& name) {
    for (TensorData& t : tensors) {
      if (t.name == name) return t;
    }
    ADD_FAILURE() << "no tensor " << name;
    return tensors[0];
  }
};

TEST_F(TensorErrors, MissingTensor) {
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                               [](const TensorData& t) { return t.name == "decoder.blocks.1.cross_attn.key.weight"; }),
                tensors.end());
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "missing tensor 'decoder.blocks.1.cross_attn.key.weight'");
}

TEST_F(TensorErrors, UnknownTensor) {
  TensorData extra = Get("encoder.blocks.0.attn.query.bias");
  extra.name = "encoder.blocks.0.attn.key.bias";  // Whisper's key projection has no bias
  tensors.push_back(extra);
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "unknown tensor 'encoder.blocks.0.attn.key.bias'");
  tensors.back().name = "encoder.blocks.2.attn.query.bias";  // one layer too many
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "unknown tensor 'encoder.blocks.2.attn.query.bias'");
}

TEST_F(TensorErrors, DuplicateTensor) {
  tensors.push_back(Get("decoder.ln.bias"));
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "tensor 'decoder.ln.bias' appears twice");
}

TEST_F(TensorErrors, WrongShape) {
  Get("encoder.blocks.1.mlp.0.weight").shape = {hp.n_audio_state, 4 * hp.n_audio_state};  // transposed
  EXPECT_ERROR_HAS(Serialize(meta, tensors),
                   "tensor 'encoder.blocks.1.mlp.0.weight' has shape [16, 64]; expected [64, 16]");
}

TEST_F(TensorErrors, WrongRank) {
  Get("encoder.conv1.weight").shape = {hp.n_audio_state, hp.n_mels * 3};
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "has shape [16, 24]; expected [16, 8, 3]");
}

TEST_F(TensorErrors, WrongByteCount) {
  Get("decoder.token_embedding.weight").data.resize(hp.n_vocab * hp.n_text_state * 4 - 4);
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "holds 4092 data bytes; its dtype and shape need 4096");
  tensors = MakeRandomTinyTensors(hp, 5, DType::F16);
  Get("encoder.conv2.weight").data.push_back(0);
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "tensor 'encoder.conv2.weight' (f16 [16, 16, 3]) holds");
}

TEST_F(TensorErrors, BadScales) {
  tensors = MakeRandomTinyTensors(hp, 5, DType::I8);
  Get("encoder.blocks.0.attn.out.weight").scales.resize(60);
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "holds 60 scale bytes; expected 64");

  tensors = MakeRandomTinyTensors(hp, 5, DType::I4);
  Get("encoder.blocks.0.attn.out.weight").scales.clear();
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "holds 0 scale bytes");

  tensors = MakeRandomTinyTensors(hp, 5, DType::I4);
  Get("encoder.blocks.0.mlp.2.weight").group_size = 3;
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "I4 group size 3 must be even and divide the 64 columns");

  tensors = MakeRandomTinyTensors(hp, 5, DType::F32);
  Get("encoder.ln_post.weight").scales = std::vector<uint8_t>(16, 0);  // float tensors have no scales
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "holds 16 scale bytes; expected 0");
}

TEST_F(TensorErrors, DTypeNotAllowedForRole) {
  Get("decoder.blocks.0.mlp.0.bias") = [&] {
    TensorData t =
        testutil::EncodeTestTensor("decoder.blocks.0.mlp.0.bias", {64}, std::vector<float>(64, 0.5f), DType::F32);
    t.dtype = DType::I8;  // a bias cannot be quantized
    t.data.resize(64);
    t.scales.resize(4 * 64);
    return t;
  }();
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "a bias cannot be stored as i8");
}

TEST_F(TensorErrors, PackedLayoutRules) {
  TensorData& w = Get("encoder.blocks.0.attn.query.weight");  // [16, 16] f32
  w.layout = TensorLayout::PackedTiles;
  w.pack_rows = 5;
  w.pack_cols = 3;
  // Padded to [20, 18] floats.
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "need 1440");
  w.data.assign(20 * 18 * 4, 0);
  EXPECT_TRUE(Serialize(meta, tensors).ok());
  w.pack_cols = 0;
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "packing tile 5x0 is invalid");
  w.pack_cols = 3;
  TensorData& ln = Get("encoder.ln_post.bias");
  ln.layout = TensorLayout::PackedTiles;
  EXPECT_ERROR_HAS(Serialize(meta, tensors), "only weight matrices may use a packed layout");
}

TEST_F(TensorErrors, RetiredAndUnknownLayoutsInTheFile) {
  TensorData& w = Get("encoder.blocks.0.attn.query.weight");  // [16, 16] f32
  w.layout = TensorLayout::PackedTiles;
  w.pack_rows = 4;
  w.pack_cols = 16;
  auto written = SerializeModel(meta, tensors);
  ASSERT_TRUE(written.ok()) << written.status().message();
  const std::vector<uint8_t> bytes(written->data(), written->data() + written->size());
  ASSERT_TRUE(Load(bytes).ok());
  const auto* stored = fb::GetModel(bytes.data())->tensors();
  int index = -1;
  for (int i = 0; i < static_cast<int>(stored->size()); ++i) {
    if (stored->Get(i)->name()->str() == w.name) index = i;
  }
  ASSERT_GE(index, 0);
  for (int8_t layout : {1, 7}) {
    std::vector<uint8_t> patched = bytes;
    Patch<int8_t>(AsTable(fb::GetModel(patched.data())->tensors()->Get(index)), fb::Tensor::VT_LAYOUT, layout);
    EXPECT_ERROR_HAS(Load(patched), layout == 1 ? "tensor '" + w.name + "' uses the packed byte order of earlier"
                                                : "tensor '" + w.name + "' has an unknown layout 7");
  }
}

TEST(TensorStorage, Rules) {
  auto s = ComputeTensorStorage(DType::I4, TensorLayout::Plain, {6, 4, 3}, 4);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->data_bytes, 36u);    // 72 nibbles
  EXPECT_EQ(s->scales_bytes, 36u);  // 6 rows x 3 groups x f16
  s = ComputeTensorStorage(DType::I8, TensorLayout::PackedTiles, {5, 7}, 0, 4, 4);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->data_bytes, 64u);
  EXPECT_EQ(s->scales_bytes, 20u);
  EXPECT_FALSE(ComputeTensorStorage(DType::F32, TensorLayout::Plain, {}, 0).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::F32, TensorLayout::Plain, {3, 0}, 0).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::F32, TensorLayout::Plain, {3, -2}, 0).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::F32, TensorLayout::Plain, {int64_t{1} << 30, int64_t{1} << 30}, 0).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::I8, TensorLayout::Plain, {16}, 0).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::F16, TensorLayout::Plain, {4, 4}, 2).ok());
  EXPECT_FALSE(ComputeTensorStorage(DType::I4, TensorLayout::PackedTiles, {4, 4}, 2, 4, 3).ok());
}

class MetaErrors : public ::testing::Test {
 protected:
  HyperParams hp = TinyHyperParams();
  ModelMeta meta = MakeTinyMeta(hp);
  Status Try() { return Serialize(meta, MakeRandomTinyTensors(meta.hparams, 3)); }
};

TEST_F(MetaErrors, HyperParams) {
  meta.hparams.n_audio_head = 3;
  EXPECT_ERROR_HAS(Try(), "n_audio_state 16 is not divisible by n_audio_head 3");
  meta.hparams = hp;
  meta.hparams.n_text_layer = 0;
  EXPECT_ERROR_HAS(Try(), "n_text_layer = 0 is out of range");
  meta.hparams = hp;
  meta.hparams.n_audio_ctx = 1 << 20;
  EXPECT_ERROR_HAS(Try(), "n_audio_ctx");
  meta.hparams = hp;
  meta.hparams.n_text_state = 32;
  EXPECT_ERROR_HAS(Try(), "n_audio_state 16 differs from n_text_state 32");
  meta.hparams = hp;
  meta.hparams.conv1_stride = 3;
  EXPECT_ERROR_HAS(Try(), "conv1_stride = 3 is not 1, 2 or 4");
  meta.hparams.conv1_stride = 0;
  EXPECT_ERROR_HAS(Try(), "conv1_stride = 0 is not 1, 2 or 4");
  meta.hparams = hp;
  meta.hparams.variable_length_audio = true;
  meta.hparams.edge_silence_ms = -1;
  EXPECT_ERROR_HAS(Try(), "edge_silence_ms = -1 is out of range");
  meta.hparams.edge_silence_ms = 1001;
  EXPECT_ERROR_HAS(Try(), "edge_silence_ms = 1001 is out of range");
  meta.hparams.variable_length_audio = false;
  meta.hparams.edge_silence_ms = 250;
  EXPECT_ERROR_HAS(Try(), "edge_silence_ms applies to variable-length models only");
}

TEST_F(MetaErrors, Mel) {
  meta.mel.n_mels = 80;
  EXPECT_ERROR_HAS(Try(), "mel settings have n_mels = 80 but the hyper-parameters say n_mels = 8");
  meta.mel.n_mels = hp.n_mels;
  meta.mel.filters.assign(5, 0.f);
  EXPECT_ERROR_HAS(Try(), "mel filter bank has 5 values");
  meta.mel.filters.clear();
  meta.mel.hop_length = 0;
  EXPECT_ERROR_HAS(Try(), "mel hop_length = 0");
}

TEST_F(MetaErrors, SpecialTokenIds) {
  meta.special.sot = hp.n_vocab;
  EXPECT_ERROR_HAS(Try(), "special sot token id 64 is outside the vocabulary [0, 64)");
  meta = MakeTinyMeta(hp);
  meta.special.eot = -1;
  EXPECT_ERROR_HAS(Try(), "special eot token id -1");
  meta = MakeTinyMeta(hp);
  meta.special.timestamp_begin = -5;
  EXPECT_ERROR_HAS(Try(), "special timestamp_begin token id -5");
  meta = MakeTinyMeta(hp);
  meta.special.suppress_tokens = {1, 99};
  EXPECT_ERROR_HAS(Try(), "suppressed token id 99");
  meta = MakeTinyMeta(hp);
  meta.special.begin_suppress_tokens = {-2};
  EXPECT_ERROR_HAS(Try(), "begin-suppressed token id -2");
  meta = MakeTinyMeta(hp);
  meta.special.default_prompt = {};
  EXPECT_ERROR_HAS(Try(), "default prompt is empty");
  meta = MakeTinyMeta(hp);
  meta.special.languages = {{"en", 64}};
  EXPECT_ERROR_HAS(Try(), "language 'en' token id 64");
  meta = MakeTinyMeta(hp);
  meta.vocab.special_ids.push_back(70);
  EXPECT_ERROR_HAS(Try(), "vocabulary special token id 70");
}

TEST_F(MetaErrors, VocabularySizeAndAlignmentHeads) {
  meta.vocab.tokens.pop_back();
  EXPECT_ERROR_HAS(Try(), "vocabulary has 63 tokens; n_vocab = 64");
  meta = MakeTinyMeta(hp);
  meta.alignment_heads = {{1, 1}, {2, 0}};
  EXPECT_ERROR_HAS(Try(), "alignment head (layer 2, head 0)");
  meta.alignment_heads = {{0, 2}};
  EXPECT_ERROR_HAS(Try(), "alignment head (layer 0, head 2)");
}

// Damage that SerializeModel cannot produce, patched into a valid buffer: the loader's own checks.
TEST(ModelVerifyPatched, BadVocabularyOffsets) {
  std::vector<uint8_t> bytes = ValidModelBytes();
  const auto* offsets = fb::GetModel(bytes.data())->vocab()->token_offsets();
  uint32_t* first = const_cast<uint32_t*>(reinterpret_cast<const uint32_t*>(offsets->Data()));
  std::vector<uint8_t> damaged = bytes;
  // Same position in the copy.
  uint32_t* o = reinterpret_cast<uint32_t*>(damaged.data() + (reinterpret_cast<uint8_t*>(first) - bytes.data()));
  std::swap(o[5], o[6]);  // decreasing
  EXPECT_ERROR_HAS(Load(damaged), "token offsets are not increasing");

  damaged = bytes;
  o = reinterpret_cast<uint32_t*>(damaged.data() + (reinterpret_cast<uint8_t*>(first) - bytes.data()));
  o[3] = 0x7FFFFFF0;  // jumps past the token bytes, then back
  EXPECT_ERROR_HAS(Load(damaged), "token offsets are not increasing");

  damaged = bytes;
  o = reinterpret_cast<uint32_t*>(damaged.data() + (reinterpret_cast<uint8_t*>(first) - bytes.data()));
  o[0] = 1;
  EXPECT_ERROR_HAS(Load(damaged), "the first token offset is not 0");

  damaged = bytes;
  o = reinterpret_cast<uint32_t*>(damaged.data() + (reinterpret_cast<uint8_t*>(first) - bytes.data()));
  o[offsets->size() - 1] -= 1;
  EXPECT_ERROR_HAS(Load(damaged), "the last token offset");
}

TEST(ModelVerifyPatched, FieldsOutOfRange) {
  {
    std::vector<uint8_t> bytes = ValidModelBytes();
    Patch<int32_t>(AsTable(fb::GetModel(bytes.data())->special()), fb::SpecialTokens::VT_SOT, 1000);
    EXPECT_ERROR_HAS(Load(bytes), "special sot token id 1000");
  }
  {
    std::vector<uint8_t> bytes = ValidModelBytes();
    Patch<int32_t>(AsTable(fb::GetModel(bytes.data())->hparams()), fb::HyperParams::VT_N_VOCAB, 1 << 30);
    EXPECT_ERROR_HAS(Load(bytes), "hyper-parameters: n_vocab = 1073741824 is out of range");
  }
  {
    std::vector<uint8_t> bytes = ValidModelBytes();
    Patch<int32_t>(AsTable(fb::GetModel(bytes.data())->hparams()), fb::HyperParams::VT_N_VOCAB, 63);
    EXPECT_ERROR_HAS(Load(bytes), "vocabulary: 65 token offsets; expected n_vocab + 1 = 64");
  }
}

TEST(ModelVerifyPatched, UnknownEnumValues) {
  std::vector<uint8_t> bytes = ValidModelBytes(DType::F16);
  const auto* tensors = fb::GetModel(bytes.data())->tensors();
  const fb::Tensor* t = nullptr;
  for (const fb::Tensor* x : *tensors) {
    if (x->dtype() == fb::DType::F16) t = x;
  }
  ASSERT_NE(t, nullptr);
  const std::string name = t->name()->str();
  Patch<int8_t>(AsTable(t), fb::Tensor::VT_DTYPE, 9);
  EXPECT_ERROR_HAS(Load(bytes), "tensor '" + name + "' has an unknown dtype 9");
}

TEST(ModelVerifyPatched, UnalignedTensorData) {
  // Written without FlatBuffers' forced alignment, some tensor data starts off a 16-byte boundary.
  const HyperParams hp = TinyHyperParams();
  const ModelMeta meta = MakeTinyMeta(hp);
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Tensor>> offsets;
  for (const TensorData& t : MakeRandomTinyTensors(hp, 2)) {
    auto name = b.CreateString(t.name);
    auto shape = b.CreateVector(t.shape);
    b.PreAlign(t.data.size() + 4, 16);  // length prefix on the boundary: data 4 bytes past it
    auto data = b.CreateVector(t.data);
    offsets.push_back(fb::CreateTensor(b, name, shape, fb::DType::F32, fb::Layout::Plain, 0, 0, 0, 0, data));
  }
  std::string token_bytes;
  std::vector<uint32_t> token_offsets{0};
  for (const std::string& s : meta.vocab.tokens) {
    token_bytes += s;
    token_offsets.push_back(static_cast<uint32_t>(token_bytes.size()));
  }
  auto vocab =
      fb::CreateVocabulary(b, fb::TokenizerKind::ByteLevelBpe,
                           b.CreateVector(reinterpret_cast<const uint8_t*>(token_bytes.data()), token_bytes.size()),
                           b.CreateVector(token_offsets));
  auto special = fb::CreateSpecialTokens(b, meta.special.sot, meta.special.eot, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0,
                                         b.CreateVector(meta.special.default_prompt));
  auto hparams =
      fb::CreateHyperParams(b, hp.n_mels, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head, hp.n_audio_layer,
                            hp.n_text_ctx, hp.n_text_state, hp.n_text_head, hp.n_text_layer, hp.n_vocab, true);
  auto mel = fb::CreateMelSettings(b, 16000, 400, 160, hp.n_mels);
  auto root = fb::CreateModel(b, 1, 0, hparams, mel, vocab, special, 0, 0, 0, b.CreateVector(offsets));
  fb::FinishModelBuffer(b, root);
  const std::vector<uint8_t> bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  EXPECT_ERROR_HAS(Load(bytes), "data is not 16-byte aligned");
}

TEST(TensorNames, ExpectedSetForTinyModel) {
  const HyperParams hp = TinyHyperParams();
  const std::vector<TensorSpec> specs = ExpectedTensorSpecs(hp);
  // Encoder: 2 convs (4) + positions + per layer 15; ln_post 2. Decoder: embedding, positions, per layer 24, ln 2.
  EXPECT_EQ(specs.size(), 4u + 1 + 2 * 15 + 2 + 2 + 2 * 24 + 2);
  int optional = 0;
  for (const TensorSpec& s : specs) optional += !s.required;
  EXPECT_EQ(optional, 1);
  auto find = [&](const std::string& name) -> const TensorSpec* {
    for (const TensorSpec& s : specs) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  ASSERT_NE(find("decoder.blocks.1.cross_attn.value.bias"), nullptr);
  EXPECT_EQ(find("decoder.blocks.1.cross_attn.key.bias"), nullptr);
  EXPECT_EQ(find("encoder.conv1.weight")->shape, (std::vector<int64_t>{16, 8, 3}));
  EXPECT_EQ(find("decoder.token_embedding.weight")->shape, (std::vector<int64_t>{64, 16}));
  EXPECT_EQ(find("decoder.positional_embedding")->shape, (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(find("encoder.blocks.0.mlp.2.weight")->shape, (std::vector<int64_t>{16, 64}));
  EXPECT_TRUE(DTypeAllowedForRole(find("encoder.blocks.0.mlp.2.weight")->role, DType::I4));
  EXPECT_FALSE(DTypeAllowedForRole(find("encoder.blocks.0.mlp.2.bias")->role, DType::I8));
  EXPECT_FALSE(DTypeAllowedForRole(find("decoder.positional_embedding")->role, DType::I8));
  EXPECT_TRUE(DTypeAllowedForRole(find("decoder.ln.weight")->role, DType::F16));
}

}  // namespace
}  // namespace earshot
