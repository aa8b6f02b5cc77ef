// Quantized matrix products: int8 (per-output-channel f32 scales) and int4 (groups along the input dimension,
// f16 scales) weights times activations quantized dynamically per row to int8, int32 accumulation, with the
// epilogue (scale, bias, GELU, residual) fused.
//
// Every kernel (scalar reference, x86 SSE4.1/AVX2, WebAssembly SIMD128) computes bit-identical results: the
// integer sums are exact, and the float steps after them follow one fixed order (see "Arithmetic" below), with
// no FMA contraction (CMakeLists.txt builds everything with -ffp-contract=off). So the native tools measure exactly
// what the browser computes.
//
// Arithmetic (the contract every kernel keeps):
//   activations   s = max|x| / 127, inv = 127 / max|x|; q = round_half_even(clamp(x * inv, -127, 127));
//                 all-zero rows: s = 0, q = 0 (NaN elements become 0). Shared scalar code in every build.
//                 q is stored as int16: the SIMD kernels broadcast one pair of activations to every lane of a
//                 16-bit multiply-add, so each row is widened once rather than once per weight tile.
//   I8            acc = sum_k q[k] * w[n, k] (int32); v = float(acc) * (s * w_scale[n])
//   I4            acc_g = sum_{k in group g} q[k] * w[n, k] (int32);
//                 t = 0; for g ascending: t = t + float(acc_g) * w_scale[n, g]; v = t * s
//   epilogue      y = v (+ bias[n]), then GELU if asked, then (+ residual[m, n]) -- GemmEpilogue's order.
//
// Weights are read in a packed layout (Layout PackedTiles, tile kQPackRows x QPackCols(dtype)): the matrix is
// zero-padded to whole tiles; tiles are stored row block by row block, and within a row block k-chunk by
// k-chunk, each tile 64 contiguous bytes. Inside a tile, columns go in pairs and each pair is interleaved across
// the tile's four rows, so that 8 bytes hold columns (k, k+1) of rows 0..3 -- the operand of a 16-bit
// multiply-add whose other operand is the activation pair (q[k], q[k+1]) in every lane, giving four outputs:
//   I8 (4 x 16): element (r, k) of the chunk at byte 8 (k / 2) + 2 r + k % 2. Pair p of a row block (columns
//                2p, 2p+1) is therefore at byte 8 p of the block, across chunks.
//   I4 (4 x 32): the low nibbles of the tile's 64 bytes are its first 16 columns in the I8 order, the high
//                nibbles its last 16: element (r, k) at byte 8 ((k % 16) / 2) + 2 r + k % 2, low nibble if k < 16
//                (signed, [-8, 7]). Unpacking nibbles bytewise yields two I8 tiles.
// Scales are never padded: I8 f32 [rows]; I4 f16, one per (row, group), ordered row block by row block, then
// group, then row within the block (a block's scales for one group are contiguous; the last block may have
// fewer than kQPackRows rows). Plain I4 files keep [rows, groups] order, converted by RepackQuantizedTensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "kernels/gemm.h"
#include "model/model.h"

namespace earshot {

constexpr int kQPackRows = 4;
constexpr int kQPackColsI8 = 16;
constexpr int kQPackColsI4 = 32;
constexpr int kQTileBytes = 64;
// Activation rows are padded with zeros to a multiple of this many columns.
constexpr int kQActivationAlign = 32;
// Output columns are divided among threads in multiples of this (whole groups of the kernels' row blocks).
constexpr int kQColumnGrain = 16;
// Upper bound on cols so that int32 sums of int8 x int8 products cannot overflow (128 * 128 * 65536 = 2^30).
constexpr int kQMaxCols = 65536;

inline int QPackCols(DType dtype) { return dtype == DType::I4 ? kQPackColsI4 : kQPackColsI8; }
inline int QPaddedCols(DType dtype, int cols) {
  const int c = QPackCols(dtype);
  return (cols + c - 1) / c * c;
}
inline int QActivationStride(int cols) {
  return (cols + kQActivationAlign - 1) / kQActivationAlign * kQActivationAlign;
}

// A packed quantized weight matrix [rows, cols] (rows = output channels), viewed in place.
struct QWeights {
  DType dtype = DType::I8;
  int rows = 0, cols = 0;
  int padded_cols = 0;  // cols rounded up to QPackCols(dtype)
  int group_size = 0;   // I4 only
  const uint8_t* data = nullptr;
  const uint8_t* scales = nullptr;  // I8: f32 [rows]; I4: f16 in block order (see above)

