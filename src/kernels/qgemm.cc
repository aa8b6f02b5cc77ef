#include "kernels/qgemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/thread_pool.h"
#include "kernels/product_split.h"
#include "kernels/qgemm_internal.h"
#include "kernels/vec4.h"

namespace earshot {

// SIMD kernels, defined in qgemm_x86.cc / qgemm_wasm.cc for the builds that have them.
void AppendSimdQGemmKernels(std::vector<QGemmKernel>* kernels);

using namespace qgemm_detail;

namespace {

inline int SignExtend4(unsigned nibble) { return static_cast<int>((nibble & 0xF) ^ 0x8) - 8; }

// Offset of the byte holding (row, col) (for I4: in its low nibble when col % 32 < 16, else its high nibble).
inline size_t ByteOffset(const QWeights& w, int row, int col) {
  const int tile_cols = QPackCols(w.dtype);
  const int k = col % tile_cols % kQPackColsI8;
  return static_cast<size_t>(row / kQPackRows) * w.block_stride() + static_cast<size_t>(col / tile_cols) * kQTileBytes +
         static_cast<size_t>(8 * (k / 2) + 2 * (row % kQPackRows) + k % 2);
}

void ReferenceI8(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                 size_t ldy, const GemmEpilogue& ep) {
  for (int m = 0; m < M; ++m) {
    const int16_t* xr = q + static_cast<size_t>(m) * ldq;
    for (int n = n0; n < n1; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < w.cols; ++k) acc += static_cast<int32_t>(xr[k]) * QWeightAt(w, n, k);
      const float v = static_cast<float>(acc) * (xs[m] * QWeightScale(w, n, 0));
      y[static_cast<size_t>(m) * ldy + n] = ApplyEpilogue(v, m, n, ep);
    }
  }
}

void ReferenceI4(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1, float* y,
                 size_t ldy, const GemmEpilogue& ep) {
  const int groups = w.groups();
  for (int m = 0; m < M; ++m) {
    const int16_t* xr = q + static_cast<size_t>(m) * ldq;
    for (int n = n0; n < n1; ++n) {
      float t = 0.0f;
      for (int g = 0; g < groups; ++g) {
        int32_t acc = 0;
        for (int k = g * w.group_size; k < (g + 1) * w.group_size; ++k)
          acc += static_cast<int32_t>(xr[k]) * QWeightAt(w, n, k);
        t = t + static_cast<float>(acc) * QWeightScale(w, n, g);
      }
      const float v = t * xs[m];
      y[static_cast<size_t>(m) * ldy + n] = ApplyEpilogue(v, m, n, ep);
    }
  }
}

// Scratch for quantized activations, reused across calls on a thread.
struct ActivationScratch {
  AlignedBuffer q;
  AlignedBuffer scales;
};

Status Reserve(AlignedBuffer* buf, size_t bytes, const char* what) {
  if (buf->size() >= bytes) return Status::Ok();
  AlignedBuffer fresh(bytes);
  if (!fresh.ok())
    return Status::Error(std::string("out of memory allocating ") + what + " (" + std::to_string(bytes / 1024) +
                         " KiB)");
  *buf = std::move(fresh);
  return Status::Ok();
}

}  // namespace

size_t QPackedBytes(DType dtype, int rows, int cols) {
  const size_t padded_rows = static_cast<size_t>((rows + kQPackRows - 1) / kQPackRows * kQPackRows);
  const size_t padded_cols = static_cast<size_t>(QPaddedCols(dtype, cols));
  return dtype == DType::I4 ? padded_rows * padded_cols / 2 : padded_rows * padded_cols;
}

