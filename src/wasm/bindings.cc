// Embind bindings: a thin layer over Model and Transcriber. Nothing here throws: every failure comes back to
// JavaScript as an object with an `error` string.
//
// Bytes travel without extra copies: JavaScript asks for a buffer inside the WebAssembly heap (a typed-array view),
// fills it, then hands it over (`loadModel`, `transcribe`).
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>

#include <malloc.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "audio/resample.h"
#include "audio/wav.h"
#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "decode/transcriber.h"
#include "model/model.h"

namespace earshot {
namespace {

using emscripten::val;

val ErrorObject(const std::string& message) {
  val out = val::object();
  out.set("error", message);
  return out;
}

class Engine {
 public:
  // A Uint8Array view of a fresh heap buffer for the model bytes, or null when memory is short.
  val modelBuffer(double size) {
    if (size <= 0 || size > 2147483647.0) return val::null();
    model_bytes_ = AlignedBuffer();  // free the old bytes first: never two model-sized blocks at once
    model_bytes_ = AlignedBuffer(static_cast<size_t>(size));
    if (!model_bytes_.ok()) return val::null();
    return val(emscripten::typed_memory_view(model_bytes_.size(), model_bytes_.data()));
  }

  // Verifies and loads the bytes written into modelBuffer(); returns {} or {error}.
  val loadModel() {
    auto model = Model::FromBuffer(std::move(model_bytes_));
    if (!model.ok()) return ErrorObject(model.status().message());
    auto transcriber = Transcriber::Create(model.value());
    if (!transcriber.ok()) return ErrorObject(transcriber.status().message());
    transcriber_ = std::make_unique<Transcriber>(std::move(transcriber).value());
    return val::object();
  }

  // A Float32Array view of a heap buffer for n samples of 16-kHz mono audio, or null when memory is short.
  val audioBuffer(double n) {
    if (n < 0 || n > 1e9) return val::null();
    // Clips of the same length (windows padded to 30 s) reuse the buffer; otherwise the old one goes first,
    // so that the heap does not hold two and keep the hole.
    const size_t bytes = static_cast<size_t>(n) * sizeof(float);
    if (audio_.size() != bytes || !audio_.ok()) {
      audio_ = AlignedBuffer();
      audio_ = AlignedBuffer(bytes);
    }
    if (!audio_.ok()) return val::null();
    return val(emscripten::typed_memory_view(audio_samples(), audio_samples_data()));
  }

  // A Uint8Array view of a heap buffer for the bytes of a WAV file; decodeWav() then fills the audio buffer.
  val wavBuffer(double size) {
    if (size <= 0 || size > 2147483647.0) return val::null();
    wav_bytes_ = AlignedBuffer();
    wav_bytes_ = AlignedBuffer(static_cast<size_t>(size));
    if (!wav_bytes_.ok()) return val::null();
    return val(emscripten::typed_memory_view(wav_bytes_.size(), wav_bytes_.data()));
  }
  // Decodes the WAV bytes to 16-kHz mono in the audio buffer; returns {samples, sourceSampleRate, sourceChannels}.
  val decodeWav() {
    auto pcm = DecodeWav(wav_bytes_.data(), wav_bytes_.size());
    wav_bytes_ = AlignedBuffer();
    if (!pcm.ok()) return ErrorObject(pcm.status().message());
    auto resampled = Resample(pcm->samples.data(), pcm->samples.size(), pcm->sample_rate, 16000);
    if (!resampled.ok()) return ErrorObject(resampled.status().message());
    audio_ = AlignedBuffer();
    audio_ = AlignedBuffer(resampled->data(), resampled->size() * sizeof(float));
    if (!audio_.ok()) return ErrorObject("out of memory decoding the audio");
    val out = val::object();
    out.set("samples", static_cast<double>(audio_samples()));
    out.set("sourceSampleRate", pcm->sample_rate);
    out.set("sourceChannels", pcm->source_channels);
    return out;
  }

  // Transcribes the audio buffer. options: {beamSize, timestamps, language, maxTokens, minTokens}; minTokens
  // equal to maxTokens decodes exactly that many tokens per window (benchmarks on random weights).
  val transcribe(val options) {
    if (!transcriber_) return ErrorObject("no model loaded");
    DecodeOptions decode;
    if (options.hasOwnProperty("beamSize")) decode.beam_size = options["beamSize"].as<int>();
    if (options.hasOwnProperty("timestamps")) decode.timestamps = options["timestamps"].as<bool>();
    if (options.hasOwnProperty("language")) decode.language = options["language"].as<std::string>();
    if (options.hasOwnProperty("maxTokens")) decode.max_new_tokens = options["maxTokens"].as<int>();
    if (options.hasOwnProperty("minTokens")) decode.min_new_tokens = options["minTokens"].as<int>();
    auto result = transcriber_->Transcribe(audio_samples_data(), audio_samples(), decode);
    if (!result.ok()) return ErrorObject(result.status().message());
    const Transcript& t = result.value();

    val out = val::object();
    out.set("text", t.text);
    val segments = val::array();
    for (size_t i = 0; i < t.segments.size(); ++i) {
      val s = val::object();
      s.set("start", t.segments[i].start);
      s.set("end", t.segments[i].end);
      s.set("text", t.segments[i].text);
      segments.set(i, s);
    }
    out.set("segments", segments);
    val tokens = val::array();
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      val tok = val::object();
      tok.set("id", t.tokens[i].id);
      tok.set("logprob", t.tokens[i].logprob);
      // Token bytes may hold part of a UTF-8 character: hand them over as bytes.
      const std::string& raw = t.tokens[i].text;
      val view(emscripten::typed_memory_view(raw.size(), reinterpret_cast<const uint8_t*>(raw.data())));
      tok.set("bytes", val::global("Uint8Array").new_(view));  // copies out of the heap
      tokens.set(i, tok);
    }
    out.set("tokens", tokens);
    out.set("noSpeechProb", t.no_speech_prob);
    out.set("avgLogprob", t.avg_logprob);
    val timings = val::object();
    timings.set("melMs", t.mel_ms);
    timings.set("encodeMs", t.encode_ms);
    timings.set("decodeMs", t.decode_ms);
    timings.set("promptMs", t.prompt_ms);        // part of decodeMs: decoder start and prompt
    timings.set("decodeSteps", t.decode_steps);  // decoder calls after the prompt
    out.set("timings", timings);
    return out;
  }

