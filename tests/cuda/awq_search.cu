// The AWQ search backend on the GPU (backend/cuda/awq_search.cuh) against the CPU one
// (quant::CpuAwqSearch): the pseudo-quantize kernel rounds exactly as quant::pseudo_quantize_int4
// (random inputs, poisoned outputs, odd sizes, with column scales and clamping); the scale search
// on a random layer with outlier channels picks the same exponent, the clip search the same ranges
// (up to near-ties), and the quantized Linears give the same outputs; the calibration Linears
// match the CPU's.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/awq_search.cuh>
#include <turbine/model/load_model.hpp>
#include <turbine/model/quantize_model.hpp>

#include "kernel_test_util.cuh"
#include "test_support.hpp"
#include "../quant/float_rows_util.hpp"

using namespace turbine;
using namespace turbine::test;
using quant::FloatRows;

namespace {

// The CPU reference of the kernel: columns scaled, each (row, group) clamped, then rounded.
std::vector<float> cpu_pseudo_quantize(const FloatRows& w, int64_t group, const std::vector<float>& s, float clip) {
  FloatRows v = w;
  if (!s.empty()) v = v * Eigen::Map<const Eigen::VectorXf>(s.data(), v.cols()).asDiagonal();
  if (clip != 1.0f)
    for (int64_t r = 0; r < v.rows(); ++r)
      for (int64_t g = 0; g < v.cols() / group; ++g) {
        auto seg = v.row(r).segment(g * group, group);
        const float m = seg.cwiseAbs().maxCoeff() * clip;
        seg = seg.cwiseMax(-m).cwiseMin(m);
      }
  quant::pseudo_quantize_int4(v.data(), v.rows(), v.cols(), group);
  return {v.data(), v.data() + v.size()};
}

// A layer's inputs with a few salient channels, the case AWQ exists for.
FloatRows outlier_inputs(int64_t tokens, int64_t in, std::mt19937& rng) {
  FloatRows x = random_rows(tokens, in, rng);
  std::uniform_int_distribution<int64_t> ch(0, in - 1);
  for (int k = 0; k < std::max<int64_t>(4, in / 64); ++k) x.col(ch(rng)) *= 30.0f;
  return x;
}

}  // namespace

TEST_CASE("pseudo_quantize_int4 kernel rounds exactly as the CPU") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("awq pseudo-quantize"));
  struct Shape {
    int64_t rows, in, group;
  };
  for (const Shape sh : {Shape{1, 32, 32}, Shape{7, 96, 32}, Shape{33, 192, 64}, Shape{65, 384, 128}, Shape{3, 48, 48},
                         Shape{129, 1152, 128}, Shape{5, 100, 20}}) {
    const float sd = std::uniform_real_distribution<float>(0.001f, 2.0f)(rng);
    FloatRows w = random_rows(sh.rows, sh.in, rng, sd);
    w(0, 0) = 0.0f;  // a group with a zero and one of constant values: the 1e-5 floor of the range
    if (sh.rows > 1) w.row(1).setConstant(0.25f);
    std::vector<float> s(static_cast<size_t>(sh.in));
    for (auto& v : s) v = std::exp(std::normal_distribution<float>(0.0f, 1.0f)(rng));
    auto d_w = upload(std::vector<float>(w.data(), w.data() + w.size()));
    auto d_s = upload(s);
    for (const bool scaled : {false, true})
      for (const float clip : {1.0f, 0.8f, 0.55f}) {
        cuda::DeviceBuffer<float> d_out(static_cast<size_t>(w.size()));
        poison(d_out);
        cuda::pseudo_quantize_int4(d_w.data(), d_out.data(), sh.rows, sh.in, sh.group, scaled ? d_s.data() : nullptr,
                                   clip);
        sync_launch();
        const std::vector<float> out = download(d_out), ref = cpu_pseudo_quantize(w, sh.group, scaled ? s : std::vector<float>{}, clip);
        int64_t differ = 0;
        for (size_t i = 0; i < out.size(); ++i) differ += !(out[i] == ref[i]);  // NaN differs
        const std::string what = "rows " + std::to_string(sh.rows) + " in " + std::to_string(sh.in) + " group " +
                                 std::to_string(sh.group) + (scaled ? " scaled" : "") + " clip " + std::to_string(clip);
        std::printf("  %-58s %lld of %zu differ\n", what.c_str(), static_cast<long long>(differ), out.size());
        INFO(what);
        CHECK(differ == 0);
      }
  }
  // in place, as the clip search may use it
  FloatRows w = random_rows(9, 128, rng);
  auto d_w = upload(std::vector<float>(w.data(), w.data() + w.size()));
  cuda::pseudo_quantize_int4(d_w.data(), d_w.data(), 9, 128, 64);
  sync_launch();
  CHECK(download(d_w) == cpu_pseudo_quantize(w, 64, {}, 1.0f));
  CHECK_THROWS_WITH_AS(cuda::pseudo_quantize_int4(d_w.data(), d_w.data(), 9, 128, 96), doctest::Contains("group 96"), Error);
}

