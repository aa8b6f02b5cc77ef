#include "model/model.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <unordered_set>

#include "earshot_generated.h"
#include "model/tensor_names.h"

namespace earshot {
namespace {

namespace fbs = ::earshot::fb;

// Bounds on hyper-parameters. Generous for every Whisper size and our own models, small enough that products
// of them cannot overflow and that a hostile header cannot make the loader build huge tables.
constexpr int kMaxMels = 512;
constexpr int kMaxContext = 1 << 16;
constexpr int kMaxState = 1 << 14;
constexpr int kMaxHeads = 1 << 10;
constexpr int kMaxLayers = 256;
constexpr int kMaxVocab = 1 << 20;
constexpr int kMaxTile = 1024;
constexpr int kMaxEdgeSilenceMs = 1000;
constexpr int64_t kMaxElements = int64_t{1} << 40;

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

// A name from the file as it appears in an error message: a hostile file must not make messages huge.
std::string Shown(const std::string& name) {
  constexpr size_t kMax = 120;
  return name.size() <= kMax ? name : name.substr(0, kMax) + "...";
}

template <class T>
std::vector<T> Vec(const flatbuffers::Vector<T>* v) {
  return v ? std::vector<T>(v->begin(), v->end()) : std::vector<T>();
}

// ---- enum conversions (the schema's enums and model.h's mirror each other value for value) ----------------

bool DTypeFromFb(fbs::DType in, DType* out) {
  const int v = static_cast<int>(in);
  if (v < 0 || v > static_cast<int>(DType::I4)) return false;
  *out = static_cast<DType>(v);
  return true;
}
fbs::DType DTypeToFb(DType d) { return static_cast<fbs::DType>(static_cast<int8_t>(d)); }

bool LayoutFromFb(fbs::Layout in, TensorLayout* out) {
  if (in != fbs::Layout::Plain && in != fbs::Layout::PackedTiles) return false;
  *out = static_cast<TensorLayout>(static_cast<int>(in));
  return true;
}
fbs::Layout LayoutToFb(TensorLayout l) { return static_cast<fbs::Layout>(static_cast<int8_t>(l)); }

bool TokenizerFromFb(fbs::TokenizerKind in, TokenizerKind* out) {
  const int v = static_cast<int>(in);
  if (v < 0 || v > static_cast<int>(TokenizerKind::SentencePiece)) return false;
  *out = static_cast<TokenizerKind>(v);
  return true;
}
fbs::TokenizerKind TokenizerToFb(TokenizerKind k) { return static_cast<fbs::TokenizerKind>(static_cast<int8_t>(k)); }

// ---- checks shared by the loader and the writer ------------------------------------------------------------

Status CheckRange(const char* what, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return Status::Error(std::string(what) + " = " + std::to_string(value) + " is out of range [" + std::to_string(lo) +
                         ", " + std::to_string(hi) + "]");
  }
  return Status::Ok();
}

Status CheckHyperParams(const HyperParams& hp) {
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_mels", hp.n_mels, 1, kMaxMels));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_audio_ctx", hp.n_audio_ctx, 1, kMaxContext));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_audio_state", hp.n_audio_state, 1, kMaxState));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_audio_head", hp.n_audio_head, 1, kMaxHeads));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_audio_layer", hp.n_audio_layer, 1, kMaxLayers));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_text_ctx", hp.n_text_ctx, 2, kMaxContext));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_text_state", hp.n_text_state, 1, kMaxState));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_text_head", hp.n_text_head, 1, kMaxHeads));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_text_layer", hp.n_text_layer, 1, kMaxLayers));
  EARSHOT_RETURN_IF_ERROR(CheckRange("n_vocab", hp.n_vocab, 1, kMaxVocab));
  if (hp.conv1_stride != 1 && hp.conv1_stride != 2 && hp.conv1_stride != 4) {
    return Status::Error("conv1_stride = " + std::to_string(hp.conv1_stride) + " is not 1, 2 or 4");
  }
  EARSHOT_RETURN_IF_ERROR(CheckRange("edge_silence_ms", hp.edge_silence_ms, 0, kMaxEdgeSilenceMs));
  if (hp.edge_silence_ms > 0 && !hp.variable_length_audio)
    return Status::Error("edge_silence_ms applies to variable-length models only (fixed-window models pad the window)");
  if (hp.n_audio_state % hp.n_audio_head != 0) {
    return Status::Error("n_audio_state " + std::to_string(hp.n_audio_state) + " is not divisible by n_audio_head " +
                         std::to_string(hp.n_audio_head));
  }
  if (hp.n_text_state % hp.n_text_head != 0) {
    return Status::Error("n_text_state " + std::to_string(hp.n_text_state) + " is not divisible by n_text_head " +
                         std::to_string(hp.n_text_head));
  }
  // Cross-attention keys/values are projected from the encoder output with [d_t, d_a] weights; the engine (like
  // Whisper) assumes one model width.
  if (hp.n_audio_state != hp.n_text_state) {
    return Status::Error("n_audio_state " + std::to_string(hp.n_audio_state) + " differs from n_text_state " +
                         std::to_string(hp.n_text_state) + " (both stacks must have the same width)");
  }
  return Status::Ok();
}

