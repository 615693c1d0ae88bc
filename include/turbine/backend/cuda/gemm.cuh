#pragma once
// y[M, N] = x[M, K] * W[N, K]^T (+ bias[N]) through cuBLASLt, fp32 compute, for prefill and large
// batches; linear() sends M <= 8 to the GEMV instead. Link CUDA::cublasLt.
//
// Row-major y = x W^T is column-major y^T = W x^T: A = W stored [K, N] column-major (transposed),
// B = x stored [K, M] column-major, D = y^T [N, M]: the "TN" layout cuBLASLt is fastest at.
// A Gemm owns a handle, a 32 MiB workspace and, per shape, the descriptors and the algorithm that
// cublasLtMatmulAlgoGetHeuristic chose once. One Gemm per stream (the workspace is shared by the
// calls it makes) and per host thread (the plan cache is not locked).
#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "check.cuh"
#include "device_buffer.cuh"
#include "gemv.cuh"
#include "vec.cuh"

#define TURBINE_CUBLAS_CHECK(call)                                                                                   \
  do {                                                                                                               \
    const cublasStatus_t turbine_st_ = (call);                                                                       \
    if (turbine_st_ != CUBLAS_STATUS_SUCCESS)                                                                        \
      ::turbine::fail(#call, " failed at ", __FILE__, ":", __LINE__, ": ", cublasLtGetStatusName(turbine_st_), " (", \
                      cublasLtGetStatusString(turbine_st_), ")");                                                    \
  } while (0)

namespace turbine::cuda {

template <class T>
constexpr cudaDataType_t cuda_data_type() {
  if constexpr (std::same_as<T, __half>)
    return CUDA_R_16F;
  else if constexpr (std::same_as<T, __nv_bfloat16>)
    return CUDA_R_16BF;
  else
    return CUDA_R_32F;
}

/// A cuBLASLt GEMM context: y = x * W^T (+ bias) with a handle, a workspace and a per-shape cache
/// of descriptors and heuristic-chosen algorithms. One per stream and host thread.
class Gemm {
 public:
  /// Default cuBLASLt workspace size: 32 MiB.
  static constexpr size_t kDefaultWorkspace = size_t{32} << 20;

  /// Creates the cuBLASLt handle and allocates a device workspace of workspace_bytes.
  explicit Gemm(size_t workspace_bytes = kDefaultWorkspace) : workspace_(workspace_bytes, "cuBLASLt workspace") {
    TURBINE_CUBLAS_CHECK(cublasLtCreate(&handle_));
  }
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  ~Gemm() {
    for (auto& [key, plan] : plans_) destroy(plan);
    if (handle_) cublasLtDestroy(handle_);
  }

  /// y[m, n] = x[m, k] * w[n, k]^T (+ bias[n]). All T, row-major, 16-byte aligned; k and n
  /// multiples of 8 (cuBLASLt's fast paths need 16-byte aligned rows).
  template <HalfElement T>
  void operator()(const T* x, const T* w, const T* bias, T* y, int m, int n, int k, cudaStream_t stream = nullptr) {
    check(m >= 0 && n > 0 && k > 0, "gemm: bad sizes (m ", m, ", n ", n, ", k ", k, ")");
    check(k % 8 == 0 && n % 8 == 0, "gemm: n = ", n, ", k = ", k, " is not supported (both must be multiples of 8)");
    check(aligned16(x) && aligned16(w) && aligned16(y) && aligned16(bias), "gemm: pointers must be 16-byte aligned");
    if (m == 0) return;
    const Key key{cuda_data_type<T>(), m, n, k, bias != nullptr, alignment(x), alignment(w), alignment(y)};
    Plan& plan = plan_for<T>(key);
    if (bias) {
      TURBINE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    }
    const float alpha = 1.0f, beta = 0.0f;
    TURBINE_CUBLAS_CHECK(cublasLtMatmul(handle_, plan.op, &alpha, w, plan.a, x, plan.b, &beta, y, plan.d, y, plan.d,
                                        &plan.algo, workspace_.data(), workspace_.bytes(), stream));
  }

  /// Number of shapes planned so far (each ran the heuristic once).
  size_t planned_shapes() const { return plans_.size(); }

 private:
  // dtype, m, n, k, bias, alignments of x, w, y (the algorithm may depend on each).
  using Key = std::tuple<cudaDataType_t, int, int, int, bool, int, int, int>;
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };

  static int alignment(const void* p) {
    const auto a = reinterpret_cast<uintptr_t>(p);
    int al = 256;
    while (al > 16 && (a % static_cast<uintptr_t>(al)) != 0) al /= 2;
    return al;
  }

  static void destroy(Plan& p) {
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.d) cublasLtMatrixLayoutDestroy(p.d);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    p = Plan{};
  }

  template <class T>
  Plan& plan_for(const Key& key) {
    if (auto it = plans_.find(key); it != plans_.end()) return it->second;
    const auto [dtype, m, n, k, has_bias, align_x, align_w, align_y] = key;
    Plan p;
    try {
      TURBINE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
      TURBINE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)));
      TURBINE_CUBLAS_CHECK(
          cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)));
      if (has_bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        TURBINE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
        const cudaDataType_t bias_type = dtype;
        TURBINE_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
      }
      TURBINE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, dtype, k, n, k));  // W: [k, n] col-major, op T
      TURBINE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, dtype, k, m, k));  // x: [k, m] col-major
      TURBINE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, dtype, n, m, n));  // y^T: [n, m] col-major

      cublasLtMatmulPreference_t pref = nullptr;
      TURBINE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
      const size_t ws = workspace_.bytes();
      const uint32_t ax = static_cast<uint32_t>(align_x), aw = static_cast<uint32_t>(align_w),
                     ay = static_cast<uint32_t>(align_y);
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      cublasStatus_t st =
          cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aw, sizeof(aw));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ax, sizeof(ax));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ay, sizeof(ay));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ay, sizeof(ay));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
      cublasLtMatmulPreferenceDestroy(pref);
      TURBINE_CUBLAS_CHECK(st);
      check(found > 0, "gemm: cuBLASLt has no algorithm for m ", m, ", n ", n, ", k ", k);
      p.algo = result.algo;
    } catch (...) {
      destroy(p);
      throw;
    }
    return plans_.emplace(key, p).first->second;
  }

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer<std::byte> workspace_;
  std::map<Key, Plan> plans_;
};

/// y[m, n] = x[m, k] * w[n, k]^T (+ bias): the GEMV for m <= 8 (decode reads the weights once at
/// DRAM bandwidth), cuBLASLt above.
template <HalfElement T>
void linear(Gemm& gemm, const T* x, const T* w, const T* bias, T* y, int m, int n, int k,
            cudaStream_t stream = nullptr) {
  if (m <= kGemvMaxTokens) {
    gemv(w, x, bias, y, m, n, k, stream);
  } else {
    gemm(x, w, bias, y, m, n, k, stream);
  }
}

}  // namespace turbine::cuda