TEST_CASE("AWQ scale and clip searches: the GPU chooses what the CPU chooses") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("awq search"));
  quant::CpuAwqSearch cpu;
  cuda::AwqSearch gpu;
  struct Shape {
    int64_t in, out1, out2, tokens, group;
  };
  int alpha_same = 0, alpha_cases = 0;
  for (const Shape sh : {Shape{256, 96, 40, 1024, 64}, Shape{576, 192, 64, 700, 64}, Shape{384, 136, 8, 513, 128},
                         Shape{160, 48, 24, 300, 32}}) {
    const FloatRows x = outlier_inputs(sh.tokens, sh.in, rng);
    const FloatRows w1 = random_rows(sh.out1, sh.in, rng, 0.05f), w2 = random_rows(sh.out2, sh.in, rng, 0.05f);
    const std::string shape = "in " + std::to_string(sh.in) + " out " + std::to_string(sh.out1) + "+" +
                              std::to_string(sh.out2) + " tokens " + std::to_string(sh.tokens) + " group " +
                              std::to_string(sh.group);
    INFO(shape);
    // scales: the same exponent, the same losses up to summation order
    const quant::AwqScales rc = quant::search_awq_scales(x, {&w1, &w2}, sh.group, 20, 512, cpu);
    const quant::AwqScales rg = quant::search_awq_scales(x, {&w1, &w2}, sh.group, 20, 512, gpu);
    std::printf("  %-44s ratio cpu %.2f gpu %.2f, loss cpu %.6g gpu %.6g (rtn %.6g)\n", shape.c_str(), rc.ratio, rg.ratio,
                rc.loss, rg.loss, rc.loss_rtn);
    ++alpha_cases;
    alpha_same += rc.ratio == rg.ratio;
    CHECK(rc.ratio == rg.ratio);
    CHECK(rg.ratio > 0.0f);
    CHECK(std::abs(rg.loss - rc.loss) <= 1e-4 * rc.loss);
    CHECK(std::abs(rg.loss_rtn - rc.loss_rtn) <= 1e-4 * rc.loss_rtn);
    CHECK(rg.scales == rc.scales);  // computed on the host from the same statistics
    // every candidate's loss, not just the winner's
    std::vector<Eigen::VectorXf> cands;
    for (int i = 0; i < 20; i += 3) cands.push_back(Eigen::VectorXf::Random(sh.in).cwiseAbs().array() + 0.1f);
    cands.push_back(Eigen::VectorXf());  // a skipped (non-finite) candidate
    const FloatRows xs = quant::sample_rows(x, 512);
    const auto lc = cpu.scale_losses(xs, {&w1, &w2}, cands, sh.group), lg = gpu.scale_losses(xs, {&w1, &w2}, cands, sh.group);
    REQUIRE(lc.size() == lg.size());
    for (size_t i = 0; i + 1 < lc.size(); ++i) CHECK(std::abs(lg[i] - lc[i]) <= 1e-4 * lc[i]);
    CHECK(std::isinf(lg.back()));

    // clipping of the scaled weights: the same range for (nearly) every row and group, the same outputs
    FloatRows wc = w1 * Eigen::Map<const Eigen::VectorXf>(rc.scales.data(), sh.in).asDiagonal();
    std::uniform_int_distribution<int64_t> pick(0, wc.size() - 1);
    for (int k = 0; k < 40; ++k) wc.data()[pick(rng)] *= 10.0f;  // outlier weights stretch their groups
    const FloatRows xc = quant::sample_rows(x, 512);
    FloatRows wc_cpu = wc, wc_gpu = wc;
    const quant::AwqClip cc = quant::search_awq_clip(wc_cpu, xc, sh.group, 20, 0.5f, cpu);
    const quant::AwqClip cg = quant::search_awq_clip(wc_gpu, xc, sh.group, 20, 0.5f, gpu);
    size_t same = 0;
    for (size_t i = 0; i < cc.shrink.size(); ++i) same += cc.shrink[i] == cg.shrink[i];
    const double agree = static_cast<double>(same) / static_cast<double>(cc.shrink.size());
    std::printf("  %-44s clip: %zu of %zu ranges agree, output MSE %.6g -> cpu %.6g gpu %.6g\n", shape.c_str(), same,
                cc.shrink.size(), cc.before, cc.after, cg.after);
    CHECK(agree >= 0.98);  // a near-tie may fall either way under another summation order
    CHECK(cg.after < cg.before);
    CHECK(std::abs(cg.after - cc.after) <= 1e-3 * cc.after);
    // the quantized Linears' outputs
    std::vector<float> qc(wc_cpu.data(), wc_cpu.data() + wc_cpu.size()), qg(wc_gpu.data(), wc_gpu.data() + wc_gpu.size());
    quant::pseudo_quantize_int4(qc.data(), sh.out1, sh.in, sh.group);
    quant::pseudo_quantize_int4(qg.data(), sh.out1, sh.in, sh.group);
    const FloatRows yc = xc * Eigen::Map<const FloatRows>(qc.data(), sh.out1, sh.in).transpose();
    const FloatRows yg = xc * Eigen::Map<const FloatRows>(qg.data(), sh.out1, sh.in).transpose();
    expect_close("quantized outputs, GPU search vs CPU search, " + shape, std::vector<float>(yg.data(), yg.data() + yg.size()),
                 std::vector<float>(yc.data(), yc.data() + yc.size()), 2e-2);
  }
  CHECK(alpha_same == alpha_cases);
}

