#pragma once
// Helpers for the CUDA kernel suites: fresh random inputs rounded to fp16/bf16 on the host, poisoned
// device outputs, and the relative error against the fp32 CPU reference (NaN never passes).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <turbine/backend/cuda/check.cuh>
#include <turbine/backend/cuda/device_buffer.cuh>
#include <turbine/backend/cuda/types.cuh>
#include <turbine/core/half.hpp>
#include <vector>

#include "test_support.hpp"  // fresh_seed

namespace turbine::test {

/// Host-side traits of a 16-bit device element type: rounding, name, tolerance.
template <class T>
struct HalfTraits;
template <>
struct HalfTraits<__half> {
  static constexpr const char* name = "f16";
  static constexpr double tol = 1e-3;
  static uint16_t round(float f) { return f32_to_fp16(f); }
  static float widen(uint16_t h) { return fp16_to_f32(h); }
};
template <>
struct HalfTraits<__nv_bfloat16> {
  static constexpr const char* name = "bf16";
  static constexpr double tol = 1e-2;
  static uint16_t round(float f) { return f32_to_bf16(f); }
  static float widen(uint16_t h) { return bf16_to_f32(h); }
};

/// x rounded to T on the host, and the exact value of a T.
template <class T>
T to_t(float x) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(x);
  else return __float2bfloat16_rn(x);
}
template <class T>
float to_f(T x) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(x);
  else return __bfloat162float(x);
}

/// The suite's 64-bit random engine, seeded once per process and the seed printed with the
/// suite's name: TURBINE_TEST_SEED=N replays a failed run.
inline std::mt19937_64& seeded_rng64(const char* suite) {
  static std::mt19937_64 gen = [suite] {
    uint64_t seed = std::random_device{}();
    if (const char* s = std::getenv("TURBINE_TEST_SEED")) seed = std::strtoull(s, nullptr, 10);
    std::printf("%s: seed %llu\n", suite, static_cast<unsigned long long>(seed));
    return std::mt19937_64(seed);
  }();
  return gen;
}

/// n uniform values in [-amp, amp] rounded to T: `dev` gets the T values, the returned floats are
/// their exact values.
template <class T>
std::vector<float> random_rounded(size_t n, float amp, std::vector<T>& dev, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-amp, amp);
  std::vector<float> f(n);
  dev.resize(n);
  for (size_t i = 0; i < n; ++i) {
    dev[i] = to_t<T>(u(rng));
    f[i] = to_f(dev[i]);
  }
  return f;
}

/// Host values of a T buffer: the 16-bit patterns and their exact fp32 values.
struct HalfHost {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};

template <class T>
HalfHost random_half(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  HalfHost h;
  h.bits.resize(n);
  h.values.resize(n);
  for (size_t i = 0; i < n; ++i) {
    h.bits[i] = HalfTraits<T>::round(dist(rng));
    h.values[i] = HalfTraits<T>::widen(h.bits[i]);
  }
  return h;
}

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <class T>
cuda::DeviceBuffer<T> upload_half(const HalfHost& h) {
  cuda::DeviceBuffer<T> d(h.bits.size());
  if (!h.bits.empty()) TURBINE_CUDA_CHECK(cudaMemcpy(d.data(), h.bits.data(), d.bytes(), cudaMemcpyHostToDevice));
  return d;
}

template <class E>
cuda::DeviceBuffer<E> upload(const std::vector<E>& v) {
  cuda::DeviceBuffer<E> d(v.size());
  if (!v.empty()) TURBINE_CUDA_CHECK(cudaMemcpy(d.data(), v.data(), d.bytes(), cudaMemcpyHostToDevice));
  return d;
}

/// Fills a device buffer with 0xFF bytes: NaN in fp16, bf16 and fp32.
template <class E>
void poison(cuda::DeviceBuffer<E>& d) {
  if (d.size()) TURBINE_CUDA_CHECK(cudaMemset(d.data(), 0xFF, d.bytes()));
}

/// Device T buffer -> fp32 values.
template <class T>
std::vector<float> download_half(const cuda::DeviceBuffer<T>& d) {
  std::vector<uint16_t> bits(d.size());
  if (d.size()) TURBINE_CUDA_CHECK(cudaMemcpy(bits.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost));
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = HalfTraits<T>::widen(bits[i]);
  return out;
}

inline std::vector<float> download(const cuda::DeviceBuffer<float>& d) {
  std::vector<float> out(d.size());
  if (d.size()) TURBINE_CUDA_CHECK(cudaMemcpy(out.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost));
  return out;
}

/// Returns T's values rounded like the device rounds its outputs (for references stored as T).
template <class T>
std::vector<float> round_to(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = HalfTraits<T>::widen(HalfTraits<T>::round(v[i]));
  return r;
}

/// ||out - ref|| / ||ref|| in double; NaN if any output is not finite (so it never passes).
inline double rel_error(const std::vector<float>& out, const std::vector<float>& ref) {
  REQUIRE(out.size() == ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return std::nan("");
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// Checks the last launch and waits for it, so that an asynchronous fault is blamed on it.
inline void sync_launch() {
  TURBINE_CUDA_CHECK(cudaGetLastError());
  TURBINE_CUDA_CHECK(cudaDeviceSynchronize());
}

/// Records and checks one comparison, printing it (the tests' output is the error table).
inline void expect_close(const std::string& what, const std::vector<float>& out, const std::vector<float>& ref,
                         double tol) {
  const double err = rel_error(out, ref);
  std::printf("  %-58s rel err %.3e (tol %.0e)%s\n", what.c_str(), err, tol, err < tol ? "" : "  FAIL");
  INFO(what);
  CHECK(err < tol);  // false for NaN
}

}  // namespace turbine::test