Status CheckMel(const MelSettings& mel, const HyperParams& hp) {
  EARSHOT_RETURN_IF_ERROR(CheckRange("mel sample_rate", mel.sample_rate, 1000, 192000));
  EARSHOT_RETURN_IF_ERROR(CheckRange("mel n_fft", mel.n_fft, 2, 1 << 16));
  EARSHOT_RETURN_IF_ERROR(CheckRange("mel hop_length", mel.hop_length, 1, mel.n_fft));
  EARSHOT_RETURN_IF_ERROR(CheckRange("mel chunk_seconds", mel.chunk_seconds, 1, 3600));
  if (mel.n_mels != hp.n_mels) {
    return Status::Error("mel settings have n_mels = " + std::to_string(mel.n_mels) +
                         " but the hyper-parameters say n_mels = " + std::to_string(hp.n_mels));
  }
  if (!mel.filters.empty()) {
    const size_t expected = static_cast<size_t>(mel.n_mels) * static_cast<size_t>(mel.n_fft / 2 + 1);
    if (mel.filters.size() != expected) {
      return Status::Error("mel filter bank has " + std::to_string(mel.filters.size()) +
                           " values; n_mels x (n_fft/2+1) = " + std::to_string(expected));
    }
    for (float f : mel.filters) {
      if (!std::isfinite(f)) return Status::Error("mel filter bank holds a non-finite value");
    }
  }
  return Status::Ok();
}

Status CheckTokenId(const std::string& what, int id, int n_vocab, bool allow_none) {
  if (allow_none && id == -1) return Status::Ok();
  if (id < 0 || id >= n_vocab) {
    return Status::Error(what + " token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                         std::to_string(n_vocab) + ")");
  }
  return Status::Ok();
}

Status CheckTokenList(const std::string& what, const std::vector<int>& ids, int n_vocab) {
  for (int id : ids) EARSHOT_RETURN_IF_ERROR(CheckTokenId(what, id, n_vocab, false));
  return Status::Ok();
}

Status CheckSpecialTokens(const SpecialTokens& s, const HyperParams& hp) {
  const int n = hp.n_vocab;
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special sot", s.sot, n, false));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special eot", s.eot, n, false));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special sot_prev", s.sot_prev, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special sot_lm", s.sot_lm, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special no_speech", s.no_speech, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special no_timestamps", s.no_timestamps, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special timestamp_begin", s.timestamp_begin, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special transcribe", s.transcribe, n, true));
  EARSHOT_RETURN_IF_ERROR(CheckTokenId("special translate", s.translate, n, true));
  for (const Language& lang : s.languages) {
    if (lang.code.empty() || lang.code.size() > 16) {
      return Status::Error("language code '" + Shown(lang.code) + "' is empty or too long");
    }
    EARSHOT_RETURN_IF_ERROR(CheckTokenId("language '" + lang.code + "'", lang.token, n, false));
  }
  EARSHOT_RETURN_IF_ERROR(CheckTokenList("suppressed", s.suppress_tokens, n));
  EARSHOT_RETURN_IF_ERROR(CheckTokenList("begin-suppressed", s.begin_suppress_tokens, n));
  EARSHOT_RETURN_IF_ERROR(CheckTokenList("default prompt", s.default_prompt, n));
  if (s.default_prompt.empty()) return Status::Error("the default prompt is empty (it must start with sot)");
  if (s.default_prompt.size() >= static_cast<size_t>(hp.n_text_ctx)) {
    return Status::Error("the default prompt (" + std::to_string(s.default_prompt.size()) +
                         " tokens) leaves no room in n_text_ctx = " + std::to_string(hp.n_text_ctx));
  }
  return Status::Ok();
}

Status CheckVocabulary(const Vocabulary& v, const HyperParams& hp) {
  if (v.tokens.size() != static_cast<size_t>(hp.n_vocab)) {
    return Status::Error("vocabulary has " + std::to_string(v.tokens.size()) +
                         " tokens; n_vocab = " + std::to_string(hp.n_vocab));
  }
  return CheckTokenList("vocabulary special", v.special_ids, hp.n_vocab);
}

Status CheckAlignmentHeads(const std::vector<AlignmentHead>& heads, const HyperParams& hp) {
  for (const AlignmentHead& h : heads) {
    if (h.layer < 0 || h.layer >= hp.n_text_layer || h.head < 0 || h.head >= hp.n_text_head) {
      return Status::Error("alignment head (layer " + std::to_string(h.layer) + ", head " + std::to_string(h.head) +
                           ") is outside the decoder's " + std::to_string(hp.n_text_layer) + " layers x " +
                           std::to_string(hp.n_text_head) + " heads");
    }
  }
  return Status::Ok();
}

