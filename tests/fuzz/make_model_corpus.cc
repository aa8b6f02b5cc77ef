// Writes the seed corpus of model_fuzz: tiny valid models covering every dtype, a packed tensor and every
// metadata field. Not part of the build; regenerate with (from the repository root, after a native build in
// build/modelio so that the generated schema header exists):
//   g++ -std=c++17 -Isrc -Itests -Ibuild/modelio/generated tests/fuzz/make_model_corpus.cc src/model/model.cc \
//       src/model/tensor_names.cc -lgtest -lpthread -o /tmp/make_model_corpus
//   /tmp/make_model_corpus tests/fuzz/corpus_model
#include <cstdio>
#include <string>

#include "unit/test_models.h"

namespace {

using namespace earshot;  // NOLINT: one-off tool

bool Write(const std::string& path, const ModelMeta& meta, const std::vector<TensorData>& tensors) {
  auto bytes = SerializeModel(meta, tensors);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), bytes.status().message().c_str());
    return false;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes->data(), 1, bytes->size(), f) == bytes->size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_model_corpus OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  HyperParams hp;
  hp.n_mels = 2;
  hp.n_audio_ctx = 3;
  hp.n_audio_state = hp.n_text_state = 4;
  hp.n_audio_head = hp.n_text_head = 2;
  hp.n_audio_layer = hp.n_text_layer = 1;
  hp.n_text_ctx = 4;
  hp.n_vocab = 6;
  const ModelMeta meta = testutil::MakeTinyMeta(hp);
  bool ok = Write(dir + "/tiny_f32.earshot", meta, testutil::MakeRandomTinyTensors(hp, 1, DType::F32));
  ok &= Write(dir + "/tiny_i8.earshot", meta, testutil::MakeRandomTinyTensors(hp, 2, DType::I8));
  ok &= Write(dir + "/tiny_i4.earshot", meta, testutil::MakeRandomTinyTensors(hp, 3, DType::I4, true));

  ModelMeta full = meta;
  full.vocab.kind = TokenizerKind::SentencePiece;
  full.mel.n_fft = 4;
  full.mel.hop_length = 2;
  full.mel.filters.assign(hp.n_mels * 3, 0.5f);
  full.special.no_timestamps = 0;
  full.special.timestamp_begin = 1;
  full.special.languages = {{"en", 2}};
  full.special.suppress_tokens = {0};
  full.special.begin_suppress_tokens = {4};
  full.card = {"name", "1", "desc", "MIT", "data", "{}", {"en"}, {{"dev", "greedy", 1.5f, 10}}};
  full.alignment_heads = {{0, 1}};
  full.quant.method = "test";
  full.quant.layers = {{"encoder.conv1.weight", DType::I8, 0, 24, 0.1f}};
  std::vector<TensorData> tensors = testutil::MakeRandomTinyTensors(hp, 4, DType::F16);
  for (TensorData& t : tensors) {
    if (t.name == "decoder.blocks.0.mlp.0.weight") {  // [16, 4] f16 packed in 8x8 tiles
      t.layout = TensorLayout::PackedTiles;
      t.pack_rows = t.pack_cols = 8;
      t.data.assign(16 * 8 * 2, 0);
    }
  }
  ok &= Write(dir + "/tiny_full_meta.earshot", full, tensors);
  return ok ? 0 : 1;
}
