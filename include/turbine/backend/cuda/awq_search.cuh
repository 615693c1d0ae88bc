#pragma once
// cuda::AwqSearch: the search backend of quant/awq_search.hpp on the GPU, so that the AWQ scale and
// clipping searches of a 7-8B model take minutes rather than hours. The algorithm stays in
// awq_search.hpp; this computes what it asks for, the same numbers as quant::CpuAwqSearch up to
// float summation order:
//   pseudo_quantize_int4()  the group-wise asymmetric 4-bit round trip of quant/int4_groups.hpp
//                           (fp16 scales, integer zeros), bit for bit: IEEE division and
//                           round-half-even as the CPU's std::nearbyint; optionally with the
//                           columns scaled first (scale search) or each (row, group) clamped to a
//                           fraction of its max|w| (clip search);
//   the products            cuBLAS SGEMM in plain fp32 (no TF32: the winning exponent must be the
//                           CPU's, and candidate losses can differ by less than TF32's 1e-3);
//   the errors              squared differences summed in double, per block, then on the host;
//   mlp_scale_losses()      the gate/up candidates' error at the MLP's output (down in float);
//   linear()                the Linears of the calibration forward pass (every calibration token
//                           at once), which on the CPU cost as much as the searches.
// Link CUDA::cublas. One AwqSearch per host thread (it owns a stream and a cuBLAS handle).
#include <cublas_v2.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../../quant/awq_search.hpp"
#include "activation.cuh"
#include "check.cuh"
#include "device_buffer.cuh"

/// Checks a cuBLAS (v2 API) call: the error names the call, file and line.
#define TURBINE_CUBLAS_V2_CHECK(call)                                                                         \
  do {                                                                                                        \
    const cublasStatus_t turbine_st_ = (call);                                                                \
    if (turbine_st_ != CUBLAS_STATUS_SUCCESS)                                                                 \
      ::turbine::fail(#call, " failed at ", __FILE__, ":", __LINE__, ": ", cublasGetStatusName(turbine_st_)); \
  } while (0)

namespace turbine::cuda {

namespace detail::awq {  // the kernels of AwqSearch

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kReduceBlocks = 512;  // partial sums per squared-error reduction
constexpr int kReduceThreads = 256;

__device__ inline float warp_min(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp per (row, group) of w [rows, in]: v = w * col_scale (if given), clamped to
// max|v| * clip, then rounded as quant::pseudo_quantize_int4 rounds it. The group is read three
// times (range, clamp range, round); it stays in L1/L2.
__global__ static void pseudo_quantize_kernel(const float* __restrict__ w, float* __restrict__ out, int64_t rows,
                                              int64_t in, int group, const float* __restrict__ col_scale, float clip) {
  const int64_t groups = in / group;
  const int64_t task = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (task >= rows * groups) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t base = (task / groups) * in + (task % groups) * group;
  auto value = [&](int e) { return col_scale ? w[base + e] * col_scale[base % in + e] : w[base + e]; };
  float m = 0.0f;
  if (clip != 1.0f) {  // clamping to max|v| itself changes nothing
    for (int e = lane; e < group; e += kWarp) m = fmaxf(m, fabsf(value(e)));
    m = warp_max(m) * clip;
  }
  auto clamped = [&](int e) { return clip != 1.0f ? fminf(fmaxf(value(e), -m), m) : value(e); };
  float lo = INFINITY, hi = -INFINITY;
  for (int e = lane; e < group; e += kWarp) {
    const float v = clamped(e);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  lo = warp_min(lo);
  hi = warp_max(hi);
  // quant::rtn_group_params with round_scale_fp16, division and rounding exactly as on the CPU
  const float scale = __half2float(__float2half_rn(__fdiv_rn(fmaxf(hi - lo, 1e-5f), 15.0f)));
  const float zero = fminf(fmaxf(-rintf(__fdiv_rn(lo, scale)), 0.0f), 15.0f);
  for (int e = lane; e < group; e += kWarp) {
    const float q = fminf(fmaxf(rintf(__fdiv_rn(clamped(e), scale)) + zero, 0.0f), 15.0f);
    out[base + e] = __fmul_rn(q - zero, scale);
  }
}

// x [tokens, in] times inv_scale [in] per column (the inputs of a candidate, x diag(1/s)).
__global__ static void scale_columns_kernel(const float* __restrict__ x, const float* __restrict__ inv_scale,
                                            float* __restrict__ out, int64_t n, int64_t in) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __fmul_rn(x[i], inv_scale[i % in]);
}

// partial[blockIdx.x] = sum of (a - b)^2 over this block's grid-stride share of n, in double.
__global__ static void squared_error_kernel(const float* __restrict__ a, const float* __restrict__ b, int64_t n,
                                            double* __restrict__ partial) {
  __shared__ double warp_sums[kReduceThreads / kWarp];
  double s = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (threadIdx.x % kWarp == 0) warp_sums[threadIdx.x / kWarp] = s;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int i = 0; i < kReduceThreads / kWarp; ++i) t += warp_sums[i];
    partial[blockIdx.x] = t;
  }
}

// err[g * out + r] = sum over tokens t of (y[g][t][r] - ref[g][t][r])^2 for the `groups` groups
// of a chunk (y and ref [groups, tokens, out]; a thread per (group, row), coalesced over rows).
__global__ static void row_errors_kernel(const float* __restrict__ y, const float* __restrict__ ref, int64_t groups,
                                         int64_t tokens, int64_t out, float* __restrict__ err) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < groups * out;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t g = i / out, r = i % out;
    const float* yg = y + g * tokens * out + r;
    const float* rg = ref + g * tokens * out + r;
    double s = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      const double d = static_cast<double>(yg[t * out]) - static_cast<double>(rg[t * out]);
      s += d * d;
    }
    err[i] = static_cast<float>(s);
  }
}