Expected<QWeights> QWeightsFromTensor(const TensorRef& t, int rows, int cols) {
  if (t.dtype != DType::I8 && t.dtype != DType::I4) return Status::Error(t.name + ": not a quantized tensor");
  if (t.shape.empty() || t.shape[0] != rows || t.numel() != static_cast<int64_t>(rows) * cols)
    return Status::Error(t.name + ": expected a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                         "] weight matrix");
  if (cols > kQMaxCols)
    return Status::Error(t.name + ": " + std::to_string(cols) + " columns exceed the quantized kernels' limit of " +
                         std::to_string(kQMaxCols));
  if (t.layout != TensorLayout::PackedTiles || t.pack_rows != kQPackRows || t.pack_cols != QPackCols(t.dtype))
    return Status::Error(t.name + ": quantized kernels need the " + std::to_string(kQPackRows) + "x" +
                         std::to_string(QPackCols(t.dtype)) + " packed layout");
  QWeights w;
  w.dtype = t.dtype;
  w.rows = rows;
  w.cols = cols;
  w.padded_cols = QPaddedCols(t.dtype, cols);
  w.group_size = t.dtype == DType::I4 ? t.group_size : 0;
  if (w.dtype == DType::I4 && (w.group_size < 2 || w.group_size % 2 != 0 || cols % w.group_size != 0))
    return Status::Error(t.name + ": bad I4 group size " + std::to_string(t.group_size));
  const size_t scale_bytes =
      w.dtype == DType::I4 ? static_cast<size_t>(rows) * w.groups() * 2 : static_cast<size_t>(rows) * 4;
  if (t.data == nullptr || t.nbytes < QPackedBytes(t.dtype, rows, cols) || t.scales == nullptr ||
      t.scales_nbytes < scale_bytes)
    return Status::Error(t.name + ": quantized data or scales are smaller than the shape needs");
  w.data = t.data;
  w.scales = t.scales;
  return w;
}

void PackQ8(const int8_t* src, int rows, int cols, uint8_t* out) {
  QWeights w;
  w.dtype = DType::I8;
  w.rows = rows;
  w.cols = cols;
  w.padded_cols = QPaddedCols(DType::I8, cols);
  std::memset(out, 0, QPackedBytes(DType::I8, rows, cols));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      out[ByteOffset(w, r, c)] = static_cast<uint8_t>(src[static_cast<size_t>(r) * cols + c]);
}

void PackQ4(const uint8_t* nibbles, int rows, int cols, uint8_t* out) {
  QWeights w;
  w.dtype = DType::I4;
  w.rows = rows;
  w.cols = cols;
  w.padded_cols = QPaddedCols(DType::I4, cols);
  std::memset(out, 0, QPackedBytes(DType::I4, rows, cols));
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * cols + c;
      const unsigned nibble = (i % 2 == 0 ? nibbles[i / 2] : nibbles[i / 2] >> 4) & 0xF;
      out[ByteOffset(w, r, c)] |= static_cast<uint8_t>(c % kQPackColsI4 < 16 ? nibble : nibble << 4);
    }
  }
}

void PackQ4Scales(const uint16_t* scales, int rows, int groups, uint16_t* out) {
  for (int r = 0; r < rows; ++r)
    for (int g = 0; g < groups; ++g)
      out[Q4ScaleIndex(rows, groups, r, g)] = scales[static_cast<size_t>(r) * groups + g];
}

