// Probe: where the wgmma W4 GEMM's time goes (a measurement, not a test). Times gemm_w4 as
// dispatched, cuBLAS fp16 on the same shapes, the staged kernel, the wgmma kernel
// (gemm_w4_wgmma.cuh) with parts left out (W4wKnock: the proxy fence before each chunk's barrier,
// the x copies, the weight loads, the wgmma), and its form with x permuted first and loaded by bulk
// copies (and that form with the token tiles of one row block side by side in the grid), and the
// engine's path above kW4GemmMaxTokens (W dequantized to a copy, then cuBLAS), at 16 to 512 tokens,
// after a copy ceiling; the knocked-out kernels compute wrong results, so only their times
// mean anything. (Its own event timing, not bench_cuda_kernels' GraphTimer: plain stream launches,
// as gemm_w4 runs outside a graph.)
// Weights rotate over copies that together exceed L2 four times, as in bench_cuda_kernels.
// Build and run on an sm_90a GPU from the repository root:
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I include -isystem /usr/include/eigen3 \
//     tools/probe_w4_gemm_knockouts.cu -lcublas -o /tmp/probe_w4 && /tmp/probe_w4
#include <cublas_v2.h>

#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "turbine/backend/cuda/gemm_w4.cuh"

namespace {

namespace tc = turbine::cuda;
namespace td = turbine::cuda::detail;

struct Shape {
  const char* name;
  int n, k;
};

template <class T>
tc::DeviceBuffer<T> upload(const std::vector<T>& h) {
  tc::DeviceBuffer<T> d(h.size(), "probe");
  TURBINE_CUDA_CHECK(cudaMemcpy(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Mean us per launch of f(copy) over 60 launches that rotate over the copies (after 5 to warm up).
float time_us(int copies, cudaStream_t s, const std::function<void(int)>& f) {
  for (int i = 0; i < 5; ++i) f(i % copies);
  cudaEvent_t a, b;
  TURBINE_CUDA_CHECK(cudaEventCreate(&a));
  TURBINE_CUDA_CHECK(cudaEventCreate(&b));
  const int reps = 60;
  TURBINE_CUDA_CHECK(cudaEventRecord(a, s));
  for (int i = 0; i < reps; ++i) f(i % copies);
  TURBINE_CUDA_CHECK(cudaEventRecord(b, s));
  TURBINE_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  TURBINE_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1000.f * ms / reps;
}

template <int kN, int kKnock>
void knock(const tc::W4Matrix& w, const __half* x, __half* y, int tokens, cudaStream_t s) {
  td::launch_gemm_w4_wgmma<kN, 2, kKnock>(w, x, nullptr, y, tokens, s, nullptr, td::kW4sMinChunks);
}

template <int kTokens>
void staged(const tc::W4Matrix& w, const __half* x, __half* y, int tokens, cudaStream_t s) {
  td::w4s_pick(kTokens)(w, x, nullptr, y, tokens, s, nullptr, td::kW4sMinChunks);
}

template <int kN, bool kTokensFast = false, int kMinBlocks = 1>
void bulk_x(const tc::W4Matrix& w, const __half* x, __half* y, int tokens, cudaStream_t s) {
  td::launch_gemm_w4_wgmma_bulk<kN, 2, kTokensFast, kMinBlocks>(w, x, nullptr, y, tokens, s, nullptr,
                                                                td::kW4sMinChunks);
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  TURBINE_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s, %d SMs, L2 %d MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
  if (!td::w4w_available()) {
    std::printf("no wgmma in this build for this GPU (build for sm_90a)\n");
    return 1;
  }
  cudaStream_t s;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t blas;
  cublasCreate(&blas);
  cublasSetStream(blas, s);
  std::mt19937 rng(1234);
  const Shape shapes[] = {{"qkv 6144x4096", 6144, 4096},
                          {"o 4096x4096", 4096, 4096},
                          {"gate_up 28672x4096", 28672, 4096},
                          {"down 4096x14336", 4096, 14336}};
  using Fn = void (*)(const tc::W4Matrix&, const __half*, __half*, int, cudaStream_t);
  struct Variant {
    const char* name;
    Fn f16, f32, f64;  // by token count: up to 16, up to 32, more
  };
  const Variant variants[] = {
      {"staged kernel (w4s_pick)", &staged<16>, &staged<32>, &staged<64>},
      {"cp.async form", &knock<16, 0>, &knock<32, 0>, &knock<64, 0>},
      {"  no proxy fence", &knock<16, td::kW4wNoFence>, &knock<32, td::kW4wNoFence>, &knock<64, td::kW4wNoFence>},
      {"  no x copies", &knock<16, td::kW4wNoX>, &knock<32, td::kW4wNoX>, &knock<64, td::kW4wNoX>},
      {"  no weight loads", &knock<16, td::kW4wNoWeights>, &knock<32, td::kW4wNoWeights>,
       &knock<64, td::kW4wNoWeights>},
      {"  no wgmma", &knock<16, td::kW4wNoMma>, &knock<32, td::kW4wNoMma>, &knock<64, td::kW4wNoMma>},
      {"  no x, no weights", &knock<16, td::kW4wNoX | td::kW4wNoWeights>, &knock<32, td::kW4wNoX | td::kW4wNoWeights>,
       &knock<64, td::kW4wNoX | td::kW4wNoWeights>},
      {"  no x, no wgmma", &knock<16, td::kW4wNoX | td::kW4wNoMma>, &knock<32, td::kW4wNoX | td::kW4wNoMma>,
       &knock<64, td::kW4wNoX | td::kW4wNoMma>},
      {"bulk form (permute + GEMM)", &bulk_x<16>, &bulk_x<32>, &bulk_x<64>},
      {"  token tiles fastest in the grid", &bulk_x<16, true>, &bulk_x<32, true>, &bulk_x<64, true>},
      {"  128 tokens a block", &bulk_x<128, true>, &bulk_x<128, true>, &bulk_x<128, true>},
      {"  registers for 2 blocks an SM", &bulk_x<16, false, 2>, &bulk_x<32, false, 2>, &bulk_x<64, true, 2>},
  };
  {  // the copy ceiling: a 1 GiB device-to-device copy, read + write
    const size_t bytes = size_t(1) << 30;
    tc::DeviceBuffer<unsigned char> a(bytes, "probe copy"), b(bytes, "probe copy");
    const float t = time_us(1, s, [&](int) {
      TURBINE_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, s));
    });
    std::printf("copy ceiling (cudaMemcpy 1 GiB, read + write): %.0f GB/s\n", 2e-3 * bytes / t);
  }
  std::printf("%-20s %6s %10s %10s %10s", "shape", "tokens", "cuBLAS f16", "gemm_w4", "(ratio)");
  for (const Variant& v : variants) std::printf(" | %s", v.name);
  std::printf(" | dequantize + cuBLAS   (us)\n");
  for (const Shape& sh : shapes) {
    const size_t w4_bytes = size_t(sh.n) * sh.k / 2, f16_bytes = size_t(sh.n) * sh.k * 2;
    const size_t l2x4 = size_t(prop.l2CacheSize) * 4;
    const int copies4 = int(std::min<size_t>(64, (l2x4 + w4_bytes - 1) / w4_bytes));
    const int copies16 = int(std::min<size_t>(16, (l2x4 + f16_bytes - 1) / f16_bytes));
    std::vector<tc::DeviceBuffer<uint32_t>> qw, pr;
    std::vector<tc::W4Matrix> mats;
    const int group = 128;
    for (int c = 0; c < copies4; ++c) {
      std::vector<uint32_t> q(size_t(sh.n) * sh.k / 8), p(size_t(sh.n) * sh.k / group);
      for (auto& v : q) v = rng();
      const __half2 sz = __halves2half2(__float2half(0.01f), __float2half(1032.f));
      for (auto& v : p) v = *reinterpret_cast<const uint32_t*>(&sz);
      qw.push_back(upload(q));
      pr.push_back(upload(p));
      mats.push_back(tc::W4Matrix{qw.back().data(), reinterpret_cast<const __half2*>(pr.back().data()), sh.n, sh.k, group});
    }
    std::vector<tc::DeviceBuffer<__half>> w16;
    for (int c = 0; c < copies16; ++c) {
      std::vector<__half> h(size_t(sh.n) * sh.k);
      for (size_t i = 0; i < h.size(); i += 97) h[i] = __float2half(0.01f * float(rng() % 7));
      w16.push_back(upload(h));
    }
    tc::DeviceBuffer<__half> dequantized(size_t(sh.n) * sh.k, "probe dequantized W");
    for (int tokens : {16, 32, 64, 128, 256, 512}) {
      std::vector<__half> xh(size_t(tokens) * sh.k);
      for (auto& v : xh) v = __float2half(float(int(rng() % 9) - 4) * 0.125f);
      auto x = upload(xh);
      tc::DeviceBuffer<__half> y(size_t(tokens) * sh.n, "probe y");
      const __half one = __float2half(1.f), zero = __float2half(0.f);
      // y^T [n, tokens] = W [n, k] x^T: column-major, W^T as A (k x n, ld k), x^T as B (k x tokens)
      const float t_blas = time_us(copies16, s, [&](int c) {
        cublasHgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, sh.n, tokens, sh.k, &one, w16[c].data(), sh.k, x.data(), sh.k,
                    &zero, y.data(), sh.n);
      });
      const float t_w4 = time_us(copies4, s, [&](int c) { tc::gemm_w4(mats[c], x.data(), nullptr, y.data(), tokens, s); });
      std::printf("%-20s %6d %10.2f %10.2f %9.2fx", sh.name, tokens, t_blas, t_w4, t_blas / t_w4);
      for (const Variant& v : variants) {
        const Fn f = tokens <= 16 ? v.f16 : tokens <= 32 ? v.f32 : v.f64;
        std::printf(" | %7.2f", time_us(copies4, s, [&](int c) { f(mats[c], x.data(), y.data(), tokens, s); }));
      }
      // the engine's path above kW4GemmMaxTokens: a dequantized copy of W, then cuBLAS
      std::printf(" | %7.2f\n", time_us(copies4, s, [&](int c) {
                    tc::w4_dequantize(mats[c], dequantized.data(), s);
                    cublasHgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, sh.n, tokens, sh.k, &one, dequantized.data(), sh.k,
                                x.data(), sh.k, &zero, y.data(), sh.n);
                  }));
    }
  }
  TURBINE_CUDA_CHECK(cudaStreamSynchronize(s));
  cublasDestroy(blas);
  return 0;
}
