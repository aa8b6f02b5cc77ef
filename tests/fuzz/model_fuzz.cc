// Model::FromBuffer on arbitrary bytes: it must return a model or an error, never crash, hang or read out of
// bounds. Seeds (tests/fuzz/corpus_model/) are tiny valid models written by make_model_corpus.cc.
#include <cstddef>
#include <cstdint>

#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto model = earshot::Model::FromBuffer(earshot::AlignedBuffer(data, size));
  if (!model.ok()) return 0;
  // Touch every byte a loaded model claims to own, so that AddressSanitizer sees any wrong extent.
  unsigned sum = 0;
  for (const earshot::TensorRef& t : (*model)->tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    for (size_t i = 0; i < t.scales_nbytes; ++i) sum += t.scales[i];
    if ((*model)->Find(t.name) != &t) __builtin_trap();
  }
  for (const std::string& token : (*model)->meta().vocab.tokens) sum += token.size();
  volatile unsigned sink = sum;
  (void)sink;
  return 0;
}