TEST_CASE("AwqSearch::mlp_scale_losses matches the CPU's, with and without token weights") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("awq mlp loss"));
  quant::CpuAwqSearch cpu;
  cuda::AwqSearch gpu;
  struct Shape { int64_t in, inter, tokens, group; };
  for (const Shape sh : {Shape{256, 96, 300, 64}, Shape{576, 1536, 512, 64}, Shape{160, 200, 77, 32}}) {
    INFO("in ", sh.in, " intermediate ", sh.inter, " tokens ", sh.tokens, " group ", sh.group);
    const FloatRows x = outlier_inputs(sh.tokens, sh.in, rng);
    const FloatRows gate = random_rows(sh.inter, sh.in, rng, 0.05f), up = random_rows(sh.inter, sh.in, rng, 0.05f),
                    down = random_rows(sh.in, sh.inter, rng, 0.05f);
    std::vector<Eigen::VectorXf> cands;
    for (int i = 0; i < 6; ++i) cands.push_back(Eigen::VectorXf::Random(sh.in).cwiseAbs().array() + 0.1f);
    cands.push_back(Eigen::VectorXf());  // a skipped (non-finite) candidate
    std::vector<float> weight(static_cast<size_t>(sh.tokens));
    std::uniform_real_distribution<float> u(0.1f, 3.0f);
    for (float& v : weight) v = u(rng);
    for (const bool weighted : {false, true}) {
      const std::span<const float> w = weighted ? std::span<const float>(weight) : std::span<const float>();
      const auto lc = cpu.mlp_scale_losses(x, gate, up, down, cands, sh.group, w);
      const auto lg = gpu.mlp_scale_losses(x, gate, up, down, cands, sh.group, w);
      REQUIRE(lc.size() == lg.size());
      std::printf("  in %lld intermediate %lld weighted %d: loss of candidate 0 cpu %.6g gpu %.6g\n", static_cast<long long>(sh.in),
                  static_cast<long long>(sh.inter), int(weighted), lc[0], lg[0]);
      for (size_t i = 0; i + 1 < lc.size(); ++i) {
        CHECK(lc[i] > 0);
        CHECK(std::abs(lg[i] - lc[i]) <= 1e-3 * lc[i]);
      }
      CHECK(std::isinf(lg.back()));
    }
    // through search_awq_scales: the same winner
    const quant::AwqScales rc = quant::search_awq_scales(x, {&gate, &up}, sh.group, 20, 512, cpu, {}, &down);
    const quant::AwqScales rg = quant::search_awq_scales(x, {&gate, &up}, sh.group, 20, 512, gpu, {}, &down);
    CHECK(rc.ratio == rg.ratio);
    CHECK(std::abs(rg.loss - rc.loss) <= 1e-3 * rc.loss);
  }
}