std::string TensorLabel(const TensorRef& t) {
  return "tensor '" + t.name + "' (" + DTypeName(t.dtype) + " " + ShapeToString(t.shape) + ")";
}

// Checks one tensor against the expected spec; the caller has matched the name.
Status CheckTensor(const TensorRef& t, const TensorSpec& spec) {
  if (t.shape != spec.shape) {
    return Status::Error("tensor '" + t.name + "' has shape " + ShapeToString(t.shape) + "; expected " +
                         ShapeToString(spec.shape));
  }
  if (!DTypeAllowedForRole(spec.role, t.dtype)) {
    return Status::Error(TensorLabel(t) + ": a " + TensorRoleName(spec.role) + " cannot be stored as " +
                         DTypeName(t.dtype));
  }
  if (t.layout != TensorLayout::Plain && !IsQuantizableRole(spec.role)) {
    return Status::Error(TensorLabel(t) + ": only weight matrices may use a packed layout");
  }
  auto storage = ComputeTensorStorage(t.dtype, t.layout, t.shape, t.group_size, t.pack_rows, t.pack_cols);
  if (!storage.ok()) return storage.status().With(TensorLabel(t));
  if (t.nbytes != storage->data_bytes) {
    return Status::Error(TensorLabel(t) + " holds " + std::to_string(t.nbytes) +
                         " data bytes; its dtype and shape need " + std::to_string(storage->data_bytes));
  }
  if (t.scales_nbytes != storage->scales_bytes) {
    return Status::Error(TensorLabel(t) + " holds " + std::to_string(t.scales_nbytes) + " scale bytes; expected " +
                         std::to_string(storage->scales_bytes));
  }
  // SIMD kernels read the data in place.
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0) {
    return Status::Error(TensorLabel(t) + ": data is not 16-byte aligned");
  }
  if (t.scales_nbytes && reinterpret_cast<uintptr_t>(t.scales) % 16 != 0) {
    return Status::Error(TensorLabel(t) + ": scales are not 16-byte aligned");
  }
  return Status::Ok();
}

struct ParsedModel {
  ModelMeta meta;
  std::vector<TensorRef> tensors;
  std::unordered_map<std::string, size_t> index;
};

// Checks the tensor list against the hyper-parameters: every name known and unique, every required tensor present,
// shapes/dtypes/byte counts right. Fills `index`.
Status CheckTensors(const HyperParams& hp, const std::vector<TensorRef>& tensors,
                    std::unordered_map<std::string, size_t>* index) {
  const std::vector<TensorSpec> specs = ExpectedTensorSpecs(hp);
  std::unordered_map<std::string, const TensorSpec*> by_name;
  by_name.reserve(specs.size());
  for (const TensorSpec& s : specs) by_name.emplace(s.name, &s);
  index->clear();
  index->reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRef& t = tensors[i];
    auto spec = by_name.find(t.name);
    if (spec == by_name.end()) {
      return Status::Error("unknown tensor '" + Shown(t.name) + "' (not part of a model with these hyper-parameters)");
    }
    if (!index->emplace(t.name, i).second) return Status::Error("tensor '" + t.name + "' appears twice");
    EARSHOT_RETURN_IF_ERROR(CheckTensor(t, *spec->second));
  }
  for (const TensorSpec& s : specs) {
    if (s.required && !index->count(s.name)) return Status::Error("missing tensor '" + s.name + "'");
  }
  return Status::Ok();
}

Status CheckMeta(const ModelMeta& m) {
  EARSHOT_RETURN_IF_ERROR(CheckHyperParams(m.hparams).With("hyper-parameters"));
  EARSHOT_RETURN_IF_ERROR(CheckMel(m.mel, m.hparams));
  EARSHOT_RETURN_IF_ERROR(CheckVocabulary(m.vocab, m.hparams));
  EARSHOT_RETURN_IF_ERROR(CheckSpecialTokens(m.special, m.hparams));
  EARSHOT_RETURN_IF_ERROR(CheckAlignmentHeads(m.alignment_heads, m.hparams));
  for (const LayerPrecision& l : m.quant.layers) {
    if (l.group_size < 0 || l.bytes < 0) {
      return Status::Error("quantization report entry for '" + Shown(l.tensor) + "' has a negative size");
    }
  }
  return Status::Ok();
}

// ---- reading (FlatBuffers tables -> ModelMeta / TensorRef) ------------------------------------------------

