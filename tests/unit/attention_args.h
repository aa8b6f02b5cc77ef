// The tests' one way to describe an attention call over row-major buffers.
#pragma once

#include <cstddef>

#include "kernels/attention.h"

namespace earshot {
namespace testutil {

// Every query sees every key unless causal_offset >= 0; leading dimensions as given.
inline AttentionArgs MakeAttentionArgs(int n_q, int n_kv, int n_head, int d_head, const float* q, size_t ldq,
                                       const float* k, size_t ldk, const float* v, size_t ldv, float* out,
                                       size_t ldo, int causal_offset = -1) {
  AttentionArgs a;
  a.n_q = n_q;
  a.n_kv = n_kv;
  a.n_head = n_head;
  a.d_head = d_head;
  a.q = q;
  a.ldq = ldq;
  a.k = k;
  a.ldk = ldk;
  a.v = v;
  a.ldv = ldv;
  a.out = out;
  a.ldo = ldo;
  a.causal_offset = causal_offset;
  return a;
}

}  // namespace testutil
}  // namespace earshot