TEST_CASE("AwqSearch::linear matches the CPU linear") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("awq linear"));
  cuda::AwqSearch gpu;
  for (const int64_t tokens : {1, 37, 1030}) {
    const FloatRows x = random_rows(tokens, 320, rng), w = random_rows(200, 320, rng, 0.05f);
    const std::vector<float> bias = random_floats(200, rng);
    for (const bool with_bias : {false, true}) {
      const FloatRows y = gpu.linear(x, w, with_bias ? bias : std::vector<float>{});
      std::vector<float> ref(static_cast<size_t>(tokens * 200));
      cpu::linear(WeightMatrix{StorageType::F32, 200, 320, reinterpret_cast<const std::byte*>(w.data())}, x.data(), tokens,
                  ref.data(), with_bias ? bias.data() : nullptr);
      expect_close("linear tokens " + std::to_string(tokens) + (with_bias ? " bias" : ""),
                   std::vector<float>(y.data(), y.data() + y.size()), ref, 1e-5);
    }
  }
}

TEST_CASE("quantize_model with the GPU search: the CPU's losses, exponents and 4-bit weights") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("awq quantize_model"));
  for (const char* name : {"llama_tied", "qwen2"}) {
    CAPTURE(name);
    const ModelWeights src = load_weights(data_path(std::string("tiny_models/") + name));
    std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(src.config.vocab_size) - 1);
    std::vector<std::vector<int32_t>> calib(6);
    for (auto& seq : calib)
      for (int i = 0; i < 48; ++i) seq.push_back(tok(rng));
    QuantizeOptions opt;
    opt.group = 32;
    quant::CpuAwqSearch cpu;
    cuda::AwqSearch gpu;
    const QuantizedModel qc = quantize_model(src, calib, opt, cpu), qg = quantize_model(src, calib, opt, gpu);
    REQUIRE(qc.report.size() == qg.report.size());
    // The calibration inputs differ by float rounding (GPU products), so on random weights, where
    // neighbouring exponents can tie, an exponent may differ; the losses reached may not.
    int ratios_same = 0;
    for (size_t l = 0; l < qc.report.size(); ++l) {
      CAPTURE(l);
      for (int k = 0; k < 4; ++k) ratios_same += qc.report[l].ratio[k] == qg.report[l].ratio[k];
      CHECK(std::abs(qg.report[l].loss_awq - qc.report[l].loss_awq) <= 1e-2 * qc.report[l].loss_awq);
      CHECK(std::abs(qg.report[l].loss_rtn - qc.report[l].loss_rtn) <= 1e-3 * qc.report[l].loss_rtn);
    }
    std::printf("  %-20s %d of %zu exponents identical\n", name, ratios_same, 4 * qc.report.size());
    CHECK(ratios_same >= static_cast<int>(3 * qc.report.size()));
    size_t same = 0, all = 0;
    for (size_t l = 0; l < qc.layers.size(); ++l) {
      const auto& a = qc.layers[l];
      const auto& b = qg.layers[l];
      for (auto m : {&QuantizedModel::Layer::wq, &QuantizedModel::Layer::wk, &QuantizedModel::Layer::wv,
                     &QuantizedModel::Layer::wo, &QuantizedModel::Layer::gate, &QuantizedModel::Layer::up,
                     &QuantizedModel::Layer::down}) {
        const auto wa = (a.*m).dequantize(), wb = (b.*m).dequantize();
        for (size_t i = 0; i < wa.size(); ++i) same += wa[i] == wb[i];
        all += wa.size();
      }
    }
    std::printf("  %-20s %zu of %zu 4-bit weights identical; forward %.2f s, search %.2f s (cpu %.2f s, %.2f s)\n", name,
                same, all, qg.seconds_forward, qg.seconds_search, qc.seconds_forward, qc.seconds_search);
    CHECK(static_cast<double>(same) >= 0.9 * static_cast<double>(all));
  }
}