Status ReadVocabulary(const fbs::Vocabulary& fv, int n_vocab, Vocabulary* out) {
  if (!TokenizerFromFb(fv.kind(), &out->kind)) {
    return Status::Error("vocabulary: unknown tokenizer kind " + std::to_string(static_cast<int>(fv.kind())));
  }
  const auto* bytes = fv.token_bytes();
  const auto* offsets = fv.token_offsets();
  if (offsets->size() != static_cast<size_t>(n_vocab) + 1) {
    return Status::Error("vocabulary: " + std::to_string(offsets->size()) +
                         " token offsets; expected n_vocab + 1 = " + std::to_string(static_cast<int64_t>(n_vocab) + 1));
  }
  if (offsets->Get(0) != 0) return Status::Error("vocabulary: the first token offset is not 0");
  if (offsets->Get(n_vocab) != bytes->size()) {
    return Status::Error("vocabulary: the last token offset " + std::to_string(offsets->Get(n_vocab)) +
                         " does not match the " + std::to_string(bytes->size()) + " token bytes");
  }
  out->tokens.clear();
  out->tokens.reserve(n_vocab);
  for (int i = 0; i < n_vocab; ++i) {
    const uint32_t begin = offsets->Get(i), end = offsets->Get(i + 1);
    if (end < begin || end > bytes->size()) {
      return Status::Error("vocabulary: token offsets are not increasing within the token bytes at token " +
                           std::to_string(i));
    }
    out->tokens.emplace_back(reinterpret_cast<const char*>(bytes->data()) + begin, end - begin);
  }
  out->special_ids = Vec(fv.special_ids());
  return Status::Ok();
}

Status ReadMeta(const fbs::Model& fm, ModelMeta* m) {
  m->schema_major = fm.schema_major();
  m->schema_minor = fm.schema_minor();

  const fbs::HyperParams& fh = *fm.hparams();
  HyperParams& hp = m->hparams;
  hp.n_mels = fh.n_mels();
  hp.n_audio_ctx = fh.n_audio_ctx();
  hp.n_audio_state = fh.n_audio_state();
  hp.n_audio_head = fh.n_audio_head();
  hp.n_audio_layer = fh.n_audio_layer();
  hp.n_text_ctx = fh.n_text_ctx();
  hp.n_text_state = fh.n_text_state();
  hp.n_text_head = fh.n_text_head();
  hp.n_text_layer = fh.n_text_layer();
  hp.n_vocab = fh.n_vocab();
  hp.variable_length_audio = fh.variable_length_audio();
  hp.conv1_stride = fh.conv1_stride();
  hp.edge_silence_ms = fh.edge_silence_ms();
  // Validated before anything is sized from them.
  EARSHOT_RETURN_IF_ERROR(CheckHyperParams(hp).With("hyper-parameters"));

  const fbs::MelSettings& fmel = *fm.mel();
  m->mel.sample_rate = fmel.sample_rate();
  m->mel.n_fft = fmel.n_fft();
  m->mel.hop_length = fmel.hop_length();
  m->mel.n_mels = fmel.n_mels();
  m->mel.chunk_seconds = fmel.chunk_seconds();
  m->mel.filters = Vec(fmel.filters());

  EARSHOT_RETURN_IF_ERROR(ReadVocabulary(*fm.vocab(), hp.n_vocab, &m->vocab));

  const fbs::SpecialTokens& fs = *fm.special();
  SpecialTokens& s = m->special;
  s.sot = fs.sot();
  s.eot = fs.eot();
  s.sot_prev = fs.sot_prev();
  s.sot_lm = fs.sot_lm();
  s.no_speech = fs.no_speech();
  s.no_timestamps = fs.no_timestamps();
  s.timestamp_begin = fs.timestamp_begin();
  s.transcribe = fs.transcribe();
  s.translate = fs.translate();
  s.languages.clear();
  if (fs.languages()) {
    for (const fbs::Language* l : *fs.languages()) s.languages.push_back({Str(l->code()), l->token()});
  }
  s.suppress_tokens = Vec(fs.suppress_tokens());
  s.begin_suppress_tokens = Vec(fs.begin_suppress_tokens());
  s.default_prompt = Vec(fs.default_prompt());

  m->card = ModelCard();
  if (const fbs::ModelCard* fc = fm.card()) {
    ModelCard& c = m->card;
    c.name = Str(fc->name());
    c.version = Str(fc->version());
    c.description = Str(fc->description());
    c.license = Str(fc->license());
    c.training_data = Str(fc->training_data());
    c.extra_json = Str(fc->extra_json());
    if (fc->languages()) {
      for (const flatbuffers::String* l : *fc->languages()) c.languages.push_back(Str(l));
    }
    if (fc->wer()) {
      for (const fbs::WerEntry* w : *fc->wer()) {
        c.wer.push_back({Str(w->test_set()), Str(w->decoding()), w->wer(), w->words()});
      }
    }
  }

  m->alignment_heads.clear();
  if (fm.alignment_heads()) {
    for (const fbs::AlignmentHead* h : *fm.alignment_heads()) m->alignment_heads.push_back({h->layer(), h->head()});
  }

  m->quant = QuantReport();
  if (const fbs::QuantReport* fq = fm.quant()) {
    QuantReport& q = m->quant;
    q.method = Str(fq->method());
    q.budget_bytes = fq->budget_bytes();
    q.total_bytes = fq->total_bytes();
    q.average_bits = fq->average_bits();
    q.measured_divergence = fq->measured_divergence();
    if (fq->layers()) {
      for (const fbs::LayerPrecision* l : *fq->layers()) {
        LayerPrecision p;
        p.tensor = Str(l->tensor());
        if (!DTypeFromFb(l->dtype(), &p.dtype)) {
          return Status::Error("quantization report: unknown dtype for '" + Shown(p.tensor) + "'");
        }
        p.group_size = l->group_size();
        p.bytes = l->bytes();
        p.predicted_divergence = l->predicted_divergence();
        q.layers.push_back(std::move(p));
      }
    }
  }
  return CheckMeta(*m);
}