// h[i] = silu(h[i]) * v[i] (the MLP's gating in fp32, any size; activation.cuh's gated_activation
// takes fp16/bf16 rows of multiples of 8, the silu itself is its activate()).
__global__ static void silu_mul_kernel(float* __restrict__ h, const float* __restrict__ v, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    h[i] = cuda::detail::activate<Activation::Silu>(h[i]) * v[i];
}

// y [rows, cols] row r times w[r] (a token's error weight: (w y - w ref)^2 = w^2 (y - ref)^2).
__global__ static void scale_rows_kernel(float* __restrict__ y, const float* __restrict__ w, int64_t n, int64_t cols) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] *= w[i / cols];
}

inline unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + threads - 1) / threads, 1, 65535));
}

}  // namespace detail::awq

/// out [rows, in] = quant::pseudo_quantize_int4 of w [rows, in] (fp32, row-major), with the
/// columns first multiplied by col_scale [in] (null: none) and each (row, group) clamped to
/// max|w| * clip of that group (1: no clamping). out may be w.
inline void pseudo_quantize_int4(const float* w, float* out, int64_t rows, int64_t in, int64_t group,
                                 const float* col_scale = nullptr, float clip = 1.0f, cudaStream_t stream = nullptr) {
  check(rows >= 0 && group > 0 && in % group == 0, "pseudo_quantize_int4: ", in, " columns are not a multiple of group ",
        group);
  const int64_t tasks = rows * (in / group);
  if (tasks == 0) return;
  const int64_t blocks = (tasks + detail::awq::kWarpsPerBlock - 1) / detail::awq::kWarpsPerBlock;
  check(blocks < (int64_t{1} << 31), "pseudo_quantize_int4: matrix too large (", rows, " x ", in, ")");
  detail::awq::pseudo_quantize_kernel<<<static_cast<unsigned>(blocks), detail::awq::kWarpsPerBlock * detail::awq::kWarp, 0,
                                       stream>>>(w, out, rows, in, static_cast<int>(group), col_scale, clip);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// The AWQ search backend on the GPU (quant::AwqSearchBackend).
class AwqSearch {
 public:
  /// Bytes of the clip search's two [groups, tokens, out] products at a time (groups are chunked).
  static constexpr size_t kClipChunkBytes = size_t{1} << 30;

  /// Creates the stream and the cuBLAS handle (plain fp32 math).
  AwqSearch() {
    TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    TURBINE_CUBLAS_V2_CHECK(cublasCreate(&handle_));
    TURBINE_CUBLAS_V2_CHECK(cublasSetStream(handle_, stream_));
    TURBINE_CUBLAS_V2_CHECK(cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH));  // fp32, no TF32
  }
  AwqSearch(const AwqSearch&) = delete;
  AwqSearch& operator=(const AwqSearch&) = delete;
  ~AwqSearch() {
    if (handle_) cublasDestroy(handle_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  /// The losses of the scale search's candidates (see quant::AwqSearchBackend).
  std::vector<double> scale_losses(const quant::FloatRows& x, const std::vector<const quant::FloatRows*>& ws,
                                   const std::vector<Eigen::VectorXf>& cands, int64_t group) {
    const int64_t tokens = x.rows(), in = x.cols();
    DeviceBuffer<float> d_x = upload(x.data(), x.size(), "AWQ calibration inputs"), d_xq(x.size(), "AWQ scaled inputs");
    std::vector<DeviceBuffer<float>> d_w, d_ref;
    int64_t max_out = 0;
    for (const quant::FloatRows* w : ws) {
      d_w.push_back(upload(w->data(), w->size(), "AWQ weights"));
      d_ref.emplace_back(static_cast<size_t>(tokens * w->rows()), "AWQ reference outputs");
      matmul(d_x.data(), d_w.back().data(), d_ref.back().data(), tokens, w->rows(), in);
      max_out = std::max<int64_t>(max_out, w->rows());
    }
    DeviceBuffer<float> d_wq(static_cast<size_t>(max_out * in), "AWQ candidate weights"),
        d_y(static_cast<size_t>(tokens * max_out), "AWQ candidate outputs"), d_s(static_cast<size_t>(in)),
        d_inv(static_cast<size_t>(in));
    // partial sums [candidate, Linear, block], read back once at the end
    const size_t slots = cands.size() * ws.size();
    DeviceBuffer<double> d_partial(slots * detail::awq::kReduceBlocks, "AWQ partial sums");
    std::vector<float> inv(static_cast<size_t>(in));
    for (size_t i = 0; i < cands.size(); ++i) {
      const Eigen::VectorXf& s = cands[i];
      if (s.size() == 0) continue;
      scale_inputs(s, inv, d_s, d_inv, d_x, d_xq);
      for (size_t k = 0; k < ws.size(); ++k) {
        const int64_t out = ws[k]->rows();
        pseudo_quantize_int4(d_w[k].data(), d_wq.data(), out, in, group, d_s.data(), 1.0f, stream_);
        matmul(d_xq.data(), d_wq.data(), d_y.data(), tokens, out, in);
        detail::awq::squared_error_kernel<<<detail::awq::kReduceBlocks, detail::awq::kReduceThreads, 0, stream_>>>(
            d_y.data(), d_ref[k].data(), tokens * out, d_partial.data() + (i * ws.size() + k) * detail::awq::kReduceBlocks);
        TURBINE_CUDA_CHECK(cudaGetLastError());
      }
      TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));  // before inv and s are overwritten
    }
    double count = 0;
    for (const quant::FloatRows* w : ws) count += static_cast<double>(tokens) * static_cast<double>(w->rows());
    return mean_losses(d_partial, cands, ws.size() * detail::awq::kReduceBlocks, count);
  }

  /// The losses of the gate/up scale search's candidates at the MLP's output (see
  /// quant::CpuAwqSearch::mlp_scale_losses).
  std::vector<double> mlp_scale_losses(const quant::FloatRows& x, const quant::FloatRows& gate,
                                       const quant::FloatRows& up, const quant::FloatRows& down,
                                       const std::vector<Eigen::VectorXf>& cands, int64_t group,
                                       std::span<const float> row_weight = {}) {
    const int64_t tokens = x.rows(), in = x.cols(), inter = gate.rows(), hidden = down.rows();
    check(gate.cols() == in && up.rows() == inter && up.cols() == in && down.cols() == inter &&
              (row_weight.empty() || static_cast<int64_t>(row_weight.size()) == tokens),
          "AwqSearch: MLP loss sizes do not match");
    const DeviceBuffer<float> d_x = upload(x.data(), x.size(), "AWQ calibration inputs"),
                              d_g = upload(gate.data(), gate.size(), "AWQ gate weights"),
                              d_u = upload(up.data(), up.size(), "AWQ up weights"),
                              d_d = upload(down.data(), down.size(), "AWQ down weights"),
                              d_rw = upload(row_weight.data(), static_cast<int64_t>(row_weight.size()), "AWQ token weights");
    DeviceBuffer<float> d_xq(x.size(), "AWQ scaled inputs"), d_gq(gate.size(), "AWQ candidate gate"),
        d_uq(up.size(), "AWQ candidate up"), d_h(static_cast<size_t>(tokens * inter), "AWQ MLP gate outputs"),
        d_v(static_cast<size_t>(tokens * inter), "AWQ MLP up outputs"),
        d_ref(static_cast<size_t>(tokens * hidden), "AWQ MLP reference"), d_y(static_cast<size_t>(tokens * hidden), "AWQ MLP outputs"),
        d_s(static_cast<size_t>(in)), d_inv(static_cast<size_t>(in));
    DeviceBuffer<double> d_partial(cands.size() * detail::awq::kReduceBlocks, "AWQ partial sums");
    const int64_t n_inter = tokens * inter, n_out = tokens * hidden;
    auto mlp = [&](const float* xin, const float* g, const float* u, float* y) {
      matmul(xin, g, d_h.data(), tokens, inter, in);
      matmul(xin, u, d_v.data(), tokens, inter, in);
      detail::awq::silu_mul_kernel<<<detail::awq::blocks_for(n_inter, 256), 256, 0, stream_>>>(d_h.data(), d_v.data(), n_inter);
      matmul(d_h.data(), d_d.data(), y, tokens, hidden, inter);
      if (!row_weight.empty())
        detail::awq::scale_rows_kernel<<<detail::awq::blocks_for(n_out, 256), 256, 0, stream_>>>(y, d_rw.data(), n_out, hidden);
      TURBINE_CUDA_CHECK(cudaGetLastError());
    };
    mlp(d_x.data(), d_g.data(), d_u.data(), d_ref.data());
    std::vector<float> inv(static_cast<size_t>(in));
    for (size_t i = 0; i < cands.size(); ++i) {
      const Eigen::VectorXf& s = cands[i];
      if (s.size() == 0) continue;
      scale_inputs(s, inv, d_s, d_inv, d_x, d_xq);
      pseudo_quantize_int4(d_g.data(), d_gq.data(), inter, in, group, d_s.data(), 1.0f, stream_);
      pseudo_quantize_int4(d_u.data(), d_uq.data(), inter, in, group, d_s.data(), 1.0f, stream_);
      mlp(d_xq.data(), d_gq.data(), d_uq.data(), d_y.data());
      detail::awq::squared_error_kernel<<<detail::awq::kReduceBlocks, detail::awq::kReduceThreads, 0, stream_>>>(
          d_y.data(), d_ref.data(), n_out, d_partial.data() + i * detail::awq::kReduceBlocks);
      TURBINE_CUDA_CHECK(cudaGetLastError());
      TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));  // before inv and s are overwritten
    }
    return mean_losses(d_partial, cands, detail::awq::kReduceBlocks, static_cast<double>(n_out));
  }

  /// The errors of the clip search's candidates (see quant::AwqSearchBackend).
  std::vector<float> clip_errors(const quant::FloatRows& w, const quant::FloatRows& x, int64_t group,
                                 const std::vector<float>& factors) {
    const int64_t out = w.rows(), in = w.cols(), tokens = x.rows(), groups = in / group;
    const int64_t nf = static_cast<int64_t>(factors.size());
    check(x.cols() == in && in % group == 0, "AwqSearch: clip sizes do not match");
    DeviceBuffer<float> d_w = upload(w.data(), w.size(), "AWQ weights"), d_x = upload(x.data(), x.size(), "AWQ clip inputs");
    DeviceBuffer<float> d_wc(static_cast<size_t>(w.size()), "AWQ clipped weights");
    const size_t per_group = static_cast<size_t>(tokens * out) * sizeof(float);
    const int64_t chunk = std::clamp<int64_t>(static_cast<int64_t>(kClipChunkBytes / 2 / std::max<size_t>(per_group, 1)), 1, groups);
    DeviceBuffer<float> d_ref(static_cast<size_t>(chunk * tokens * out), "AWQ clip reference"),
        d_y(static_cast<size_t>(chunk * tokens * out), "AWQ clip outputs"),
        d_err(static_cast<size_t>(nf * groups * out), "AWQ clip errors");
    for (int64_t g0 = 0; g0 < groups; g0 += chunk) {
      const int64_t n = std::min(chunk, groups - g0);
      group_matmul(d_x.data(), d_w.data(), d_ref.data(), g0, n, tokens, out, in, group);
      for (int64_t i = 0; i < nf; ++i) {
        // (all groups are quantized each time: cheap next to the products, and simpler)
        pseudo_quantize_int4(d_w.data(), d_wc.data(), out, in, group, nullptr, factors[static_cast<size_t>(i)], stream_);
        group_matmul(d_x.data(), d_wc.data(), d_y.data(), g0, n, tokens, out, in, group);
        detail::awq::row_errors_kernel<<<detail::awq::blocks_for(n * out, 256), 256, 0, stream_>>>(
            d_y.data(), d_ref.data(), n, tokens, out, d_err.data() + (i * groups + g0) * out);
        TURBINE_CUDA_CHECK(cudaGetLastError());
      }
    }
    std::vector<float> errs(d_err.size());
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(errs.data(), d_err.data(), d_err.bytes(), cudaMemcpyDeviceToHost, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return errs;
  }

  /// The calibration forward's Linears (model/quantize_model.hpp uses them when a backend has
  /// them): y [tokens, out] = x [tokens, in] w [out, in]^T (+ bias [out]), fp32.
  quant::FloatRows linear(const quant::FloatRows& x, const quant::FloatRows& w, const std::vector<float>& bias) {
    check(x.cols() == w.cols() && (bias.empty() || static_cast<int64_t>(bias.size()) == w.rows()),
          "AwqSearch::linear: sizes do not match");
    const DeviceBuffer<float> d_x = upload(x.data(), x.size(), "calibration activations"),
                              d_w = upload(w.data(), w.size(), "calibration weights");
    DeviceBuffer<float> d_y(static_cast<size_t>(x.rows() * w.rows()), "calibration outputs");
    matmul(d_x.data(), d_w.data(), d_y.data(), x.rows(), w.rows(), x.cols());
    quant::FloatRows y(x.rows(), w.rows());
    if (y.size())
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(y.data(), d_y.data(), d_y.bytes(), cudaMemcpyDeviceToHost, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (!bias.empty()) y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), w.rows());
    return y;
  }

  /// The stream every call runs on.
  cudaStream_t stream() const { return stream_; }

 private:
  // A candidate's scales s and 1 / s (as s.cwiseInverse()) to the device, and xq = x / s column-wise.
  // Synchronous copies: the host buffers are reused by the next candidate (they are small).
  void scale_inputs(const Eigen::VectorXf& s, std::vector<float>& inv, DeviceBuffer<float>& d_s,
                    DeviceBuffer<float>& d_inv, const DeviceBuffer<float>& d_x, DeviceBuffer<float>& d_xq) {
    const int64_t in = static_cast<int64_t>(inv.size());
    check(s.size() == in, "AwqSearch: a candidate has ", s.size(), " scales for ", in, " inputs");
    for (int64_t c = 0; c < in; ++c) inv[static_cast<size_t>(c)] = 1.0f / s[c];
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(d_s.data(), s.data(), d_s.bytes(), cudaMemcpyHostToDevice, stream_));
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(d_inv.data(), inv.data(), d_inv.bytes(), cudaMemcpyHostToDevice, stream_));
    const int64_t count = static_cast<int64_t>(d_x.size());
    detail::awq::scale_columns_kernel<<<detail::awq::blocks_for(count, 256), 256, 0, stream_>>>(
        d_x.data(), d_inv.data(), d_xq.data(), count, in);
    TURBINE_CUDA_CHECK(cudaGetLastError());
  }

  // Reads the per-block partial sums back ([candidate][per_candidate]) and returns each candidate's
  // sum / count; skipped (empty) candidates are infinite.
  std::vector<double> mean_losses(const DeviceBuffer<double>& d_partial, const std::vector<Eigen::VectorXf>& cands,
                                  size_t per_candidate, double count) {
    std::vector<double> partial(d_partial.size());
    TURBINE_CUDA_CHECK(cudaMemcpyAsync(partial.data(), d_partial.data(), d_partial.bytes(), cudaMemcpyDeviceToHost, stream_));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<double> losses(cands.size(), std::numeric_limits<double>::infinity());
    for (size_t i = 0; i < cands.size(); ++i) {
      if (cands[i].size() == 0) continue;
      double err = 0;
      for (size_t b = 0; b < per_candidate; ++b) err += partial[i * per_candidate + b];
      losses[i] = err / count;
    }
    return losses;
  }

  DeviceBuffer<float> upload(const float* p, int64_t n, const char* what) {
    DeviceBuffer<float> d(static_cast<size_t>(n), what);
    if (n) TURBINE_CUDA_CHECK(cudaMemcpyAsync(d.data(), p, d.bytes(), cudaMemcpyHostToDevice, stream_));
    return d;
  }

  // y [m, n] = x [m, k] * w [n, k]^T, row-major: column-major y^T = w^T x^T.
  void matmul(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k) {
    check(m < (int64_t{1} << 31) && n < (int64_t{1} << 31) && k < (int64_t{1} << 31), "AwqSearch: matrix too large");
    const float one = 1.0f, zero = 0.0f;
    TURBINE_CUBLAS_V2_CHECK(cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                        static_cast<int>(k), &one, w, static_cast<int>(k), x, static_cast<int>(k), &zero,
                                        y, static_cast<int>(n)));
  }

  // For groups g0 .. g0 + n: y[g - g0] [tokens, out] = x[:, group g] * w[:, group g]^T, one
  // strided batch (group g of a row-major matrix starts g * group elements into each row).
  void group_matmul(const float* x, const float* w, float* y, int64_t g0, int64_t n, int64_t tokens, int64_t out,
                    int64_t in, int64_t group) {
    const float one = 1.0f, zero = 0.0f;
    TURBINE_CUBLAS_V2_CHECK(cublasSgemmStridedBatched(
        handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(tokens), static_cast<int>(group), &one,
        w + g0 * group, static_cast<int>(in), group, x + g0 * group, static_cast<int>(in), group, &zero, y,
        static_cast<int>(out), tokens * out, static_cast<int>(n)));
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
};
static_assert(quant::AwqSearchBackend<AwqSearch>);

}  // namespace turbine::cuda