Expected<TensorRef> RepackQuantizedTensor(const TensorRef& plain, AlignedBuffer* storage) {
  if (plain.dtype != DType::I8 && plain.dtype != DType::I4)
    return Status::Error(plain.name + ": not a quantized tensor");
  if (plain.layout != TensorLayout::Plain || plain.shape.size() < 2)
    return Status::Error(plain.name + ": only plain quantized matrices can be repacked");
  const int64_t rows = plain.shape[0], cols = plain.numel() / rows;
  if (cols > kQMaxCols || rows > (int64_t{1} << 30))
    return Status::Error(plain.name + ": matrix is too large for the quantized kernels");
  const size_t plain_bytes = static_cast<size_t>(plain.dtype == DType::I4 ? rows * cols / 2 : rows * cols);
  if (plain.data == nullptr || plain.nbytes < plain_bytes)
    return Status::Error(plain.name + ": quantized data is smaller than its shape");
  const int r = static_cast<int>(rows), c = static_cast<int>(cols);
  const size_t bytes = QPackedBytes(plain.dtype, r, c);
  // I4 scales follow the data into the buffer, 16-byte aligned.
  const size_t scales_at = (bytes + 15) / 16 * 16;
  const int groups = plain.dtype == DType::I4 && plain.group_size > 0 ? c / plain.group_size : 0;
  const size_t scale_bytes = static_cast<size_t>(r) * groups * 2;
  if (plain.dtype == DType::I4 && (plain.group_size < 2 || c % plain.group_size != 0 || plain.scales == nullptr ||
                                   plain.scales_nbytes < scale_bytes))
    return Status::Error(plain.name + ": bad I4 group size or scales");
  AlignedBuffer packed(plain.dtype == DType::I4 ? scales_at + scale_bytes : bytes);
  if (!packed.ok()) return Status::Error("out of memory repacking " + plain.name);
  TensorRef t = plain;
  if (plain.dtype == DType::I8) {
    PackQ8(reinterpret_cast<const int8_t*>(plain.data), r, c, packed.data());
  } else {
    PackQ4(plain.data, r, c, packed.data());
    std::vector<uint16_t> source(static_cast<size_t>(r) * groups), reordered(source.size());
    std::memcpy(source.data(), plain.scales, scale_bytes);
    PackQ4Scales(source.data(), r, groups, reordered.data());
    std::memcpy(packed.data() + scales_at, reordered.data(), scale_bytes);
    t.scales = packed.data() + scales_at;
    t.scales_nbytes = scale_bytes;
  }
  t.layout = TensorLayout::PackedTiles;
  t.pack_rows = kQPackRows;
  t.pack_cols = QPackCols(plain.dtype);
  t.data = packed.data();
  t.nbytes = bytes;
  *storage = std::move(packed);
  return t;
}

int QWeightAt(const QWeights& w, int row, int col) {
  const uint8_t byte = w.data[ByteOffset(w, row, col)];
  if (w.dtype == DType::I8) return static_cast<int8_t>(byte);
  return SignExtend4(col % kQPackColsI4 < 16 ? byte : byte >> 4);
}

float QWeightScale(const QWeights& w, int row, int group) {
  if (w.dtype == DType::I8) {
    float s;
    std::memcpy(&s, w.scales + static_cast<size_t>(row) * 4, 4);
    return s;
  }
  uint16_t h;
  std::memcpy(&h, w.scales + Q4ScaleIndex(w.rows, w.groups(), row, group) * 2, 2);
  return F16ToF32(h);
}

void DequantizeQRow(const QWeights& w, int row, float* out) {
  for (int k = 0; k < w.cols; ++k) {
    const int g = w.dtype == DType::I4 ? k / w.group_size : 0;
    out[k] = static_cast<float>(QWeightAt(w, row, k)) * QWeightScale(w, row, g);
  }
}

float QuantizeActivationRow(const float* x, int cols, int padded_cols, int16_t* q) {
  F32x4 max4 = SplatF32x4(0.0f);
  const I32x4 abs_mask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
  int k = 0;
  for (; k + 4 <= cols; k += 4) {
    const F32x4 a = (F32x4)((I32x4)LoadF32x4(x + k) & abs_mask);
    max4 = Select(a > max4, a, max4);  // NaN compares false and is skipped
  }
  float max_abs = 0.0f;
  for (int l = 0; l < 4; ++l) max_abs = max4[l] > max_abs ? max4[l] : max_abs;
  for (; k < cols; ++k) {
    const float a = std::fabs(x[k]);
    max_abs = a > max_abs ? a : max_abs;
  }
  if (!(max_abs > 0.0f)) {
    std::fill(q, q + padded_cols, int16_t{0});
    return 0.0f;
  }
  const float inv = 127.0f / max_abs;
  const F32x4 inv4 = SplatF32x4(inv), limit = SplatF32x4(127.0f);
  k = 0;
  for (; k + 4 <= cols; k += 4) {
    const I16x4 v = __builtin_convertvector(RoundClamped(LoadF32x4(x + k) * inv4, limit), I16x4);
    std::memcpy(q + k, &v, sizeof(v));
  }
  for (; k < cols; ++k) q[k] = static_cast<int16_t>(RoundClamped(x[k] * inv, 127.0f));
  std::fill(q + cols, q + padded_cols, int16_t{0});
  return max_abs / 127.0f;
}

const QGemmKernel& ReferenceQGemmKernel() {
  static const QGemmKernel kernel = {"reference", ReferenceI8, ReferenceI4};
  return kernel;
}