  // Hyper-parameters and card of the loaded model.
  val info() const {
    if (!transcriber_) return ErrorObject("no model loaded");
    const ModelMeta& meta = transcriber_->model().meta();
    const HyperParams& hp = meta.hparams;
    val out = val::object();
    out.set("name", meta.card.name);
    out.set("version", meta.card.version);
    out.set("license", meta.card.license);
    out.set("nMels", hp.n_mels);
    out.set("nAudioCtx", hp.n_audio_ctx);
    out.set("nAudioState", hp.n_audio_state);
    out.set("nAudioLayer", hp.n_audio_layer);
    out.set("nTextCtx", hp.n_text_ctx);
    out.set("nTextLayer", hp.n_text_layer);
    out.set("nVocab", hp.n_vocab);
    out.set("variableLengthAudio", hp.variable_length_audio);
    out.set("conv1Stride", hp.conv1_stride);
    out.set("edgeSilenceMs", hp.edge_silence_ms);
    out.set("multilingual", !meta.special.languages.empty());
    out.set("fileBytes", static_cast<double>(transcriber_->model().file_bytes()));
    return out;
  }

  // Threads the engine uses, the caller included (engine-wide, not per Engine). More than one needs the
  // pthreads build; returns {} or {error}.
  val setThreads(int n) {
    const Status s = SetThreadCount(n);
    return s.ok() ? val::object() : ErrorObject(s.message());
  }
  int threads() const { return ThreadCount(); }
  int maxThreads() const { return MaxThreadCount(); }

  // Bytes of WebAssembly memory. Memory only grows, so read after a run this is the run's peak.
  static double heapBytes() { return static_cast<double>(emscripten_get_heap_size()); }

  // Where the memory goes: the heap, the highest address malloc has used (memory grows past it in steps of
  // up to 20%), the bytes malloc has handed out and holds free, and the engine's large buffers (model bytes,
  // caches, scratch) now and at their peak since the last resetBufferPeak().
  static val memoryStats() {
    const struct mallinfo mi = mallinfo();
    val out = val::object();
    out.set("heapBytes", heapBytes());
    out.set("sbrkTopBytes", static_cast<double>(reinterpret_cast<uintptr_t>(sbrk(0))));
    out.set("mallocInUseBytes", static_cast<double>(mi.uordblks));
    out.set("mallocFreeBytes", static_cast<double>(mi.fordblks));
    out.set("bufferBytes", static_cast<double>(AlignedBuffer::LiveBytes()));
    out.set("bufferPeakBytes", static_cast<double>(AlignedBuffer::PeakBytes()));
    return out;
  }
  static void resetBufferPeak() { AlignedBuffer::ResetPeakBytes(); }

 private:
  size_t audio_samples() const { return audio_.size() / sizeof(float); }
  float* audio_samples_data() { return reinterpret_cast<float*>(audio_.data()); }

  AlignedBuffer model_bytes_;
  AlignedBuffer audio_;  // 16-kHz mono float samples
  AlignedBuffer wav_bytes_;
  std::unique_ptr<Transcriber> transcriber_;
};

}  // namespace
}  // namespace earshot

EMSCRIPTEN_BINDINGS(earshot) {
  emscripten::class_<earshot::Engine>("Engine")
      .constructor<>()
      .function("modelBuffer", &earshot::Engine::modelBuffer)
      .function("loadModel", &earshot::Engine::loadModel)
      .function("audioBuffer", &earshot::Engine::audioBuffer)
      .function("wavBuffer", &earshot::Engine::wavBuffer)
      .function("decodeWav", &earshot::Engine::decodeWav)
      .function("transcribe", &earshot::Engine::transcribe)
      .function("info", &earshot::Engine::info)
      .function("setThreads", &earshot::Engine::setThreads)
      .function("threads", &earshot::Engine::threads)
      .function("maxThreads", &earshot::Engine::maxThreads)
      .class_function("heapBytes", &earshot::Engine::heapBytes)
      .class_function("memoryStats", &earshot::Engine::memoryStats)
      .class_function("resetBufferPeak", &earshot::Engine::resetBufferPeak);
}
