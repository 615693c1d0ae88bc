// turbine quantize: a model's Linears to 4-bit weights by AWQ (with calibration text) or
// round-to-nearest, written as an AutoAWQ-layout Hugging Face directory (model/save_awq_model.hpp)
// with the source's tokenizer files.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <turbine/model/save_awq_model.hpp>
#include <turbine/tokenizer/tokenizer_json_writer.hpp>

#include "cli_common.hpp"
#include "quantize_device.hpp"

namespace turbine::cli {

void add_quantize_options(CLI::App& app, QuantizeCommand& q) {
  app.add_option("-o,--output", q.output, "output directory (a Hugging Face model directory is written there)")->required();
  app.add_option("--method", q.method, "awq (activation-aware scales and clipping, needs --calib) or rtn (round to nearest)")
      ->check(CLI::IsMember({"awq", "rtn"}));
  app.add_option("--w-bits", q.w_bits, "bits per weight (4)")->check(CLI::IsMember({4}));
  app.add_option("--group-size", q.group_size,
                 "input elements per scale and zero point: 32, 64 or 128 (default: 128, or the largest that divides "
                 "the model's widths, e.g. 64 for SmolLM2's 576)")
      ->check(CLI::IsMember({32, 64, 128}));
  app.add_option("--calib", q.calib, "calibration text file (UTF-8 prose; AWQ)")->check(CLI::ExistingFile);
  app.add_option("--calib-samples", q.calib_samples, "calibration sequences taken from the text")->check(CLI::PositiveNumber);
  app.add_option("--calib-seqlen", q.calib_seqlen, "tokens per calibration sequence")->check(CLI::PositiveNumber);
  app.add_flag("--no-clip", q.no_clip, "AWQ without the clipping search (scales only)");
  app.add_flag("--no-refine", q.no_refine,
               "AWQ: round each group to nearest instead of choosing its scale and zero point by output error");
  app.add_flag("--refine-to-clipped", q.refine_to_clipped,
               "AWQ: the refinement (and --feedback) measure each row's error against its clipped weights (the behaviour until the evening of 2026-12-05) instead of the weights before the clip");
  app.add_flag("--sequential", q.sequential,
               "AWQ: feed each layer the calibration text through the quantized layers before it (GPTQ's order; a second forward per layer)");
  app.add_flag("--no-norm-weighting", q.no_norm_weighting,
               "AWQ: the searches, refinement and feedback weigh every calibration token's output error alike, not relative to its residual's RMS");
  app.add_flag("--no-mlp-loss", q.no_mlp_loss,
               "AWQ: search gate/up's scales on their own outputs' error instead of the MLP's output error (down(silu(gate) * up))");
  app.add_flag("--feedback", q.feedback,
               "AWQ: choose the 4-bit codes with error feedback (GPTQ's column-by-column rounding on the refined grid) instead of rounding each weight to its nearest level");
}

namespace {

/// The tokenizer files of the output: copied from a Hugging Face source, written from a GGUF's.
std::vector<std::pair<std::string, std::string>> tokenizer_files(const LoadedModel& m) {
  std::vector<std::pair<std::string, std::string>> files;
  if (m.format == "huggingface") {
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                          "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja"})
      if (const auto p = std::filesystem::path(m.path) / f; std::filesystem::exists(p)) files.emplace_back(f, read_text(p.string()));
    return files;
  }
  const io::GgufFile gguf(m.path);
  TokenizerData d = detail::gguf_tokenizer_data(gguf);
  d.source = m.path;
  files.emplace_back("tokenizer.json", tokenizer_json_from_data(d).dump() + "\n");
  files.emplace_back("tokenizer_config.json", tokenizer_config_json(d, m.chat_template_source).dump(2) + "\n");
  nlohmann::json gen = nlohmann::json::object();
  if (d.bos >= 0) gen["bos_token_id"] = d.bos;
  if (!m.eos_ids.empty()) gen["eos_token_id"] = m.eos_ids.size() == 1 ? nlohmann::json(m.eos_ids[0]) : nlohmann::json(m.eos_ids);
  files.emplace_back("generation_config.json", gen.dump(2) + "\n");
  return files;
}

}  // namespace