  int groups() const { return dtype == DType::I4 ? cols / group_size : 1; }
  // Bytes from one row block (kQPackRows rows) to the next.
  size_t block_stride() const {
    return static_cast<size_t>(kQPackRows) * (dtype == DType::I4 ? padded_cols / 2 : padded_cols);
  }
};

// Bytes of packed data for a [rows, cols] matrix.
size_t QPackedBytes(DType dtype, int rows, int cols);

// Checks a tensor (I8/I4, PackedTiles with this file's tile, sizes, cols <= kQMaxCols) and returns its view.
// `rows`/`cols` are the expected matrix shape (conv weights [out, c, k] have cols = c * k).
Expected<QWeights> QWeightsFromTensor(const TensorRef& w, int rows, int cols);

// Packs a plain row-major int8 matrix [rows, cols] into out[QPackedBytes(I8, rows, cols)].
void PackQ8(const int8_t* w, int rows, int cols, uint8_t* out);
// Packs a plain I4 matrix (earshot.fbs order: elements 2j, 2j+1 of the row-major matrix share a byte, 2j in the
// low nibble) into out[QPackedBytes(I4, rows, cols)].
void PackQ4(const uint8_t* nibbles, int rows, int cols, uint8_t* out);
// Reorders I4 f16 scales from [rows, groups] to the packed block order (out: rows * groups f16 values).
void PackQ4Scales(const uint16_t* scales, int rows, int groups, uint16_t* out);
// Index (in f16 values) of the scale of (row, group) in the packed block order.
inline size_t Q4ScaleIndex(int rows, int groups, int row, int group) {
  const int block = row / kQPackRows;
  const int width = rows - block * kQPackRows < kQPackRows ? rows - block * kQPackRows : kQPackRows;
  return static_cast<size_t>(block) * kQPackRows * groups + static_cast<size_t>(group) * width + row % kQPackRows;
}

// Repacks a Plain I8/I4 tensor into `storage` and returns a PackedTiles TensorRef over it (same name and shape;
// I8 scales still point into the original, I4 scales are reordered into `storage` too). For loading files
// written without the packed layout.
Expected<TensorRef> RepackQuantizedTensor(const TensorRef& plain, AlignedBuffer* storage);

// The quantized weight value at (row, col), for references and tests.
int QWeightAt(const QWeights& w, int row, int col);
// w_scale for (row, group) as f32.
float QWeightScale(const QWeights& w, int row, int group);
// Dequantized row: out[k] = value * scale (embedding lookups of a quantized token embedding).
void DequantizeQRow(const QWeights& w, int row, float* out);

// Quantizes one activation row (see Arithmetic): q[0, padded_cols) with zeros after cols; returns the scale.
float QuantizeActivationRow(const float* x, int cols, int padded_cols, int16_t* q);

// One implementation of the integer kernels. Computes output columns [n0, n1) (n0 a multiple of kQPackRows)
// for M activation rows: q rows of stride ldq (>= padded_cols, zero-padded), scales xs[M].
using QGemmFn = void (*)(int M, const int16_t* q, size_t ldq, const float* xs, const QWeights& w, int n0, int n1,
                         float* y, size_t ldy, const GemmEpilogue& ep);
struct QGemmKernel {
  const char* name;
  QGemmFn i8;
  QGemmFn i4;
};

// The scalar reference (the definition of the arithmetic).
const QGemmKernel& ReferenceQGemmKernel();
// Every kernel this build and CPU can run, reference first.
std::vector<QGemmKernel> AvailableQGemmKernels();
// The fastest available one.
const QGemmKernel& BestQGemmKernel();

// Frees the calling thread's activation scratch (QGemm keeps it between calls): the encoder gives its megabytes
// back before the decoder allocates its caches.
void ReleaseQGemmScratch();

// y[m, n] = epilogue(x[m, :] . W[n, :]) for m < M, n < w.rows: quantizes x per row, then runs `kernel` (the best
// one when null). Fails only when scratch memory cannot be allocated.
Status QGemm(int M, const float* x, size_t ldx, const QWeights& w, float* y, size_t ldy,
             const GemmEpilogue& ep = {}, const QGemmKernel* kernel = nullptr);

}  // namespace earshot