Status ReadTensors(const fbs::Model& fm, std::vector<TensorRef>* out) {
  const auto& list = *fm.tensors();
  out->clear();
  out->reserve(list.size());
  for (const fbs::Tensor* ft : list) {
    TensorRef t;
    t.name = ft->name()->str();
    if (!DTypeFromFb(ft->dtype(), &t.dtype)) {
      return Status::Error("tensor '" + Shown(t.name) + "' has an unknown dtype " +
                           std::to_string(static_cast<int>(ft->dtype())));
    }
    if (ft->layout() == fbs::Layout::RowTiles) {
      return Status::Error("tensor '" + Shown(t.name) +
                           "' uses the packed byte order of earlier earshot versions: re-import or re-quantize the "
                           "model with this earshot");
    }
    if (!LayoutFromFb(ft->layout(), &t.layout)) {
      return Status::Error("tensor '" + Shown(t.name) + "' has an unknown layout " +
                           std::to_string(static_cast<int>(ft->layout())));
    }
    // Ranks are tiny; a longer shape can only be garbage and is reported by the shape check.
    if (ft->shape()->size() > 8) {
      return Status::Error("tensor '" + Shown(t.name) + "' has rank " + std::to_string(ft->shape()->size()));
    }
    // The Verifier checks only 4-byte alignment of vectors; 64-bit elements need 8 (writers always align them).
    if (reinterpret_cast<uintptr_t>(ft->shape()->Data()) % alignof(int64_t) != 0) {
      return Status::Error("tensor '" + Shown(t.name) + "': the shape is misaligned (corrupt file)");
    }
    t.shape = Vec(ft->shape());
    t.pack_rows = ft->pack_rows();
    t.pack_cols = ft->pack_cols();
    t.group_size = ft->group_size();
    t.data = ft->data()->data();
    t.nbytes = ft->data()->size();
    if (ft->scales() && ft->scales()->size()) {
      t.scales = ft->scales()->data();
      t.scales_nbytes = ft->scales()->size();
    }
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

std::string VersionError(int major, int minor) {
  std::string msg = "model file uses schema version " + std::to_string(major) + "." + std::to_string(minor) +
                    "; this earshot reads " + std::to_string(kSchemaMajor) + ".x: ";
  return msg + (major > kSchemaMajor ? "upgrade earshot" : "re-import the model with this earshot");
}

// Reads schema_major/minor from the root table after verifying only what that needs, so that a file from a
// newer major version (whose other tables may differ) is reported as such, not as corrupt.
bool PeekSchemaVersion(const uint8_t* data, size_t size, int* major, int* minor) {
  if (size < 8) return false;
  const uint32_t root = flatbuffers::ReadScalar<flatbuffers::uoffset_t>(data);
  if (root % 4 != 0 || root > size - 4) return false;
  flatbuffers::Verifier verifier(data, size);
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(data + root);
  if (!table->VerifyTableStart(verifier) || !table->VerifyField<uint16_t>(verifier, fbs::Model::VT_SCHEMA_MAJOR, 2) ||
      !table->VerifyField<uint16_t>(verifier, fbs::Model::VT_SCHEMA_MINOR, 2)) {
    return false;
  }
  *major = table->GetField<uint16_t>(fbs::Model::VT_SCHEMA_MAJOR, 1);
  *minor = table->GetField<uint16_t>(fbs::Model::VT_SCHEMA_MINOR, 0);
  return true;
}

Status ParseAndVerify(const uint8_t* data, size_t size, ParsedModel* out) {
  if (size == 0) return Status::Error("the model buffer is empty");
  if (size < 8) return Status::Error("the model buffer is too small (" + std::to_string(size) + " bytes)");
  if (size > kMaxModelFileBytes) return Status::Error("the model buffer is larger than 2 GB");
  if (!fbs::ModelBufferHasIdentifier(data)) {
    return Status::Error("not an .earshot model (the file identifier is not \"ESHT\")");
  }
  int major = 0, minor = 0;
  if (!PeekSchemaVersion(data, size, &major, &minor)) {
    return Status::Error("the model file is corrupt or truncated (unreadable header)");
  }
  if (major != kSchemaMajor) return Status::Error(VersionError(major, minor));

  flatbuffers::Verifier::Options options;
  options.max_depth = 16;        // the schema nests four deep
  options.max_tables = 1 << 20;  // tensors, languages, ... with room to spare
  options.check_alignment = true;
  flatbuffers::Verifier verifier(data, size, options);
  if (!fbs::VerifyModelBuffer(verifier)) {
    return Status::Error("the model file is corrupt or truncated (FlatBuffers verification failed)");
  }
  const fbs::Model& fm = *fbs::GetModel(data);
  EARSHOT_RETURN_IF_ERROR(ReadMeta(fm, &out->meta));
  EARSHOT_RETURN_IF_ERROR(ReadTensors(fm, &out->tensors));
  return CheckTensors(out->meta.hparams, out->tensors, &out->index);
}

// ---- writing (ModelMeta / TensorData -> FlatBuffers) --------------------------------------------------------

flatbuffers::Offset<flatbuffers::String> OptString(flatbuffers::FlatBufferBuilder& b, const std::string& s) {
  return s.empty() ? 0 : b.CreateString(s);
}

template <class T>
flatbuffers::Offset<flatbuffers::Vector<T>> OptVector(flatbuffers::FlatBufferBuilder& b, const std::vector<T>& v) {
  return v.empty() ? 0 : b.CreateVector(v);
}

flatbuffers::Offset<fbs::Model> WriteModel(flatbuffers::FlatBufferBuilder& b, const ModelMeta& m,
                                           const std::vector<flatbuffers::Offset<fbs::Tensor>>& tensors) {
  const HyperParams& hp = m.hparams;
  auto hparams = fbs::CreateHyperParams(b, hp.n_mels, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head,
                                        hp.n_audio_layer, hp.n_text_ctx, hp.n_text_state, hp.n_text_head,
                                        hp.n_text_layer, hp.n_vocab, hp.variable_length_audio, hp.conv1_stride,
                                        hp.edge_silence_ms);
  auto mel = fbs::CreateMelSettings(b, m.mel.sample_rate, m.mel.n_fft, m.mel.hop_length, m.mel.n_mels,
                                    m.mel.chunk_seconds, OptVector(b, m.mel.filters));

  std::string token_bytes;
  std::vector<uint32_t> offsets;
  offsets.reserve(m.vocab.tokens.size() + 1);
  offsets.push_back(0);
  for (const std::string& t : m.vocab.tokens) {
    token_bytes += t;
    offsets.push_back(static_cast<uint32_t>(token_bytes.size()));
  }
  auto vocab =
      fbs::CreateVocabulary(b, TokenizerToFb(m.vocab.kind),
                            b.CreateVector(reinterpret_cast<const uint8_t*>(token_bytes.data()), token_bytes.size()),
                            b.CreateVector(offsets), OptVector(b, m.vocab.special_ids));

  const SpecialTokens& s = m.special;
  std::vector<flatbuffers::Offset<fbs::Language>> languages;
  for (const Language& l : s.languages) languages.push_back(fbs::CreateLanguage(b, b.CreateString(l.code), l.token));
  auto special =
      fbs::CreateSpecialTokens(b, s.sot, s.eot, s.sot_prev, s.sot_lm, s.no_speech, s.no_timestamps, s.timestamp_begin,
                               s.transcribe, s.translate, OptVector(b, languages), OptVector(b, s.suppress_tokens),
                               OptVector(b, s.begin_suppress_tokens), OptVector(b, s.default_prompt));

  const ModelCard& c = m.card;
  std::vector<flatbuffers::Offset<flatbuffers::String>> card_languages;
  for (const std::string& l : c.languages) card_languages.push_back(b.CreateString(l));
  std::vector<flatbuffers::Offset<fbs::WerEntry>> wer;
  for (const WerEntry& w : c.wer) {
    wer.push_back(fbs::CreateWerEntry(b, OptString(b, w.test_set), OptString(b, w.decoding), w.wer, w.words));
  }
  auto card = fbs::CreateModelCard(b, OptString(b, c.name), OptString(b, c.version), OptString(b, c.description),
                                   OptVector(b, card_languages), OptString(b, c.license), OptString(b, c.training_data),
                                   OptVector(b, wer), OptString(b, c.extra_json));

  std::vector<flatbuffers::Offset<fbs::AlignmentHead>> heads;
  for (const AlignmentHead& h : m.alignment_heads) heads.push_back(fbs::CreateAlignmentHead(b, h.layer, h.head));

  flatbuffers::Offset<fbs::QuantReport> quant = 0;
  const QuantReport& q = m.quant;
  if (!q.method.empty() || !q.layers.empty() || q.budget_bytes || q.total_bytes) {
    std::vector<flatbuffers::Offset<fbs::LayerPrecision>> layers;
    for (const LayerPrecision& l : q.layers) {
      layers.push_back(fbs::CreateLayerPrecision(b, b.CreateString(l.tensor), DTypeToFb(l.dtype), l.group_size, l.bytes,
                                                 l.predicted_divergence));
    }
    quant = fbs::CreateQuantReport(b, OptString(b, q.method), q.budget_bytes, q.total_bytes, q.average_bits,
                                   q.measured_divergence, OptVector(b, layers));
  }

  return fbs::CreateModel(b, static_cast<uint16_t>(m.schema_major), static_cast<uint16_t>(m.schema_minor), hparams, mel,
                          vocab, special, card, OptVector(b, heads), quant, b.CreateVector(tensors));
}

// Upper bound of the serialized size, so that an oversized model is refused before anything is built.
uint64_t EstimateSerializedBytes(const ModelMeta& m, const std::vector<TensorData>& tensors) {
  uint64_t n = 4096;
  for (const TensorData& t : tensors) n += t.data.size() + t.scales.size() + t.name.size() + 8 * t.shape.size() + 128;
  for (const std::string& t : m.vocab.tokens) n += t.size() + 4;
  n += 4 * (m.mel.filters.size() + m.vocab.special_ids.size() + m.special.suppress_tokens.size() +
            m.special.begin_suppress_tokens.size() + m.special.default_prompt.size());
  for (const Language& l : m.special.languages) n += l.code.size() + 32;
  const ModelCard& c = m.card;
  n += c.name.size() + c.version.size() + c.description.size() + c.license.size() + c.training_data.size() +
       c.extra_json.size() + 64;
  for (const std::string& l : c.languages) n += l.size() + 16;
  for (const WerEntry& w : c.wer) n += w.test_set.size() + w.decoding.size() + 48;
  n += 16 * m.alignment_heads.size();
  n += m.quant.method.size();
  for (const LayerPrecision& l : m.quant.layers) n += l.tensor.size() + 48;
  return n;
}

}  // namespace

Status ValidateHyperParams(const HyperParams& hp) { return CheckHyperParams(hp).With("hyper-parameters"); }

const char* DTypeName(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::I8:
      return "i8";
    case DType::I4:
      return "i4";
  }
  return "unknown";
}