std::vector<QGemmKernel> AvailableQGemmKernels() {
  std::vector<QGemmKernel> kernels = {ReferenceQGemmKernel()};
  AppendSimdQGemmKernels(&kernels);
  return kernels;
}

const QGemmKernel& BestQGemmKernel() {
  static const QGemmKernel best = AvailableQGemmKernels().back();
  return best;
}

namespace {
ActivationScratch& ThreadScratch() {
  thread_local ActivationScratch scratch;
  return scratch;
}
}  // namespace

void ReleaseQGemmScratch() {
  ThreadScratch() = ActivationScratch();
}

Status QGemm(int M, const float* x, size_t ldx, const QWeights& w, float* y, size_t ldy, const GemmEpilogue& ep,
             const QGemmKernel* kernel) {
  if (M <= 0 || w.rows <= 0) return Status::Ok();
  ActivationScratch& scratch = ThreadScratch();
  const size_t ldq = static_cast<size_t>(QActivationStride(w.cols));
  // The encoder's products need megabytes of scratch, the decoder's a few kilobytes: give a large block
  // back once calls are far smaller, so that it is not held through decoding (the peak-memory phase).
  const size_t q_bytes = static_cast<size_t>(M) * ldq * sizeof(int16_t);
  if (scratch.q.size() > (size_t{1} << 20) && scratch.q.size() / 8 > q_bytes) scratch.q = AlignedBuffer();
  EARSHOT_RETURN_IF_ERROR(Reserve(&scratch.q, q_bytes, "quantized activations"));
  EARSHOT_RETURN_IF_ERROR(Reserve(&scratch.scales, static_cast<size_t>(M) * sizeof(float), "activation scales"));
  int16_t* q = reinterpret_cast<int16_t*>(scratch.q.data());
  float* xs = reinterpret_cast<float*>(scratch.scales.data());
  // Rows are quantized independently: split them when there are enough (a row costs about as much as
  // kQuantizeWork multiply-adds per element).
  constexpr int64_t kQuantizeWork = 16;
  const int quantize_tasks = TaskCountFor(static_cast<int64_t>(M) * w.cols * kQuantizeWork, M);
  ParallelFor(quantize_tasks, [&](int t) {
    const int m1 = static_cast<int>(static_cast<int64_t>(M) * (t + 1) / quantize_tasks);
    for (int m = static_cast<int>(static_cast<int64_t>(M) * t / quantize_tasks); m < m1; ++m)
      xs[m] = QuantizeActivationRow(x + static_cast<size_t>(m) * ldx, w.cols, static_cast<int>(ldq),
                                    q + static_cast<size_t>(m) * ldq);
  });
  const QGemmKernel& k = kernel ? *kernel : BestQGemmKernel();
  const QGemmFn fn = w.dtype == DType::I4 ? k.i4 : k.i8;
  // Output columns in whole row blocks of the packed weights; rows in the kernels' activation blocks.
  const ProductSplit split(M, w.rows, w.cols, qgemm_detail::kQRowBlock, kQColumnGrain);
  if (split.tasks() == 1) {
    fn(M, q, ldq, xs, w, 0, w.rows, y, ldy, ep);
    return Status::Ok();
  }
  ParallelFor(split.tasks(), [&](int t) {
    int m0, m1, n0, n1;
    split.Range(t, &m0, &m1, &n0, &n1);
    // A row range is a smaller product over the same columns: the residual moves with the rows.
    GemmEpilogue rows_ep = ep;
    if (rows_ep.residual) rows_ep.residual += static_cast<size_t>(m0) * ep.ld_residual;
    fn(m1 - m0, q + static_cast<size_t>(m0) * ldq, ldq, xs + m0, w, n0, n1, y + static_cast<size_t>(m0) * ldy, ldy,
       rows_ep);
  });
  return Status::Ok();
}

}  // namespace earshot

#if !defined(__wasm_simd128__) && \
    !((defined(__x86_64__) || defined(__i386__)) && defined(__SSE4_1__) && !defined(__EMSCRIPTEN__))
namespace earshot {
// No SIMD kernels for this target: the reference is the only (and best) kernel.
void AppendSimdQGemmKernels(std::vector<QGemmKernel>*) {}
}  // namespace earshot
#endif