void run_quantize(CommonOptions& o, const QuantizeCommand& q) {
  // Checked before the model loads: a wrong flag fails at once. auto: the GPU where there is one.
  if (o.device == "cuda")
    check(cuda_available(), "quantize --device cuda: ",
#ifdef TURBINE_WITH_CUDA
          "no CUDA device is available (use --device cpu)"
#else
          "this turbine was built without CUDA (configure with -DTURBINE_ENABLE_CUDA=ON, or use --device cpu)"
#endif
    );
  const bool gpu = o.device == "cuda" || (o.device == "auto" && cuda_available());
  check(q.method == "rtn" || !q.calib.empty(), "--method awq needs calibration text: --calib FILE (or use --method rtn)");
  const Colors color;
  // Progress and notes go to stderr when it is a terminal; errors stay one line in scripts.
  const bool tty = isatty(fileno(stderr));
  auto note = [&](const char* fmt, auto... args) {
    if (!tty) return;
    std::fprintf(stderr, "%s", color.dim());
    std::fprintf(stderr, fmt, args...);
    std::fprintf(stderr, "%s\n", color.reset());
  };
  const std::string path = resolve_model(o.model);
  note("loading %s ...", path.c_str());
  const LoadedModel m = load_model(path);
  check(m.config.awq_group_size == 0, path, ": the model is already quantized (AWQ, group ", m.config.awq_group_size, ")");
  try {
    (void)io::hf_config_json(m.config);  // fail now, not after the calibration, if config.json cannot say it
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  QuantizeOptions opt;
  opt.method = q.method == "rtn" ? QuantMethod::Rtn : QuantMethod::Awq;
  opt.group = q.group_size;
  if (opt.group == 0) {
    const ModelConfig& c = m.config;
    for (int64_t g : {128, 64, 32})
      if (c.hidden_size % g == 0 && c.q_size() % g == 0 && c.intermediate_size % g == 0) {
        opt.group = g;
        break;
      }
    check(opt.group != 0, path, ": no group size of 32, 64 or 128 divides hidden ", c.hidden_size, ", attention ",
          c.q_size(), " and intermediate ", c.intermediate_size);
    if (opt.group != 128)
      std::printf("group size %lld: 128 does not divide the model's widths (hidden %lld, intermediate %lld)\n",
                  (long long)opt.group, (long long)c.hidden_size, (long long)c.intermediate_size);
  }
  opt.clip = !q.no_clip;
  opt.refine = !q.no_refine;
  opt.feedback = q.feedback;
  opt.sequential = q.sequential;
  opt.norm_weighted = !q.no_norm_weighting;
  opt.mlp_loss = !q.no_mlp_loss;
  opt.refine_unclipped = !q.refine_to_clipped;
  std::vector<std::vector<int32_t>> calib;
  if (opt.method == QuantMethod::Awq) {
    const std::string text = read_text(q.calib);
    const std::vector<int32_t> ids = m.tokenizer->encode(text);
    calib = calibration_windows(ids, q.calib_samples, std::min<int64_t>(q.calib_seqlen, m.config.max_position_embeddings));
    int64_t tokens = 0;
    for (const auto& s : calib) tokens += static_cast<int64_t>(s.size());
    std::printf("calibration: %zu sequences, %lld tokens from %s (%zu tokens)\n", calib.size(), (long long)tokens,
                q.calib.c_str(), ids.size());
  }
  const auto t0 = std::chrono::steady_clock::now();
  opt.on_layer = [&](int64_t done, int64_t all) {
    if (!tty) return;
    const int width = 30, fill = static_cast<int>(width * done / all);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r%squantize %s [%s%s] layer %lld/%lld  %.0f s%s", color.dim(), q.method.c_str(),
                 std::string(static_cast<size_t>(fill), '#').c_str(), std::string(static_cast<size_t>(width - fill), '.').c_str(),
                 (long long)done, (long long)all, secs, color.reset());
    if (done == all) std::fprintf(stderr, "\n");
  };
#ifdef TURBINE_WITH_CUDA
  const QuantizedModel qm = gpu ? quantize_on_cuda(m.weights, calib, opt) : quantize_model(m.weights, calib, opt);
#else
  const QuantizedModel qm = quantize_model(m.weights, calib, opt);
#endif
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("quantized %lld layers on the %s in %.1f s (calibration forward %.1f s, searches %.1f s)\n",
              (long long)m.config.num_layers, gpu ? "GPU" : "CPU", seconds, qm.seconds_forward, qm.seconds_search);
  if (!qm.report.empty()) {
    double rtn = 0, awq = 0;
    std::printf("layer  ratio qkv    o  gate/up  down   output MSE rtn -> awq\n");
    for (size_t l = 0; l < qm.report.size(); ++l) {
      const auto& r = qm.report[l];
      std::printf("%5zu  %9.2f %s %8.2f %5.2f   %.4g -> %.4g\n", l, r.ratio[0],
                  r.ratio[1] < 0 ? "   -" : (std::ostringstream() << std::fixed << std::setprecision(2) << r.ratio[1]).str().c_str(),
                  r.ratio[2], r.ratio[3], r.loss_rtn, r.loss_awq);
      rtn += r.loss_rtn;
      awq += r.loss_awq;
    }
    std::printf("sum of the layers' output MSE: rtn %.4g, awq scales %.4g (%.1f%% lower); o is not scaled under grouped-query attention\n",
                rtn, awq, rtn > 0 ? 100.0 * (rtn - awq) / rtn : 0.0);
    double e_rtn = 0, e_ref = 0, e_fed = 0;
    int64_t changed = 0, groups = 0, kept = 0, rows = 0;
    for (const auto& r : qm.report) {
      e_rtn += r.round_error_rtn;
      e_ref += r.round_error;
      e_fed += r.feedback_error;
      changed += r.groups_changed;
      groups += r.groups;
      kept += r.feedback_rows_kept;
      rows += r.rows;
    }
    auto lower = [](double a, double b) { return a > 0 ? 100.0 * (a - b) / a : 0.0; };
    if (groups > 0)
      std::printf("group refinement: %lld of %lld groups took another scale or zero point; their output error %.4g -> %.4g (%.1f%% lower)\n",
                  (long long)changed, (long long)groups, e_rtn, e_ref, lower(e_rtn, e_ref));
    if (rows > 0)
      std::printf("error feedback: output error %.4g -> %.4g (%.1f%% lower); %lld of %lld rows kept their nearest levels\n",
                  e_ref, e_fed, lower(e_ref, e_fed), (long long)kept, (long long)rows);
  }
  const auto written = save_awq_model(qm, q.output, tokenizer_files(m));
  uintmax_t bytes = 0;
  for (const auto& f : written) bytes += std::filesystem::file_size(f);
  const LoadedModel back = load_model(q.output);  // what was written loads
  std::printf("wrote %s: %zu files, %.1f MiB (AWQ gemm layout, 4-bit, group %lld); run it with: turbine chat %s\n",
              q.output.c_str(), written.size(), static_cast<double>(bytes) / 1048576.0, (long long)opt.group,
              q.output.c_str());
  (void)back;
}

}  // namespace turbine::cli