int64_t TensorRef::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Expected<TensorStorage> ComputeTensorStorage(DType dtype, TensorLayout layout, const std::vector<int64_t>& shape,
                                             int group_size, int pack_rows, int pack_cols) {
  if (shape.empty()) return Status::Error("a tensor needs at least one dimension");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 1 || d > kMaxElements) return Status::Error("dimension " + std::to_string(d) + " is out of range");
    if (numel > kMaxElements / d) return Status::Error("too many elements");
    numel *= d;
  }
  const int64_t rows = shape[0], cols = numel / rows;
  const bool quantized = dtype == DType::I8 || dtype == DType::I4;
  if (quantized && shape.size() < 2) return Status::Error("only matrices can be quantized");
  if (dtype == DType::I4) {
    if (group_size < 2 || group_size % 2 != 0 || cols % group_size != 0) {
      return Status::Error("I4 group size " + std::to_string(group_size) + " must be even and divide the " +
                           std::to_string(cols) + " columns");
    }
  } else if (group_size != 0) {
    return Status::Error("group size " + std::to_string(group_size) + " is only meaningful for I4");
  }

  int64_t padded_rows = rows, padded_cols = cols;
  if (layout == TensorLayout::PackedTiles) {
    if (shape.size() < 2) return Status::Error("only matrices can be packed");
    if (pack_rows < 1 || pack_rows > kMaxTile || pack_cols < 1 || pack_cols > kMaxTile ||
        (dtype == DType::I4 && pack_cols % 2 != 0)) {
      return Status::Error("packing tile " + std::to_string(pack_rows) + "x" + std::to_string(pack_cols) +
                           " is invalid");
    }
    padded_rows = (rows + pack_rows - 1) / pack_rows * pack_rows;
    padded_cols = (cols + pack_cols - 1) / pack_cols * pack_cols;
    if (padded_cols > kMaxElements / padded_rows) return Status::Error("too many elements");
  } else if (pack_rows != 0 || pack_cols != 0) {
    return Status::Error("a plain tensor has a packing tile");
  }
  const int64_t elements = padded_rows * padded_cols;

  TensorStorage s;
  switch (dtype) {
    case DType::F32:
      s.data_bytes = static_cast<size_t>(elements) * 4;
      break;
    case DType::F16:
      s.data_bytes = static_cast<size_t>(elements) * 2;
      break;
    case DType::I8:
      s.data_bytes = static_cast<size_t>(elements);
      s.scales_bytes = static_cast<size_t>(rows) * 4;
      break;
    case DType::I4:
      s.data_bytes = static_cast<size_t>(elements / 2);
      s.scales_bytes = static_cast<size_t>(rows) * static_cast<size_t>(cols / group_size) * 2;
      break;
    default:
      return Status::Error("unknown dtype");
  }
  return s;
}

const TensorRef* Model::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Expected<std::shared_ptr<const Model>> Model::FromBuffer(AlignedBuffer buffer) {
  if (!buffer.ok()) return Status::Error("out of memory while reading the model");
  ParsedModel parsed;
  EARSHOT_RETURN_IF_ERROR(ParseAndVerify(buffer.data(), buffer.size(), &parsed));
  std::shared_ptr<Model> model(new (std::nothrow) Model());
  if (!model) return Status::Error("out of memory while loading the model");
  model->meta_ = std::move(parsed.meta);
  model->tensors_ = std::move(parsed.tensors);
  model->index_ = std::move(parsed.index);
  // Moving the buffer keeps its heap block, so the TensorRef pointers stay valid.
  model->buffer_ = std::move(buffer);
  return std::shared_ptr<const Model>(std::move(model));
}

Expected<std::shared_ptr<const Model>> Model::FromFile(const std::string& path) {
  const std::string where = "model '" + path + "'";
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Status::Error(where + ": " + (errno == ENOENT ? std::string("no such file") : std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return Status::Error(where + ": not a regular file");
  if (st.st_size == 0) return Status::Error(where + ": the file is empty");
  if (static_cast<uint64_t>(st.st_size) > kMaxModelFileBytes) {
    return Status::Error(where + ": the file is " + std::to_string(static_cast<uint64_t>(st.st_size)) +
                         " bytes; .earshot models are limited to 2 GB");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::Error(where + ": cannot open: " + std::strerror(errno));
  AlignedBuffer buffer(size);
  if (!buffer.ok()) {
    std::fclose(f);
    return Status::Error(where + ": out of memory reading " + std::to_string(size) + " bytes");
  }
  const size_t got = std::fread(buffer.data(), 1, size, f);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error || got != size) {
    return Status::Error(where + ": read " + std::to_string(got) + " of " + std::to_string(size) + " bytes");
  }
  auto model = FromBuffer(std::move(buffer));
  if (!model.ok()) return model.status().With(where);
  return model;
}

Expected<AlignedBuffer> SerializeModel(const ModelMeta& meta, const std::vector<TensorData>& tensors) {
  // Reject impossible meta before building (e.g. a vocabulary of the wrong size would make bad offsets).
  EARSHOT_RETURN_IF_ERROR(CheckMeta(meta).With("cannot write model"));
  if (meta.schema_major != kSchemaMajor) {
    return Status::Error("cannot write model: schema version " + std::to_string(meta.schema_major) +
                         " is not this earshot's " + std::to_string(kSchemaMajor));
  }
  const uint64_t estimate = EstimateSerializedBytes(meta, tensors);
  if (estimate > kMaxModelFileBytes) {
    return Status::Error("cannot write model: it needs about " + std::to_string(estimate >> 20) +
                         " MiB, over the 2 GB limit of .earshot files (FlatBuffers) and of a wasm32 page; "
                         "use a smaller model or a lower precision");
  }

  flatbuffers::FlatBufferBuilder b(static_cast<size_t>(estimate));
  std::vector<flatbuffers::Offset<fbs::Tensor>> offsets;
  offsets.reserve(tensors.size());
  for (const TensorData& t : tensors) {
    auto name = b.CreateString(t.name);
    auto shape = b.CreateVector(t.shape);
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> scales = 0;
    if (!t.scales.empty()) {
      b.ForceVectorAlignment(t.scales.size(), sizeof(uint8_t), 16);
      scales = b.CreateVector(t.scales);
    }
    b.ForceVectorAlignment(t.data.size(), sizeof(uint8_t), 16);
    auto data = b.CreateVector(t.data);
    offsets.push_back(fbs::CreateTensor(b, name, shape, DTypeToFb(t.dtype), LayoutToFb(t.layout), t.pack_rows,
                                        t.pack_cols, t.group_size, scales, data));
  }
  fbs::FinishModelBuffer(b, WriteModel(b, meta, offsets));

  AlignedBuffer out(b.GetBufferPointer(), b.GetSize());
  if (!out.ok()) return Status::Error("cannot write model: out of memory");
  // The same verification as the loader: a writer cannot produce a file the engine refuses.
  ParsedModel check;
  EARSHOT_RETURN_IF_ERROR(ParseAndVerify(out.data(), out.size(), &check).With("cannot write model"));
  return out;
}

}  // namespace earshot
